//! Which node starts when: the eager (critical path first) and level
//! schedules on a bounded worker pool, the failure policy, cancellation.
//!
//! The scheduler owns the run's state in one task. It starts a node task
//! only while fewer than `max_concurrency` are running, so the pool never
//! grows past the bound and no work queues up beyond the ready set; node
//! tasks report back through the join set.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::node::{Finished, NodeTask, Shared, node_record};
use super::{ExecError, NodeReport, RunReport};
use crate::observe::Event;
use crate::observe::Metric;
use crate::options::Schedule;
use crate::spec::WorkflowSpec;
use crate::store::{NodeStatus, RunRecord, RunStatus, Timestamp};

/// What an earlier session of a resumed run left: the outputs of the nodes
/// that succeeded, and how many attempts each node had.
#[derive(Debug, Default)]
pub(super) struct Prior {
    /// Output (JSON text) of each node that succeeded, by node index.
    pub outputs: Vec<Option<Arc<str>>>,
    /// Attempts already recorded, by node index.
    pub attempts: Vec<u32>,
    /// Time and fuel of each node that succeeded, by node index.
    pub spent: Vec<(Duration, Option<u64>)>,
}

pub(super) async fn run(
    shared: Arc<Shared>,
    mut record: RunRecord,
    prior: Prior,
) -> Result<RunReport, ExecError> {
    let started = Instant::now();
    let workflow = shared.workflow.clone();
    shared.notify(&Event::RunStarted {
        run_id: &shared.run_id,
        workflow_id: &workflow.id,
        nodes: workflow.nodes.len(),
        finished: prior.outputs.iter().filter(|o| o.is_some()).count(),
    });

    let flusher = CancellationToken::new();
    shared
        .persistence
        .start_interval(workflow.options.persistence_interval, flusher.clone());
    let _stop_flusher = flusher.drop_guard();
    let mut state = State::new(&workflow, prior);
    let workers = workflow.options.max_concurrency.workers();
    let mut tasks: JoinSet<Finished> = JoinSet::new();
    let mut store_error = None;
    let mut cancelled = false;

    loop {
        let stopping = cancelled || store_error.is_some() || state.failed.is_some();
        while !stopping && tasks.len() < workers {
            let Some(index) = state.next_ready() else {
                break;
            };
            let node = &workflow.nodes[index];
            shared.measure(&Metric::WorkerWait {
                workflow: &workflow.id,
                node: &node.id,
                waited: state.ready_since[index].map_or_else(Default::default, |t| t.elapsed()),
            });
            state.reports[index].status = NodeStatus::Running;
            let task = NodeTask {
                shared: shared.clone(),
                index,
                input: state.request(&workflow, index),
                previous_attempts: state.previous_attempts[index],
            };
            tasks.spawn(task.run());
        }
        if tasks.is_empty() {
            break;
        }
        tokio::select! {
            done = tasks.join_next() => {
                let finished = match done.expect("the join set is not empty") {
                    Ok(finished) => finished,
                    Err(error) => std::panic::resume_unwind(error.into_panic()),
                };
                if let (None, Some(error)) = (&store_error, finished.store_error) {
                    store_error = Some(ExecError::Store(error));
                }
                shared.notify(&Event::NodeFinished { node: &finished.report });
                measure_node(&shared, &finished.report);
                state.finish(&workflow, finished.index, finished.report);
            }
            () = shared.cancel.cancelled(), if !cancelled => {
                // Running tasks see the same token and stop their attempts.
                cancelled = true;
            }
        }
    }
    if let Some(error) = store_error {
        return Err(error);
    }
    // A cancel may have ended the last attempts before the loop saw it.
    let cancelled = cancelled || shared.cancel.is_cancelled();

    // Skip what the failures made impossible.
    for &failed in &state.failures {
        let because = workflow.nodes[failed].id.clone();
        for index in workflow.dag.downstream(failed) {
            if state.reports[index].status != NodeStatus::Pending {
                continue;
            }
            let node = &workflow.nodes[index];
            let status = NodeStatus::Skipped {
                because: because.clone(),
            };
            let mut skipped = node_record(index, node, status.clone());
            skipped.finished_at = Some(Timestamp::now());
            shared.persistence.put(skipped, None)?;
            state.reports[index].status = status.clone();
            shared.progress.set_node(index, status, 0);
            shared.notify(&Event::NodeFinished {
                node: &state.reports[index],
            });
            measure_node(&shared, &state.reports[index]);
        }
    }

    record.status = if cancelled {
        RunStatus::Cancelled
    } else if state.failed.is_some() {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    record.error = match (cancelled, state.failed) {
        (true, _) => Some("cancelled".into()),
        (false, Some(index)) => {
            let node = &state.reports[index];
            let attempts = match node.attempts {
                1 => String::new(),
                n => format!(" after {n} attempts"),
            };
            Some(format!(
                "node `{}` failed{attempts}: {}",
                node.id,
                node.error.as_deref().unwrap_or("unknown error")
            ))
        }
        (false, None) => None,
    };
    record.finished_at = Some(Timestamp::now());
    shared.store.update_run(&record)?;
    shared.persistence.flush().await?;
    shared.progress.set_run(record.status);

    let report = RunReport {
        run_id: shared.run_id.clone(),
        workflow_id: workflow.id.clone(),
        status: record.status,
        error: record.error,
        nodes: state.reports,
        elapsed: started.elapsed(),
        flushes: shared.persistence.flushes(),
        sinks: workflow.dag.sinks().collect(),
    };
    shared.measure(&Metric::RunFinished {
        workflow: &workflow.id,
        status: report.status,
        duration: report.elapsed,
    });
    shared.notify(&Event::RunFinished { report: &report });
    Ok(report)
}

fn measure_node(shared: &Shared, node: &NodeReport) {
    shared.measure(&Metric::NodeFinished {
        workflow: &shared.workflow.id,
        node: &node.id,
        action: &node.action,
        status: &node.status,
        attempts: node.attempts,
        duration: node.elapsed,
    });
}

/// What the scheduler knows of the run so far.
struct State {
    reports: Vec<NodeReport>,
    /// Dependencies of each node not yet done.
    waiting_on: Vec<usize>,
    /// Nodes whose dependencies are done, by priority.
    ready: BinaryHeap<(usize, Reverse<usize>)>,
    /// When each node became ready.
    ready_since: Vec<Option<Instant>>,
    schedule: Schedule,
    /// With the level schedule: the level running now, how many of its
    /// nodes are unfinished, and nodes ready ahead of their level.
    level: usize,
    level_left: Vec<usize>,
    held: Vec<usize>,
    priority: Vec<usize>,
    /// The first node that failed without `continue_on_error`.
    failed: Option<usize>,
    /// Every node that failed without `continue_on_error`.
    failures: Vec<usize>,
    /// Attempts each node had before a resume.
    previous_attempts: Vec<u32>,
}

impl State {
    fn new(workflow: &WorkflowSpec, prior: Prior) -> Self {
        let dag = &workflow.dag;
        let n = workflow.nodes.len();
        let schedule = workflow.options.schedule;
        let priority = (0..n)
            .map(|i| match schedule {
                Schedule::Eager => dag.path_ahead(i),
                Schedule::Levels => 0,
            })
            .collect();
        let mut reports: Vec<NodeReport> = workflow
            .nodes
            .iter()
            .map(|node| NodeReport::new(&node.id, &node.action, NodeStatus::Pending))
            .collect();
        // Nodes that succeeded before a resume are done: their outputs feed
        // their dependents, and they do not run again.
        let done: Vec<bool> = (0..n)
            .map(|i| prior.outputs.get(i).is_some_and(Option::is_some))
            .collect();
        for (index, output) in prior.outputs.into_iter().enumerate() {
            if let Some(output) = output {
                let report = &mut reports[index];
                report.status = NodeStatus::Succeeded;
                report.output = Some(output);
                report.attempts = prior.attempts.get(index).copied().unwrap_or(0);
                if let Some(&(elapsed, fuel)) = prior.spent.get(index) {
                    report.elapsed = elapsed;
                    report.fuel_used = fuel;
                }
            }
        }
        let mut level_left = vec![0; dag.levels().len()];
        for index in (0..n).filter(|&i| !done[i]) {
            level_left[dag.level_of(index)] += 1;
        }
        let level = level_left
            .iter()
            .position(|&left| left > 0)
            .unwrap_or(level_left.len());
        let mut previous_attempts = prior.attempts;
        previous_attempts.resize(n, 0);
        let mut state = Self {
            reports,
            waiting_on: (0..n)
                .map(|i| dag.dependencies(i).iter().filter(|&&d| !done[d]).count())
                .collect(),
            ready: BinaryHeap::new(),
            ready_since: vec![None; n],
            schedule,
            level,
            level_left,
            held: Vec::new(),
            priority,
            failed: None,
            failures: Vec::new(),
            previous_attempts,
        };
        for (index, done) in done.iter().enumerate() {
            if !done && state.waiting_on[index] == 0 {
                state.make_ready(workflow, index);
            }
        }
        state
    }

    fn make_ready(&mut self, workflow: &WorkflowSpec, index: usize) {
        self.ready_since[index] = Some(Instant::now());
        if self.schedule == Schedule::Levels && workflow.dag.level_of(index) > self.level {
            self.held.push(index);
        } else {
            self.ready.push((self.priority[index], Reverse(index)));
        }
    }

    fn next_ready(&mut self) -> Option<usize> {
        self.ready.pop().map(|(_, Reverse(index))| index)
    }

    fn finish(&mut self, workflow: &WorkflowSpec, index: usize, report: NodeReport) {
        let dag = &workflow.dag;
        let node = &workflow.nodes[index];
        let unblocks = match report.status {
            NodeStatus::Succeeded => true,
            NodeStatus::Failed if node.options.continue_on_error => true,
            NodeStatus::Failed => {
                self.failed.get_or_insert(index);
                self.failures.push(index);
                false
            }
            _ => false,
        };
        self.reports[index] = report;
        if unblocks {
            for &dependent in dag.dependents(index) {
                self.waiting_on[dependent] -= 1;
                if self.waiting_on[dependent] == 0 {
                    self.make_ready(workflow, dependent);
                }
            }
        }
        let level = dag.level_of(index);
        self.level_left[level] -= 1;
        if self.schedule == Schedule::Levels {
            while self.level < self.level_left.len() && self.level_left[self.level] == 0 {
                self.level += 1;
            }
            let level_now = self.level;
            let (now, later): (Vec<usize>, Vec<usize>) = self
                .held
                .drain(..)
                .partition(|&held| dag.level_of(held) <= level_now);
            self.held = later;
            for index in now {
                self.ready.push((self.priority[index], Reverse(index)));
            }
        }
    }

    /// The JSON handed to the node: `{"input": ..., "deps": {...}}`, plus
    /// `"errors": {...}` for dependencies that failed with
    /// `continue_on_error`; built from the stored JSON texts without parsing
    /// them again.
    fn request(&self, workflow: &WorkflowSpec, index: usize) -> String {
        let node = &workflow.nodes[index];
        let deps = workflow.dag.dependencies(index);
        let outputs: usize = deps
            .iter()
            .map(|&dep| self.reports[dep].output.as_ref().map_or(64, |o| o.len()))
            .sum();
        let mut json = String::with_capacity(32 + node.input.len() + outputs + 16 * deps.len());
        json.push_str("{\"input\":");
        json.push_str(&node.input);
        let mut section = |name: &str, entries: &mut dyn Iterator<Item = (usize, Cow<'_, str>)>| {
            json.push_str(",\"");
            json.push_str(name);
            json.push_str("\":{");
            for (i, (dep, value)) in entries.enumerate() {
                if i > 0 {
                    json.push(',');
                }
                // Node ids are [A-Za-z0-9_-]: no escaping needed.
                json.push('"');
                json.push_str(&workflow.nodes[dep].id);
                json.push_str("\":");
                json.push_str(&value);
            }
            json.push('}');
        };
        let reports = &self.reports;
        section(
            "deps",
            &mut deps
                .iter()
                .filter_map(|&dep| Some((dep, Cow::Borrowed(reports[dep].output.as_deref()?)))),
        );
        let mut errors = deps.iter().filter_map(|&dep| {
            let error = reports[dep].error.as_ref()?;
            Some((
                dep,
                Cow::Owned(serde_json::to_string(error).expect("strings serialise")),
            ))
        });
        let mut errors = errors.by_ref().peekable();
        if errors.peek().is_some() {
            section("errors", &mut errors);
        }
        json.push('}');
        json
    }
}
