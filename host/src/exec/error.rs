//! Errors of the execution layer.

use crate::spec::SpecError;
use crate::store::StoreError;

/// Why a run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The workflow does not fit the plugins (an action no plugin provides).
    #[error(transparent)]
    Spec(SpecError),
    /// The store failed; the run stopped so that no result goes unrecorded.
    #[error("the run stopped because its state could not be saved: {0}")]
    Store(#[from] StoreError),
    /// The runtime has fewer instance slots than the run has workers.
    #[error(
        "the workflow runs {workers} attempts at once, but the WebAssembly runtime has \
         {instances} instance slots; create the runtime with RuntimeConfig::for_workers({workers})"
    )]
    PoolTooSmall {
        /// Attempts the run may have at once.
        workers: usize,
        /// Slots of the runtime's pool.
        instances: u32,
    },
    /// A node's action is a plugin the registry listed but did not load.
    #[error(
        "action `{action}` ({}) was listed but not loaded: load the plugins with \
         Runtime::load_plugins, or load_plugins_for with every action of the workflow",
        path.display()
    )]
    NotLoaded {
        /// The action.
        action: String,
        /// Its plugin file.
        path: std::path::PathBuf,
    },
    /// A node named (to retry from) is not in the workflow.
    #[error("the workflow has no node `{node}`; {hint}")]
    UnknownNode {
        /// The id given.
        node: String,
        /// The closest ids, or the list of them.
        hint: String,
    },
    /// The values of the run's parameters do not fit `[params]`.
    #[error("the run's parameters do not fit the workflow: {0}")]
    Params(#[from] crate::spec::ParamError),
    /// The run's task was aborted (its runtime shut down).
    #[error("the run's task was aborted before it finished")]
    Aborted,
    /// The run to resume succeeded: there is nothing left to do.
    #[error("run {run_id} succeeded; there is nothing to resume")]
    NothingToResume {
        /// The run.
        run_id: String,
    },
    /// The run to resume is running in this process.
    #[error("run {run_id} is running; it can be resumed once it has stopped")]
    StillRunning {
        /// The run.
        run_id: String,
    },
    /// The workflow or its plugins changed since the run started; a forced
    /// resume continues with them as they are now.
    #[error("run {run_id} was not {} because {}", if *retry { "retried" } else { "resumed" }, changes.join(", and "))]
    Changed {
        /// The run.
        run_id: String,
        /// Whether it was to be retried (a new run) rather than resumed.
        retry: bool,
        /// What changed, one sentence each.
        changes: Vec<String>,
    },
}
