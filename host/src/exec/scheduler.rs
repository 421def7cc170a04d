//! Which node starts when: the eager (critical path first) and level
//! schedules on a bounded worker pool, the failure policy, cancellation.
//!
//! The scheduler owns the run's state in one task. It starts a node task
//! only while fewer than `max_concurrency` are running, so the pool never
//! grows past the bound and no work queues up beyond the ready set; node
//! tasks report back through the join set.

use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::ExecError;
use super::child::ChildTask;
use super::map::{ElementsBefore, MapRun};
use super::node::{Finished, NodeLog, NodeTask, Shared};
use super::ready::State;
use super::shape::{self, Start};
use crate::observe::{Event, Metric};
use crate::report::{JsonText, NodeReport, NodeStatus, RunReport, RunStatus, Timestamp};
use crate::store::{NodeRecord, RunRecord, StoreError};
use std::collections::HashMap;
use std::sync::Arc;

/// What an earlier session of a resumed run left: the outputs of the nodes
/// that succeeded, and how many attempts each node had.
#[derive(Debug, Default)]
pub(super) struct Prior {
    /// Output of each node that succeeded, by node index.
    pub outputs: Vec<Option<JsonText>>,
    /// Attempts already recorded, by node index.
    pub attempts: Vec<u32>,
    /// Time and fuel of each node that succeeded, by node index.
    pub spent: Vec<(Duration, Option<u64>)>,
    /// What the elements of map nodes that did not end left, by node
    /// index.
    pub elements: HashMap<usize, ElementsBefore>,
    /// The child runs of sub-workflow nodes that did not succeed, by node
    /// index.
    pub children: HashMap<usize, String>,
    /// The resume was forced past a changed workflow or plugin: so are the
    /// resumes of those child runs.
    pub forced: bool,
}

impl Prior {
    /// Nothing yet, for a workflow of `nodes` nodes.
    pub fn new(nodes: usize) -> Self {
        Self {
            outputs: vec![None; nodes],
            attempts: vec![0; nodes],
            spent: vec![(Duration::ZERO, None); nodes],
            elements: HashMap::new(),
            children: HashMap::new(),
            forced: false,
        }
    }
}

pub(super) async fn run(
    shared: Arc<Shared>,
    record: RunRecord,
    mut prior: Prior,
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
    let mut pool = Pool {
        before: std::mem::take(&mut prior.elements),
        children: std::mem::take(&mut prior.children),
        forced: prior.forced,
        ..Pool::default()
    };
    let mut state = State::new(&workflow, prior);
    pool.drive(&shared, &mut state).await;
    if let Some(error) = pool.store_error {
        return Err(error);
    }
    // A cancel may have ended the last attempts before the loop saw it.
    let cancelled = pool.cancelled || shared.cancel.is_cancelled();
    skip_unreachable(&shared, &mut state)?;
    conclude(&shared, record, state, cancelled, started).await
}

/// The node tasks running, and why the run stops starting new ones.
#[derive(Default)]
struct Pool {
    tasks: JoinSet<Finished>,
    store_error: Option<ExecError>,
    cancelled: bool,
    /// Map nodes that started and have not ended.
    maps: Vec<MapRun>,
    /// What a resumed run's map nodes left of their elements.
    before: HashMap<usize, ElementsBefore>,
    /// The child runs a resumed run's sub-workflow nodes started.
    children: HashMap<usize, String>,
    /// Whether the resume was forced.
    forced: bool,
}

