//! Executing workflows: the engine, the scheduler and the node runner.
//!
//! [`WorkflowEngine::start`] records a new run and starts it on the tokio
//! runtime; the returned [`RunHandle`] cancels it, shows its progress, and
//! waits for its [`RunReport`]. The engine's extension points are the
//! design's: [`Observer`]s, [`MetricsCollector`]s, an [`ErrorHandler`] and
//! [`Middleware`] around every attempt.

mod child;
mod dispatch;
mod error;
mod extension;
mod guest;
mod handle;
mod launch;
mod map;
mod middleware;
mod node;
mod persist;
mod ready;
mod scheduler;
mod shape;
mod slots;
mod status;
mod worker;

use std::sync::Arc;

pub use dispatch::{Dispatch, Dispatcher, WireReport};
pub use error::ExecError;
pub use extension::{AttemptFailure, ErrorHandler, RetryDecision, Sleeper, TokioSleeper};
pub use handle::{Canceller, RunHandle, RunSnapshot};
pub use middleware::{AttemptInfo, Middleware, Next};
pub use slots::{AttemptSlots, Slot};
pub use worker::{Worker, WorkerStats, stored_workflow};

use crate::observe::{MetricsCollector, Observer};
use crate::report::RunReport;
use crate::runtime::{PluginRegistry, Redactor, Runtime, Secrets};
use crate::spec::WorkflowSpec;
use crate::store::{StoreError, WorkflowStore};

/// Runs workflows: the design's WorkflowEngine.
///
/// Cheap to clone; clones share the runtime, the store and the extensions.
/// The options of a run (concurrency, schedule, retries, limits) come from
/// its [`WorkflowSpec`].
#[derive(Clone)]
pub struct WorkflowEngine {
    runtime: Arc<Runtime>,
    store: Arc<dyn WorkflowStore>,
    observers: Vec<Arc<dyn Observer>>,
    metrics: Vec<Arc<dyn MetricsCollector>>,
    error_handler: Option<Arc<dyn ErrorHandler>>,
    middleware: Vec<Arc<dyn Middleware>>,
    sleeper: Arc<dyn Sleeper>,
    secrets: Arc<Secrets>,
    redactor: Redactor,
    live: Arc<status::LiveRuns>,
    slots: Option<Arc<AttemptSlots>>,
    dispatcher: Option<Arc<dyn Dispatcher>>,
}

impl WorkflowEngine {
    /// An engine that runs plugins on `runtime` and records runs in `store`.
    pub fn new(runtime: Arc<Runtime>, store: Arc<dyn WorkflowStore>) -> Self {
        Self {
            runtime,
            store,
            observers: Vec::new(),
            metrics: Vec::new(),
            error_handler: None,
            middleware: Vec::new(),
            sleeper: Arc::new(TokioSleeper),
            secrets: Arc::default(),
            redactor: Redactor::default(),
            live: Arc::default(),
            slots: None,
            dispatcher: None,
        }
    }

    /// Gives the engine the host's secret values: nodes see those their
    /// workflow grants them, and every value is replaced by `***` in what
    /// attempts log, print, return and fail with. Without this, a workflow
    /// that grants a secret does not start.
    pub fn with_secrets(mut self, secrets: Secrets) -> Self {
        self.redactor = secrets.redactor();
        self.secrets = Arc::new(secrets);
        self
    }

