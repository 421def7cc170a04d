//! A run in progress: cancel it, look at it, wait for it.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{ExecError, RunReport};
use crate::store::{NodeStatus, RunStatus};

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
        self.progress.snapshot()
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

/// Where a run stands, as [`RunHandle::status`] sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSnapshot {
    /// The run's status.
    pub status: RunStatus,
    /// Each node's id, status and attempts so far, in file order.
    pub nodes: Vec<(String, NodeStatus, u32)>,
}

/// The live state behind [`RunHandle::status`], updated by the engine.
#[derive(Debug)]
pub(super) struct Progress {
    state: Mutex<RunSnapshot>,
}

impl Progress {
    pub(super) fn new(ids: impl Iterator<Item = String>) -> Self {
        Self {
            state: Mutex::new(RunSnapshot {
                status: RunStatus::Running,
                nodes: ids.map(|id| (id, NodeStatus::Pending, 0)).collect(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, RunSnapshot> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn snapshot(&self) -> RunSnapshot {
        self.lock().clone()
    }

    pub(super) fn set_node(&self, index: usize, status: NodeStatus, attempts: u32) {
        let mut state = self.lock();
        state.nodes[index].1 = status;
        state.nodes[index].2 = attempts;
    }

    pub(super) fn set_run(&self, status: RunStatus) {
        self.lock().status = status;
    }
}
