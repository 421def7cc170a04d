//! What every request of a server shares: the store, the one engine and
//! the plugin registries every run uses, the runs going on, the event
//! stream.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use flow_host::exec::{Canceller, RunHandle};
use flow_host::observe::PrometheusMetrics;
use flow_host::runtime::Secrets;
use flow_host::{
    CompileCache, ExecError, PluginRegistry, Runtime, WorkflowEngine, WorkflowSpec, WorkflowStore,
};
use tokio_util::task::TaskTracker;

use super::auth::TokenFile;
use super::catalog::Catalog;
use super::events::Broadcaster;
use super::problem::Problem;

/// The server's state, behind an `Arc` in every handler.
pub struct App {
    pub store: Arc<dyn WorkflowStore>,
    pub engine: WorkflowEngine,
    pub runtime: Arc<Runtime>,
    pub cache: CompileCache,
    pub secrets: Secrets,
    /// `--plugins`, for every workflow; empty: each workflow's own.
    pub plugins: Vec<PathBuf>,
    pub catalog: Catalog,
    pub events: Broadcaster,
    pub metrics: Arc<PrometheusMetrics>,
    pub tokens: Option<TokenFile>,
    pub started: Instant,
    /// Runs of this server that have not ended, by id, each with the
    /// number of its launch (a resumed run's old task must not remove
    /// its new entry).
    active: Mutex<HashMap<String, (u64, Canceller)>>,
    launches: std::sync::atomic::AtomicU64,
    /// The registry of each plugins search path, loaded once and again
    /// when a file of it changes.
    registries: tokio::sync::Mutex<Registries>,
    /// Documents of runs that ended.
    pub documents: super::documents::Documents,
    /// Run graphs and node states, for the node views.
    pub nodes: super::node_cache::NodeCache,
    /// Idempotency keys of run starts.
    pub keys: tokio::sync::Mutex<super::idempotency::Keys>,
    /// Waits for the runs' tasks on shutdown.
    pub tasks: TaskTracker,
    stopping: AtomicBool,
    /// Cancelled on shutdown: ends the event streams, so that the
    /// server's connections close.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// The `.wasm` files of a search path with their sizes and times.
type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// Each search path's registry, with the files it was loaded from.
type Registries = HashMap<Vec<PathBuf>, (Fingerprint, Arc<PluginRegistry>)>;

impl App {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn WorkflowStore>,
        engine: WorkflowEngine,
        runtime: Arc<Runtime>,
        cache: CompileCache,
        secrets: Secrets,
        plugins: Vec<PathBuf>,
        catalog: Catalog,
        events: Broadcaster,
        metrics: Arc<PrometheusMetrics>,
        tokens: Option<TokenFile>,
    ) -> Self {
        Self {
            store,
            engine,
            runtime,
            cache,
            secrets,
            plugins,
            catalog,
            events,
            metrics,
            tokens,
            started: Instant::now(),
            active: Mutex::default(),
            launches: std::sync::atomic::AtomicU64::new(0),
            registries: tokio::sync::Mutex::default(),
            keys: tokio::sync::Mutex::default(),
            documents: Default::default(),
            nodes: Default::default(),
            tasks: TaskTracker::new(),
            stopping: AtomicBool::new(false),
            shutdown: tokio_util::sync::CancellationToken::new(),
        }
    }