impl Pool {
    /// Starts ready nodes while workers are free and nothing stops the
    /// run, and takes in the nodes that finish, until none runs.
    async fn drive(&mut self, shared: &Arc<Shared>, state: &mut State) {
        let workers = shared.workflow.options.max_concurrency.workers();
        loop {
            let stopping = self.cancelled || self.store_error.is_some() || state.failed.is_some();
            while !stopping && self.tasks.len() < workers {
                // Elements of started maps first: they finish work begun.
                if let Some(element) = self.maps.iter_mut().find_map(|m| m.next_element(shared)) {
                    self.tasks.spawn(element.run());
                    continue;
                }
                let Some(index) = state.next_ready() else {
                    break;
                };
                self.start(shared, state, index);
            }
            if stopping {
                // Maps whose running elements ended stop here.
                let (idle, busy) = std::mem::take(&mut self.maps)
                    .into_iter()
                    .partition(MapRun::is_idle);
                self.maps = busy;
                for map in idle {
                    self.tasks.spawn(map.conclude(shared.clone(), true));
                }
            }
            if self.tasks.is_empty() {
                return;
            }
            tokio::select! {
                Some(done) = self.tasks.join_next() => {
                    let finished = match done {
                        Ok(finished) => finished,
                        Err(error) => std::panic::resume_unwind(error.into_panic()),
                    };
                    self.take_in(shared, state, finished);
                }
                () = shared.cancel.cancelled(), if !self.cancelled => {
                    // Running tasks see the same token and stop their attempts.
                    self.cancelled = true;
                }
            }
        }
    }

    fn start(&mut self, shared: &Arc<Shared>, state: &mut State, index: usize) {
        let workflow = &shared.workflow;
        let node = &workflow.nodes[index];
        shared.measure(&Metric::WorkerWait {
            workflow: &workflow.id,
            node: &node.id,
            waited: state.waited(index),
        });
        // Outputs are asked for by the plugin, unless the attempt goes to
        // another host (which is sent them in the request).
        let on_demand = shared.engine.dispatcher().is_none()
            && shared.plugins[index]
                .as_ref()
                .is_some_and(|plugin| plugin.takes_outputs_on_demand());
        let (request, dependencies) = state.request(workflow, index, on_demand);
        let started = shape::start(node, request, || {
            state.context(workflow, index, &shared.run_value)
        });
        state.started(workflow, index);
        let input = match started {
            Start::Skip => {
                return self.skip(shared, state, index, NodeStatus::skipped_by_condition(""));
            }
            Start::Run(input) => input,
            Start::Map(Err(failure)) => Err(failure),
            Start::Map(Ok(input)) => {
                state.reports[index].status = NodeStatus::Running;
                let before = self.before.remove(&index).unwrap_or_default();
                let (map, saved) = MapRun::start(shared, index, input, before);
                if let Err(error) = saved {
                    self.store_error.get_or_insert(ExecError::Store(error));
                }
                if map.is_done() {
                    self.tasks.spawn(map.conclude(shared.clone(), false));
                } else {
                    self.maps.push(map);
                }
                return;
            }
        };
        state.reports[index].status = NodeStatus::Running;
        if node.workflow.is_some() {
            let task = ChildTask {
                shared: shared.clone(),
                index,
                input,
                before: self.children.remove(&index),
                previous_attempts: state.previous_attempts[index],
                forced: self.forced,
            };
            self.tasks.spawn(task.run());
            return;
        }
        let task = NodeTask {
            previous_attempts: state.previous_attempts[index],
            dependencies,
            ..NodeTask::node(shared, index, input)
        };
        self.tasks.spawn(task.run());
    }

    fn take_in(&mut self, shared: &Arc<Shared>, state: &mut State, finished: Finished) {
        if let (None, Some(error)) = (&self.store_error, finished.store_error) {
            self.store_error = Some(ExecError::Store(error));
        }
        if let Some(element) = finished.element {
            return self.element_finished(shared, finished.index, element, finished.report);
        }
        node_finished(shared, &finished.report);
        let index = finished.index;
        let skipped = state.finish(&shared.workflow, index, finished.report);
        let because = &shared.workflow.nodes[index].id;
        for dependent in skipped {
            self.skip(
                shared,
                state,
                dependent,
                NodeStatus::skipped_by_condition(because),
            );
        }
    }

    /// Takes in an element's end; the map node ends with its last element.
    fn element_finished(
        &mut self,
        shared: &Arc<Shared>,
        index: usize,
        element: u32,
        report: NodeReport,
    ) {
        let Some(at) = self.maps.iter().position(|map| map.index == index) else {
            return;
        };
        self.maps[at].take_in(shared, element, report);
        if self.maps[at].is_done() {
            let map = self.maps.swap_remove(at);
            self.tasks.spawn(map.conclude(shared.clone(), false));
        }
    }

