//! What a run produced.

use std::time::Duration;

use super::{Failure, JsonText, NodeStatus, RunStatus};

/// The outcome of one node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeReport {
    /// The node's id.
    pub id: String,
    /// The action that ran it.
    pub action: String,
    /// Its final state.
    pub status: NodeStatus,
    /// Attempts made.
    pub attempts: u32,
    /// Time from its first attempt's start to its end.
    pub elapsed: Duration,
    /// Its output, when it succeeded.
    pub output: Option<JsonText>,
    /// Its last failure, when it failed or was cancelled.
    pub error: Option<Failure>,
    /// Fuel its attempts used together, when metered.
    pub fuel_used: Option<u64>,
}

impl NodeReport {
    /// A node that has not run yet.
    pub fn new(id: &str, action: &str, status: NodeStatus) -> Self {
        Self {
            id: id.to_string(),
            action: action.to_string(),
            status,
            attempts: 0,
            elapsed: Duration::ZERO,
            output: None,
            error: None,
            fuel_used: None,
        }
    }
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The run's id.
    pub run_id: String,
    /// `[workflow] id`.
    pub workflow_id: String,
    /// How it ended.
    pub status: RunStatus,
    /// Why it failed or stopped, in a sentence.
    pub error: Option<String>,
    /// Every node, in workflow file order.
    pub nodes: Vec<NodeReport>,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
    /// Flushes of the store during the run (each waits for the disk).
    pub flushes: u64,
    /// Nodes that failed, including those whose failure
    /// `continue_on_error` allowed (a run can succeed with failed nodes).
    pub failed_nodes: usize,

    /// Indices of the nodes nothing depends on.
    pub(crate) sinks: Vec<usize>,
}

impl RunReport {
    /// The workflow's outputs: those of the nodes nothing depends on that
    /// succeeded, in file order.
    pub fn outputs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.sinks.iter().filter_map(|&index| {
            let node = &self.nodes[index];
            node.output
                .as_deref()
                .map(|output| (node.id.as_str(), output))
        })
    }

    /// The report of node `id`.
    pub fn node(&self, id: &str) -> Option<&NodeReport> {
        self.nodes.iter().find(|node| node.id == id)
    }
}
