//! What the scheduler knows of a run: each node's report so far, which
//! nodes are ready and in what order they start, and the JSON each node
//! receives.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use jaq_json::Val;

use super::scheduler::Prior;
use crate::expr;
use crate::options::Schedule;
use crate::report::{Failure, FailureKind, JsonText};
use crate::report::{NodeReport, NodeStatus};
use crate::spec::WorkflowSpec;

/// The scheduler's view of a run.
pub(super) struct State {
    pub reports: Vec<NodeReport>,
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
    pub failed: Option<usize>,
    /// Every node that failed without `continue_on_error`.
    pub failures: Vec<usize>,
    /// Attempts each node had before a resume.
    pub previous_attempts: Vec<u32>,
    /// Each output as a value, read once for the expressions of the nodes
    /// that depend on it, and let go once they all started.
    values: Vec<Option<Val>>,
    /// Dependents of each node that have not started.
    readers_left: Vec<usize>,
}

impl State {
    pub fn new(workflow: &WorkflowSpec, prior: Prior) -> Self {
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
            values: vec![None; n],
            readers_left: (0..n).map(|i| dag.dependents(i).len()).collect(),
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

    /// The ready node to start next.
    pub fn next_ready(&mut self) -> Option<usize> {
        self.ready.pop().map(|(_, Reverse(index))| index)
    }

    /// How long a node has waited since it became ready.
    pub fn waited(&self, index: usize) -> Duration {
        self.ready_since[index].map_or(Duration::ZERO, |since| since.elapsed())
    }

    /// Takes in a node's final report and makes ready what it unblocks.
    /// Returns the dependents a condition skips with it: those of a node
    /// skipped by a condition that have no `when` of their own and do not
    /// set `run_if_skipped`.
    pub fn finish(
        &mut self,
        workflow: &WorkflowSpec,
        index: usize,
        report: NodeReport,
    ) -> Vec<usize> {
        let dag = &workflow.dag;
        let node = &workflow.nodes[index];
        let by_condition = matches!(
            report.status,
            NodeStatus::Skipped {
                condition: true,
                ..
            }
        );
        let unblocks = match report.status {
            NodeStatus::Succeeded => true,
            NodeStatus::Failed if node.options.continue_on_error => true,
            NodeStatus::Failed => {
                self.failed.get_or_insert(index);
                self.failures.push(index);
                false
            }
            _ => by_condition,
        };
        self.reports[index] = report;
        let mut skipped = Vec::new();
        if unblocks {
            for &dependent in dag.dependents(index) {
                if self.reports[dependent].status != NodeStatus::Pending {
                    continue;
                }
                let next = &workflow.nodes[dependent];
                if by_condition && next.exprs.when.is_none() && !next.options.run_if_skipped {
                    skipped.push(dependent);
                    continue;
                }
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
        skipped
    }

    /// The document the expressions of node `index` read: its input as
    /// written, its dependencies' outputs (each read once per run) and
    /// errors, and the run.
    pub fn context(
        &mut self,
        workflow: &WorkflowSpec,
        index: usize,
        run: &Val,
    ) -> Result<Val, Failure> {
        let node = &workflow.nodes[index];
        let unreadable = |error: String| {
            Failure::new(
                FailureKind::Expression,
                format!("cannot read its context: {error}"),
            )
        };
        let input = match &node.exprs.written {
            Some(written) => written.clone(),
            None => expr::parse_json(&node.input).map_err(unreadable)?,
        };
        let deps = workflow.dag.dependencies(index);
        let mut values = Vec::with_capacity(deps.len());
        for &dep in deps {
            let Some(output) = &self.reports[dep].output else {
                continue;
            };
            let value = match &self.values[dep] {
                Some(value) => value.clone(),
                None => {
                    let value = expr::parse_json(output).map_err(unreadable)?;
                    self.values[dep] = Some(value.clone());
                    value
                }
            };
            values.push((workflow.nodes[dep].id.as_str(), value));
        }
        let errors = deps.iter().filter_map(|&dep| {
            let error = self.reports[dep].error.as_ref()?;
            Some((workflow.nodes[dep].id.as_str(), error.message.as_str()))
        });
        Ok(expr::context(input, values, errors, run.clone()))
    }

    /// Notes that node `index` started: the values of its dependencies'
    /// outputs that no other node will read are let go.
    pub fn started(&mut self, workflow: &WorkflowSpec, index: usize) {
        for &dep in workflow.dag.dependencies(index) {
            self.readers_left[dep] = self.readers_left[dep].saturating_sub(1);
            if self.readers_left[dep] == 0 {
                self.values[dep] = None;
            }
        }
    }

    /// The JSON handed to the node: `{"input": ..., "deps": {...}}`, plus
    /// `"errors": {...}` for dependencies that failed with
    /// `continue_on_error`; built from the stored JSON texts without parsing
    /// them again. With `on_demand`, `"dependencies": [<ids>]` takes the
    /// place of `deps`, and the outputs come back beside the text, in id
    /// order, for the plugin to ask for.
    pub fn request(
        &self,
        workflow: &WorkflowSpec,
        index: usize,
        on_demand: bool,
    ) -> (String, Vec<(String, JsonText)>) {
        let node = &workflow.nodes[index];
        let deps = workflow.dag.dependencies(index);
        let given: Vec<(String, JsonText)> = if on_demand {
            let mut given: Vec<_> = deps
                .iter()
                .filter_map(|&dep| {
                    let output = self.reports[dep].output.clone()?;
                    Some((workflow.nodes[dep].id.clone(), output))
                })
                .collect();
            given.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            given
        } else {
            Vec::new()
        };
        let outputs: usize = deps
            .iter()
            .map(|&dep| match &self.reports[dep].output {
                Some(output) if !on_demand => output.len(),
                _ => 64,
            })
            .sum();
        let mut json = String::with_capacity(32 + node.input.len() + outputs + 16 * deps.len());
        json.push_str("{\"input\":");
        json.push_str(&node.input);
        if on_demand {
            json.push_str(",\"dependencies\":[");
            for (i, (id, _)) in given.iter().enumerate() {
                if i > 0 {
                    json.push(',');
                }
                // Node ids are [A-Za-z0-9_-]: no escaping needed.
                json.push('"');
                json.push_str(id);
                json.push('"');
            }
            json.push(']');
        }
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
        if !on_demand {
            section(
                "deps",
                &mut deps
                    .iter()
                    .filter_map(|&dep| Some((dep, Cow::Borrowed(reports[dep].output.as_deref()?)))),
            );
        }
        let mut errors = deps.iter().filter_map(|&dep| {
            let error = reports[dep].error.as_ref()?;
            Some((dep, Cow::Owned(json_string(&error.message))))
        });
        let mut errors = errors.by_ref().peekable();
        if errors.peek().is_some() {
            section("errors", &mut errors);
        }
        json.push('}');
        (json, given)
    }
}

/// `text` as a JSON string.
fn json_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}