    fn active(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, Canceller)>> {
        self.active.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether this server runs `run_id` now.
    pub fn is_running(&self, run_id: &str) -> bool {
        self.active().contains_key(run_id)
    }

    /// How many runs this server runs now.
    pub fn active_runs(&self) -> usize {
        self.active().len()
    }

    /// Cancels run `run_id`; false if this server does not run it.
    pub fn cancel(&self, run_id: &str) -> bool {
        match self.active().get(run_id) {
            Some((_, canceller)) => {
                canceller.cancel();
                true
            }
            None => false,
        }
    }

    /// Cancels every run.
    pub fn cancel_all(&self) {
        for (_, canceller) in self.active().values() {
            canceller.cancel();
        }
    }

    /// Stops taking new runs.
    pub fn stop_accepting(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// The plugins search path of a workflow file: `--plugins`, else its
    /// own.
    pub fn plugins_dirs(&self, spec: &WorkflowSpec, path: &Path) -> Result<Vec<PathBuf>, Problem> {
        match (self.plugins.is_empty(), spec.plugins.is_empty()) {
            (false, _) => Ok(self.plugins.clone()),
            (true, false) => Ok(spec.plugins.clone()),
            (true, true) => Err(Problem::invalid(format!(
                "{} does not say where its plugins are: add `plugins = \"DIR\"` to its [workflow] table, or start the server with --plugins DIR",
                path.display()
            ))),
        }
    }

    /// The registry of a search path: the one loaded before unless a
    /// `.wasm` file of it changed since.
    pub async fn registry(&self, dirs: &[PathBuf]) -> Result<Arc<PluginRegistry>, Problem> {
        let fingerprint = fingerprint(dirs);
        let mut registries = self.registries.lock().await;
        if let Some((seen, registry)) = registries.get(dirs)
            && *seen == fingerprint
        {
            return Ok(registry.clone());
        }
        let (registry, errors) = self
            .runtime
            .scan_plugins_for(dirs, &self.cache, &|_| true)
            .await
            .map_err(|error| Problem::invalid(error.to_string()))?;
        // A broken plugin keeps only the workflows that use it from
        // running; they are told why when they start.
        for error in &errors {
            tracing::warn!(target: "flow::serve", "plugin not loaded: {error}");
        }
        let registry = Arc::new(registry);
        registries.insert(dirs.to_vec(), (fingerprint, registry.clone()));
        Ok(registry)
    }

    /// Starts a run with `launch` on the server's engine and follows it
    /// until it ends. `spec` must be checked already (params set).
    pub async fn launch(
        self: &Arc<Self>,
        spec: Arc<WorkflowSpec>,
        dirs: &[PathBuf],
        launch: impl FnOnce(
            &WorkflowEngine,
            Arc<WorkflowSpec>,
            Arc<PluginRegistry>,
        ) -> Result<RunHandle, ExecError>,
    ) -> Result<String, Problem> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err(Problem::unavailable(
                "the server is shutting down and starts no runs",
            ));
        }
        let registry = self.registry(dirs).await?;
        spec.check_actions(registry.names())?;
        spec.check_secrets(&self.secrets)?;
        let handle = launch(&self.engine, spec, registry)?;
        let run_id = handle.run_id().to_string();
        let launch = self.launches.fetch_add(1, Ordering::Relaxed);
        self.active()
            .insert(run_id.clone(), (launch, handle.canceller()));
        let app = self.clone();
        let id = run_id.clone();
        self.tasks.spawn(async move {
            let outcome = handle.wait().await;
            let mut active = app.active();
            if active.get(&id).is_some_and(|(number, _)| *number == launch) {
                active.remove(&id);
            }
            drop(active);
            match outcome {
                Ok(report) => tracing::info!(
                    target: "flow::serve",
                    "run {id} {} in {:.3} s", report.status, report.elapsed.as_secs_f64()
                ),
                Err(error) => {
                    tracing::error!(target: "flow::serve", "run {id} could not go on: {error}")
                }
            }
        });
        Ok(run_id)
    }

    /// Waits up to `grace` for the runs to end, then cancels the rest and
    /// waits for their records.
    pub async fn drain(&self, grace: Duration) {
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            let left = self.active_runs();
            tracing::warn!(
                target: "flow::serve",
                "cancelling {left} run(s) still going after the shutdown grace of {}",
                humantime::format_duration(grace)
            );
            self.cancel_all();
            self.tasks.wait().await;
        }
    }
}

fn fingerprint(dirs: &[PathBuf]) -> Fingerprint {
    let mut files = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "wasm")
                && let Ok(meta) = entry.metadata()
            {
                files.push((path, meta.len(), meta.modified().ok()));
            }
        }
    }
    files.sort();
    files
}