    /// Records that a condition skips a node (and, through `finish`, the
    /// dependents that go with it).
    fn skip(&mut self, shared: &Arc<Shared>, state: &mut State, index: usize, status: NodeStatus) {
        let node = &shared.workflow.nodes[index];
        if let Err(error) = record_skipped(shared, index, &status) {
            self.store_error.get_or_insert(ExecError::Store(error));
        }
        let report = NodeReport::new(&node.id, &node.action, status);
        self.take_in(
            shared,
            state,
            Finished {
                index,
                element: None,
                report,
                store_error: None,
            },
        );
    }
}

/// Tells observers, metrics and the log that a node reached its final
/// state.
fn node_finished(shared: &Shared, node: &NodeReport) {
    shared.notify(&Event::NodeFinished { node });
    shared.measure(&Metric::NodeFinished {
        workflow: &shared.workflow.id,
        node: &node.id,
        action: &node.action,
        status: &node.status,
        attempts: node.attempts,
        duration: node.elapsed,
    });
    shared.log_node(
        &node.id,
        node.status.name(),
        node.attempts,
        NodeLog {
            duration: (node.attempts > 0).then_some(node.elapsed),
            fuel: node.fuel_used,
            failure: node.error.as_ref(),
        },
    );
}

/// Marks skipped every node that a failure made impossible.
fn skip_unreachable(shared: &Shared, state: &mut State) -> Result<(), ExecError> {
    let workflow = &shared.workflow;
    for failed in state.failures.clone() {
        let because = workflow.nodes[failed].id.clone();
        for index in workflow.dag.downstream(failed) {
            if state.reports[index].status != NodeStatus::Pending {
                continue;
            }
            let status = NodeStatus::skipped_after_failure(because.clone());
            record_skipped(shared, index, &status)?;
            state.reports[index].status = status;
            node_finished(shared, &state.reports[index]);
        }
    }
    Ok(())
}

/// Stores a skipped node's record and publishes its state.
fn record_skipped(shared: &Shared, index: usize, status: &NodeStatus) -> Result<(), StoreError> {
    let node = &shared.workflow.nodes[index];
    let mut record = NodeRecord::new(index, &node.id, &node.action, status.clone());
    record.finished_at = Some(Timestamp::now());
    shared.persistence.put(record, None)?;
    shared.progress.set_node(index, status, 0);
    Ok(())
}

/// Records how the run ended and builds its report.
async fn conclude(
    shared: &Shared,
    mut record: RunRecord,
    state: State,
    cancelled: bool,
    started: Instant,
) -> Result<RunReport, ExecError> {
    let workflow = &shared.workflow;
    record.status = if cancelled {
        RunStatus::Cancelled
    } else if state.failed.is_some() {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    record.error = match (cancelled, state.failed) {
        (true, _) => Some("cancelled".into()),
        (false, Some(index)) => Some(failure_sentence(&state.reports[index])),
        (false, None) => None,
    };
    record.failed_nodes = state
        .reports
        .iter()
        .filter(|node| node.status == NodeStatus::Failed)
        .count();
    record.finished_at = Some(Timestamp::now());
    shared.persistence.conclude(record.clone()).await?;
    shared.progress.set_run(record.status);

    let report = RunReport {
        run_id: shared.run_id.clone(),
        workflow_id: workflow.id.clone(),
        status: record.status,
        error: record.error,
        failed_nodes: record.failed_nodes,
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

/// "node `x` failed after 3 attempts: ..."
fn failure_sentence(node: &NodeReport) -> String {
    let attempts = match node.attempts {
        0 | 1 => String::new(),
        n => format!(" after {n} attempts"),
    };
    let error = node
        .error
        .as_ref()
        .map_or("unknown error", |failure| failure.message.as_str());
    format!("node `{}` failed{attempts}: {error}", node.id)
}
