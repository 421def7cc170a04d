//! Executing workflows: the engine, the scheduler and the node runner.
//!
//! [`WorkflowEngine::execute`] records a new run, runs its nodes level by
//! level on a pool of at most `max_concurrency` workers, writes each node's
//! state to the store as it changes, and returns a [`RunReport`].

mod error;
mod node;
mod report;
mod scheduler;

use std::sync::Arc;

pub use error::ExecError;
pub use report::{NodeReport, RunReport};

use crate::observe::Observer;
use crate::runtime::{Limits, PluginRegistry, Runtime};
use crate::spec::WorkflowSpec;
use crate::store::WorkflowStore;

/// Runs workflows: the design's WorkflowEngine.
///
/// Cheap to clone; clones share the runtime, the store and the observers.
#[derive(Clone)]
pub struct WorkflowEngine {
    runtime: Arc<Runtime>,
    store: Arc<dyn WorkflowStore>,
    limits: Limits,
    observers: Vec<Arc<dyn Observer>>,
}

impl WorkflowEngine {
    /// An engine that runs plugins on `runtime` and records runs in `store`.
    pub fn new(runtime: Arc<Runtime>, store: Arc<dyn WorkflowStore>) -> Self {
        Self {
            runtime,
            store,
            limits: Limits::default(),
            observers: Vec::new(),
        }
    }

    /// Sets the limits of every attempt.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Adds an observer of runs.
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observers.push(observer);
        self
    }

    /// The store runs are recorded in.
    pub fn store(&self) -> &Arc<dyn WorkflowStore> {
        &self.store
    }

    /// Runs `workflow` with the plugins of `plugins` and returns the outcome.
    ///
    /// A node that fails makes the run fail; that is a report, not an error.
    /// Errors are for runs that could not be carried out: an action with no
    /// plugin, or a store that stopped accepting writes.
    pub async fn execute(
        &self,
        workflow: Arc<WorkflowSpec>,
        plugins: Arc<PluginRegistry>,
    ) -> Result<RunReport, ExecError> {
        workflow
            .check_actions(plugins.names())
            .map_err(ExecError::Spec)?;
        scheduler::run(self, workflow, plugins).await
    }
}

impl std::fmt::Debug for WorkflowEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowEngine")
            .field("limits", &self.limits)
            .field("observers", &self.observers.len())
            .finish_non_exhaustive()
    }
}
