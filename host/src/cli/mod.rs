//! The commands of the `flow` binary.

pub mod graph;
pub mod list;
pub mod logging;
pub mod logs;
pub mod manage;
pub mod options;
pub mod panic;
pub mod plugins;
pub mod progress;
pub mod resume;
pub mod run;
pub mod status;
pub mod table;
pub mod validate;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use flow_host::runtime::{PluginError, RegistryError};
use flow_host::store::StoreError;
use flow_host::{
    CompileCache, ExecError, PluginRegistry, Runtime, RuntimeConfig, SledStore, SpecError,
    WorkflowSpec,
};

/// Settings shared by the commands.
pub struct Context {
    pub db: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub no_cache: bool,
    /// Print only errors.
    pub quiet: bool,
    /// Show errors in full internal detail.
    pub verbose: bool,
    pub log: logging::LogControl,
}

/// How `flow` ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything worked.
    Success = 0,
    /// The run failed (a node failed).
    RunFailed = 1,
    /// The workflow, the plugins or the arguments are invalid.
    Invalid = 2,
    /// The environment failed: database, files.
    Environment = 3,
    /// The run was cancelled (Ctrl-C, SIGTERM).
    Cancelled = 130,
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit as u8)
    }
}

impl Context {
    /// ` --db PATH` when the database was chosen, to repeat in hints.
    pub fn db_flag(&self) -> String {
        match &self.db {
            Some(db) => format!(" --db {}", db.display()),
            None => String::new(),
        }
    }

    /// The run database path.
    pub fn db_path(&self) -> anyhow::Result<PathBuf> {
        match &self.db {
            Some(path) => Ok(path.clone()),
            None => dirs::data_local_dir()
                .map(|dir| dir.join("flow").join("db"))
                .context(
                    "cannot tell where the run database goes (no data directory); pass --db PATH",
                ),
        }
    }

    /// Opens the run database.
    pub fn open_store(&self) -> anyhow::Result<Arc<SledStore>> {
        let path = self.db_path()?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| {
                format!(
                    "cannot create the directory of the run database {}",
                    path.display()
                )
            })?;
        }
        Ok(Arc::new(SledStore::open(&path)?))
    }

    /// The wasm runtime, sized for `workers` attempts at once, and the
    /// compile cache.
    pub fn runtime(&self, workers: usize) -> anyhow::Result<(Arc<Runtime>, CompileCache)> {
        let runtime = Runtime::new(RuntimeConfig::for_workers(workers))?;
        let dir = if self.no_cache {
            None
        } else {
            self.cache_dir
                .clone()
                .or_else(|| dirs::cache_dir().map(|dir| dir.join("flow").join("compiled")))
        };
        let cache = CompileCache::new(runtime.engine(), dir);
        Ok((Arc::new(runtime), cache))
    }
}

/// The plugins directory: the flag, else the workflow's `plugins`.
pub fn plugins_dir(
    flag: Option<&Path>,
    from_workflow: Option<&Path>,
    workflow: &Path,
) -> anyhow::Result<PathBuf> {
    flag.or(from_workflow).map(Path::to_path_buf).ok_or_else(|| {
        UsageError(format!(
            "{} does not say where its plugins are: add `plugins = \"DIR\"` to its [workflow] table, or pass --plugins DIR",
            workflow.display()
        ))
        .into()
    })
}

/// Loads the plugins of `dir` that `spec` uses; the others are only
/// listed when the compile cache knows them.
pub async fn load_plugins(
    runtime: &Runtime,
    cache: &CompileCache,
    dir: &Path,
    spec: &WorkflowSpec,
) -> anyhow::Result<Arc<PluginRegistry>> {
    let used: BTreeSet<&str> = spec.nodes.iter().map(|node| node.action.as_str()).collect();
    let wanted = |name: &str| used.contains(name);
    Ok(Arc::new(
        runtime.load_plugins_for(dir, cache, &wanted).await?,
    ))
}

/// A multi-threaded async runtime for the commands that run plugins.
pub fn tokio() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The exit code an error deserves.
pub fn exit_code(error: &anyhow::Error) -> Exit {
    for cause in error.chain() {
        if cause.is::<SpecError>() || cause.is::<RegistryError>() || cause.is::<PluginError>() {
            return Exit::Invalid;
        }
        if let Some(error) = cause.downcast_ref::<ExecError>() {
            return match error {
                ExecError::Spec(_)
                | ExecError::NotLoaded { .. }
                | ExecError::NothingToResume { .. }
                | ExecError::StillRunning { .. }
                | ExecError::Changed { .. } => Exit::Invalid,

                ExecError::Store(_) | ExecError::Aborted | ExecError::PoolTooSmall { .. } => {
                    Exit::Environment
                }
            };
        }
        if let Some(error) = cause.downcast_ref::<StoreError>() {
            return match error {
                StoreError::UnknownRun { .. } | StoreError::AmbiguousRun { .. } => Exit::Invalid,
                _ => Exit::Environment,
            };
        }
        if cause.is::<UsageError>() {
            return Exit::Invalid;
        }
    }
    Exit::Environment
}

/// A mistake in how `flow` was called.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The message for an error: its chain, outermost first, after `error: `.
/// Workflow file errors come rendered with their locations already. With
/// `verbose`, the internal form of the chain follows.
pub fn render_error(error: &anyhow::Error, verbose: bool) -> String {
    let message = render_message(error);
    if verbose {
        format!("{message}\n\ndetail (--verbose):\n{error:?}")
    } else {
        message
    }
}

fn render_message(error: &anyhow::Error) -> String {
    if let Some(spec @ SpecError::Invalid { .. }) = error.downcast_ref::<SpecError>() {
        return spec.to_string();
    }
    let mut message = format!("error: {error}");
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}
