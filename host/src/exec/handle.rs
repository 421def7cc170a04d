//! A run in progress: cancel it, look at it, wait for it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::ExecError;
use crate::report::{NodeStatus, RunReport, RunStatus};

/// A run started with [`WorkflowEngine::start`](super::WorkflowEngine::start).
#[derive(Debug)]
pub struct RunHandle {
    pub(super) run_id: String,
    pub(super) canceller: Canceller,
    pub(super) progress: Arc<Progress>,
    pub(super) task: JoinHandle<Result<RunReport, ExecError>>,
}

impl RunHandle {
    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Asks the run to stop: see [`Canceller::cancel`].
    pub fn cancel(&self) {
        self.canceller.cancel();
    }

    /// Something that cancels the run from any task or thread.
    pub fn canceller(&self) -> Canceller {
        self.canceller.clone()
    }

    /// Where the run and each of its nodes stand now.
    pub fn status(&self) -> RunSnapshot {
        self.progress.snapshot(&self.run_id)
    }

    /// Waits for the run to end.
    pub async fn wait(self) -> Result<RunReport, ExecError> {
        match self.task.await {
            Ok(result) => result,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => Err(ExecError::Aborted),
        }
    }
}

/// Cancels a run; cheap to clone and usable from any thread.
#[derive(Debug, Clone, Default)]
pub struct Canceller(pub(super) CancellationToken);

impl Canceller {
    /// Stops the run: no new node starts, running attempts are interrupted
    /// (within the engine's epoch tick, 10 ms), their nodes are recorded as
    /// cancelled, and the run ends with status `cancelled`.
    pub fn cancel(&self) {
        self.0.cancel();
    }

    /// Whether the run was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }
}

/// Where a run stands, as [`RunHandle::status`] and
/// [`WorkflowEngine::status`](super::WorkflowEngine::status) see it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSnapshot {
    /// The run's id.
    pub run_id: String,
    /// The run's status.
    pub status: RunStatus,
    /// Each node's id, status and attempts so far, in file order.
    pub nodes: Vec<(String, NodeStatus, u32)>,
}

/// The live state behind [`RunHandle::status`]: one atomic word per node
/// (its state, the node whose failure skipped it, its attempts), written by
/// the engine and read without a lock.
#[derive(Debug)]
pub(super) struct Progress {
    ids: Vec<String>,
    index: HashMap<String, usize>,
    nodes: Vec<AtomicU64>,
    run: AtomicU8,
}

const PENDING: u64 = 0;
const RUNNING: u64 = 1;
const SUCCEEDED: u64 = 2;
const FAILED: u64 = 3;
const SKIPPED: u64 = 4;
const CANCELLED: u64 = 5;
const SKIPPED_BY_CONDITION: u64 = 6;

impl Progress {
    pub(super) fn new(ids: impl Iterator<Item = String>) -> Self {
        let ids: Vec<String> = ids.collect();
        Self {
            index: ids
                .iter()
                .enumerate()
                .map(|(i, id)| (id.clone(), i))
                .collect(),
            nodes: ids.iter().map(|_| AtomicU64::new(PENDING)).collect(),
            ids,
            run: AtomicU8::new(run_code(RunStatus::Running)),
        }
    }

    pub(super) fn snapshot(&self, run_id: &str) -> RunSnapshot {
        let nodes = self
            .nodes
            .iter()
            .zip(&self.ids)
            .map(|(word, id)| {
                let word = word.load(Ordering::Relaxed);
                let attempts = (word & 0xffff_ffff) as u32;
                let because = (word >> 36) as usize;
                let status = match (word >> 32) & 0xf {
                    RUNNING => NodeStatus::Running,
                    SUCCEEDED => NodeStatus::Succeeded,
                    FAILED => NodeStatus::Failed,
                    SKIPPED => NodeStatus::skipped_after_failure(
                        self.ids.get(because).cloned().unwrap_or_default(),
                    ),
                    // The node's own condition is noted as itself.
                    SKIPPED_BY_CONDITION if self.ids.get(because) == Some(id) => {
                        NodeStatus::skipped_by_condition("")
                    }
                    SKIPPED_BY_CONDITION => NodeStatus::skipped_by_condition(
                        self.ids.get(because).cloned().unwrap_or_default(),
                    ),
                    CANCELLED => NodeStatus::Cancelled,
                    _ => NodeStatus::Pending,
                };
                (id.clone(), status, attempts)
            })
            .collect();
        RunSnapshot {
            run_id: run_id.to_string(),
            status: match self.run.load(Ordering::Relaxed) {
                0 => RunStatus::Running,
                1 => RunStatus::Succeeded,
                2 => RunStatus::Failed,
                3 => RunStatus::Cancelled,
                5 => RunStatus::Queued,
                _ => RunStatus::Interrupted,
            },
            nodes,
        }
    }

    pub(super) fn set_node(&self, index: usize, status: &NodeStatus, attempts: u32) {
        let (code, because) = match status {
            NodeStatus::Pending => (PENDING, 0),
            NodeStatus::Running => (RUNNING, 0),
            NodeStatus::Succeeded => (SUCCEEDED, 0),
            NodeStatus::Failed => (FAILED, 0),
            NodeStatus::Skipped { because, condition } => (
                if *condition {
                    SKIPPED_BY_CONDITION
                } else {
                    SKIPPED
                },
                match because.is_empty() {
                    true => index as u64,
                    false => self.index.get(because).copied().unwrap_or(0) as u64,
                },
            ),
            NodeStatus::Cancelled => (CANCELLED, 0),
        };
        let word = (because << 36) | (code << 32) | u64::from(attempts);
        self.nodes[index].store(word, Ordering::Relaxed);
    }

    pub(super) fn set_run(&self, status: RunStatus) {
        self.run.store(run_code(status), Ordering::Relaxed);
    }
}

fn run_code(status: RunStatus) -> u8 {
    match status {
        RunStatus::Running => 0,
        RunStatus::Succeeded => 1,
        RunStatus::Failed => 2,
        RunStatus::Cancelled => 3,
        RunStatus::Interrupted => 4,
        RunStatus::Queued => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_read_what_was_set() {
        let progress = Progress::new(["a", "b", "c"].into_iter().map(String::from));
        progress.set_node(0, &NodeStatus::Failed, 3);
        progress.set_node(2, &NodeStatus::skipped_after_failure("a"), 0);
        progress.set_node(1, &NodeStatus::skipped_by_condition(""), 0);
        progress.set_run(RunStatus::Failed);
        let snapshot = progress.snapshot("r");
        assert_eq!(snapshot.status, RunStatus::Failed);
        assert_eq!(
            snapshot.nodes,
            [
                ("a".to_string(), NodeStatus::Failed, 3),
                ("b".to_string(), NodeStatus::skipped_by_condition(""), 0),
                ("c".to_string(), NodeStatus::skipped_after_failure("a"), 0),
            ]
        );
    }
}