    /// Adds an observer of runs.
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observers.push(observer);
        self
    }

    /// Adds a metrics collector.
    pub fn with_metrics(mut self, collector: Arc<dyn MetricsCollector>) -> Self {
        self.metrics.push(collector);
        self
    }

    /// Sets the handler that decides about failed attempts.
    pub fn with_error_handler(mut self, handler: Arc<dyn ErrorHandler>) -> Self {
        self.error_handler = Some(handler);
        self
    }

    /// Adds middleware around every attempt; the first added is outermost.
    pub fn with_middleware(mut self, middleware: Arc<dyn Middleware>) -> Self {
        self.middleware.push(middleware);
        self
    }

    /// Replaces how the engine waits between attempts.
    pub fn with_sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// Bounds the attempts running at once across every run of this
    /// engine (and its clones) by `slots`, handed out fairly between the
    /// runs that wait. Each run's `max_concurrency` still bounds its own
    /// nodes. An attempt that waits for a slot is not started yet: it is
    /// recorded, observed and timed from when it gets one.
    pub fn with_attempt_slots(mut self, slots: Arc<AttemptSlots>) -> Self {
        self.slots = Some(slots);
        self
    }

    /// Hands the attempts of WebAssembly actions to `dispatcher`, which runs
    /// them elsewhere (other hosts), instead of running them here; native
    /// actions still run in this process.
    pub fn with_dispatcher(mut self, dispatcher: Arc<dyn Dispatcher>) -> Self {
        self.dispatcher = Some(dispatcher);
        self
    }

    /// Where attempts run, when not here.
    pub(crate) fn dispatcher(&self) -> Option<&Arc<dyn Dispatcher>> {
        self.dispatcher.as_ref()
    }

    /// The bound on attempts across runs, if one was set.
    pub fn attempt_slots(&self) -> Option<&Arc<AttemptSlots>> {
        self.slots.as_ref()
    }

    /// The store runs are recorded in.
    pub fn store(&self) -> &Arc<dyn WorkflowStore> {
        &self.store
    }

    /// Records a new run of `workflow` and starts it on the current tokio
    /// runtime (this must be called within one).
    ///
    /// Fails if an action has no plugin, or if the run cannot be recorded.
    pub fn start(
        &self,
        workflow: Arc<WorkflowSpec>,
        plugins: Arc<PluginRegistry>,
    ) -> Result<RunHandle, ExecError> {
        launch::start(self, workflow, plugins, launch::Origin::default())
    }

    /// [`start`](Self::start) for a run a schedule started: the run's
    /// record keeps the time it was due (`scheduled_for`).
    pub fn start_scheduled(
        &self,
        workflow: Arc<WorkflowSpec>,
        plugins: Arc<PluginRegistry>,
        due: crate::report::Timestamp,
    ) -> Result<RunHandle, ExecError> {
        let origin = launch::Origin {
            parent: None,
            scheduled_for: Some(due),
        };
        launch::start(self, workflow, plugins, origin)
    }

    /// Records a new run of `workflow` as [`RunStatus::Queued`](crate::RunStatus::Queued)
    /// without starting it, and returns its record: on a shared store, a
    /// worker that has its plugins starts it (with [`resume`](Self::resume)).
    pub fn submit(
        &self,
        workflow: &WorkflowSpec,
        plugins: &PluginRegistry,
    ) -> Result<crate::store::RunRecord, ExecError> {
        launch::submit(self, workflow, plugins)
    }

    /// Continues run `run_id` (or an unambiguous prefix of it), which must
    /// not have succeeded: nodes that succeeded keep their stored outputs
    /// and do not run again; every other node runs, with fresh retries.
    ///
    /// `workflow` and `plugins` should be those the run started with. If
    /// the workflow's text or a plugin used has changed since, the resume
    /// is refused with [`ExecError::Changed`], unless `force` is set: then
    /// the run continues with the workflow and plugins as they are now.
    pub fn resume(
        &self,
        workflow: Arc<WorkflowSpec>,
        plugins: Arc<PluginRegistry>,
        run_id: &str,
        force: bool,
    ) -> Result<RunHandle, ExecError> {
        launch::resume(self, workflow, plugins, run_id, force)
    }

    /// Where run `run_id` (or an unambiguous prefix of its id) stands: the
    /// live state of each node while this engine runs it, else what the
    /// store holds (a finished run, or one another process runs or left).
    /// Nodes come in file order; one without a record is pending.
    pub fn status(&self, run_id: &str) -> Result<RunSnapshot, StoreError> {
        status::status(&self.live, self.store.as_ref(), run_id)
    }

    /// Starts a new run of `workflow`, linked to run `run_id` (or an
    /// unambiguous prefix of it), that reuses what that run produced: the
    /// stored output of every node that succeeded there and is neither one
    /// of `from` nor downstream of one. Every other node runs: those of
    /// `from`, their dependents, and any node without an output. With an
    /// empty `from`, only what did not succeed runs again.
    ///
    /// Refused ([`ExecError::Changed`]) when the workflow's text or a
    /// plugin changed since that run, unless `force` is set; a node of
    /// `from` that the workflow does not have is [`ExecError::UnknownNode`].
    /// The parameters are that run's unless the workflow has values set.
    pub fn retry_from(
        &self,
        workflow: Arc<WorkflowSpec>,
        plugins: Arc<PluginRegistry>,
        run_id: &str,
        from: &[String],
        force: bool,
    ) -> Result<RunHandle, ExecError> {
        launch::retry_from(self, workflow, plugins, run_id, from, force)
    }

    /// Runs `workflow` to its end and returns the outcome.
    ///
    /// A node that fails makes the run fail; that is a report, not an error.
    /// Errors are for runs that could not be carried out.
    pub async fn execute(
        &self,
        workflow: Arc<WorkflowSpec>,
        plugins: Arc<PluginRegistry>,
    ) -> Result<RunReport, ExecError> {
        self.start(workflow, plugins)?.wait().await
    }
}

impl std::fmt::Debug for WorkflowEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowEngine")
            .field("observers", &self.observers.len())
            .field("metrics", &self.metrics.len())
            .field("middleware", &self.middleware.len())
            .finish_non_exhaustive()
    }
}
