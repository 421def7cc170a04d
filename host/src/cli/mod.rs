//! The commands of the `flow` binary.

pub mod completions;
pub mod graph;
pub mod list;
pub mod logging;
pub mod logs;
pub mod manage;
pub mod options;
pub mod out;
pub mod panic;
pub mod plugins;
pub mod progress;
pub mod remote;
pub mod resume;
pub mod retry;
pub mod run;
pub mod serve;
pub mod status;
pub mod submit;
pub mod table;
pub mod validate;
pub mod worker;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use flow_host::runtime::{CacheError, PluginError, RegistryError};
use flow_host::store::{PostgresOptions, PostgresStore, StoreError, default_path};
use flow_host::{
    CompileCache, ExecError, PluginRegistry, Runtime, RuntimeConfig, SledStore, SpecError,
    WorkflowSpec, WorkflowStore,
};

/// Settings shared by the commands.
pub struct Context {
    pub db: Option<PathBuf>,
    /// A PostgreSQL database's address (`--store`), instead of `db`.
    pub store: Option<String>,
    /// Whether `--db` or `--store` was given on the command line (not by
    /// `FLOW_DB` or `FLOW_STORE`).
    pub db_typed: bool,
    pub cache_dir: Option<PathBuf>,
    pub no_cache: bool,
    /// Print only errors.
    pub quiet: bool,
    /// Show errors in full internal detail.
    pub verbose: bool,
    pub log: logging::LogControl,
}

/// An opened run database.
pub struct Opened {
    /// The store.
    pub store: Arc<dyn WorkflowStore>,
    /// The same store when it is the shared one (PostgreSQL).
    pub shared: Option<Arc<PostgresStore>>,
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
    /// ` --db PATH` (` --store URL`, without its password) when the
    /// database was given on the command line, to repeat in hints.
    pub fn db_flag(&self) -> String {
        match (&self.store, &self.db) {
            (Some(url), _) if self.db_typed => {
                format!(" --store {}", flow_host::store::hide_password(url))
            }
            (_, Some(db)) if self.db_typed => format!(" --db {}", db.display()),
            _ => String::new(),
        }
    }

    /// The run database, as messages name it: its directory or its
    /// address (without a password).
    pub fn db_name(&self) -> String {
        match &self.store {
            Some(url) => flow_host::store::hide_password(url),
            None => self
                .db_path()
                .map(|path| path.display().to_string())
                .unwrap_or_default(),
        }
    }

    /// The `flow serve` that holds the (sled) database, if one runs; a
    /// shared store is held by none.
    pub fn server(&self) -> anyhow::Result<Option<remote::Address>> {
        if self.store.is_some() {
            return Ok(None);
        }
        Ok(remote::server_of(&self.db_path()?))
    }

    /// The run database path (of the embedded store).
    pub fn db_path(&self) -> anyhow::Result<PathBuf> {
        match &self.db {
            Some(path) => Ok(path.clone()),
            None => default_path().context(
                "cannot tell where the run database goes (no data directory); pass --db PATH",
            ),
        }
    }

    /// Opens the run database: the PostgreSQL store of `--store`, else the
    /// sled database of `--db`.
    pub fn open_store(&self) -> anyhow::Result<Arc<dyn WorkflowStore>> {
        Ok(self.open()?.store)
    }

    /// Opens the run database, and says whether it is the shared store
    /// (whose task queue runs attempts on workers).
    pub fn open(&self) -> anyhow::Result<Opened> {
        if let Some(url) = &self.store {
            let shared = Arc::new(self.open_postgres(url)?);
            return Ok(Opened {
                store: shared.clone(),
                shared: Some(shared),
            });
        }
        Ok(Opened {
            store: self.open_sled()?,
            shared: None,
        })
    }

    /// Opens the PostgreSQL store at `url`; `FLOW_STORE_CONNECTIONS` and
    /// `FLOW_STORE_RETRY` (a duration) change its pool's size and how long
    /// it waits for an unreachable server.
    pub fn open_postgres(&self, url: &str) -> anyhow::Result<PostgresStore> {
        if !flow_host::store::is_postgres_url(url) {
            return Err(UsageError(format!(
                "--store {}: not a PostgreSQL address (postgres://USER@HOST[:PORT]/DATABASE); \
                 for a directory, use --db",
                flow_host::store::hide_password(url)
            ))
            .into());
        }
        let mut options = PostgresOptions::default();
        if let Ok(text) = std::env::var("FLOW_STORE_CONNECTIONS") {
            options.connections = text.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                UsageError(format!(
                    "FLOW_STORE_CONNECTIONS={text}: not a positive number"
                ))
            })?;
        }
        if let Ok(text) = std::env::var("FLOW_STORE_RETRY") {
            options.retry_for = flow_host::options::parse_duration(&text)
                .map_err(|why| UsageError(format!("FLOW_STORE_RETRY={text}: {why}")))?;
        }
        if let Ok(text) = std::env::var("FLOW_STORE_LEASE") {
            options.lease = flow_host::options::parse_duration(&text)
                .ok()
                .filter(|lease| *lease >= std::time::Duration::from_millis(300))
                .ok_or_else(|| {
                    UsageError(format!(
                        "FLOW_STORE_LEASE={text}: a duration of at least 300ms"
                    ))
                })?;
        }
        Ok(PostgresStore::open(url, options)?)
    }

    /// Opens the embedded sled database.
    pub fn open_sled(&self) -> anyhow::Result<Arc<SledStore>> {
        let path = self.db_path()?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| {
                format!(
                    "cannot create the directory of the run database {}",
                    path.display()
                )
            })?;
        }
        let store = panic::expected(|| SledStore::open(&path))?;
        Ok(Arc::new(store))
    }

    /// The run database for reading: the database itself, or, while a
    /// `flow serve` holds it, that server's API.
    pub fn open_reader(&self) -> anyhow::Result<Arc<dyn flow_host::WorkflowStore>> {
        match self.open_store() {
            Ok(store) => Ok(store),
            Err(error) => {
                let locked = matches!(
                    error.downcast_ref::<StoreError>(),
                    Some(StoreError::Locked { .. })
                );
                let server = match locked {
                    true => self.server()?,
                    false => None,
                };
                match server {
                    Some(address) => Ok(Arc::new(remote::RemoteStore::new(&address)?)),
                    None => Err(error),
                }
            }
        }
    }

    /// The wasm runtime, sized for `workers` attempts at once, and the
    /// compile cache.
    pub fn runtime(&self, workers: usize) -> anyhow::Result<(Arc<Runtime>, CompileCache)> {
        let runtime = Runtime::new(RuntimeConfig::for_workers(workers))?;
        let dir = match (self.no_cache, &self.cache_dir) {
            (true, _) => None,
            (false, Some(dir)) => Some(dir.clone()),
            (false, None) => CompileCache::default_dir(),
        };
        let cache = match dir.map(|dir| CompileCache::open(runtime.engine(), dir)) {
            Some(Ok(cache)) => cache,
            // Someone else could place code there: refuse.
            Some(Err(error @ CacheError::Unsafe { .. })) => return Err(error.into()),
            // Only slower without it.
            Some(Err(error)) => {
                if !self.quiet {
                    out::eprint(format_args!(
                        "warning: cannot write the compile cache ({error}); plugins will compile on every run"
                    ));
                }
                CompileCache::disabled(runtime.engine())
            }
            None => CompileCache::disabled(runtime.engine()),
        };
        Ok((Arc::new(runtime), cache))
    }
}

/// `--secrets`, shared by the commands that run or check workflows.
#[derive(Debug, clap::Args)]
pub struct SecretsArg {
    /// A file of NAME=value lines holding secrets, readable by its owner
    /// only; secrets also come from `FLOW_SECRET_<NAME>` variables, which the
    /// file overrides
    #[arg(long = "secrets", env = "FLOW_SECRETS_FILE", value_name = "FILE")]
    pub file: Option<PathBuf>,
}

impl SecretsArg {
    /// The secrets of the environment and of the file.
    pub fn load(&self) -> anyhow::Result<flow_host::runtime::Secrets> {
        let mut secrets = flow_host::runtime::Secrets::from_env();
        if let Some(file) = &self.file {
            secrets.read_file(file)?;
        }
        Ok(secrets)
    }
}

/// The plugins search path: the flag (or `FLOW_PLUGINS`), else the
/// workflow's `plugins`.
pub fn plugins_dirs(
    flag: &[PathBuf],
    from_workflow: &[PathBuf],
    workflow: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let dirs = if flag.is_empty() { from_workflow } else { flag };
    if dirs.is_empty() {
        return Err(UsageError(format!(
            "{} does not say where its plugins are: add `plugins = \"DIR\"` to its [workflow] table, or pass --plugins DIR",
            workflow.display()
        ))
        .into());
    }
    Ok(dirs.to_vec())
}

/// Loads the plugins of the search path that `spec` uses; the others are
/// only listed when the compile cache knows them. Warns of plugins hidden
/// by others of the same name earlier in the path.
pub async fn load_plugins(
    context: &Context,
    runtime: &Runtime,
    cache: &CompileCache,
    dirs: &[PathBuf],
    spec: &WorkflowSpec,
) -> anyhow::Result<Arc<PluginRegistry>> {
    // The actions of its sub-workflows too: their runs use the same plugins.
    let used = spec.actions();
    let wanted = |name: &str| used.contains(name);
    let registry = runtime.load_plugins_for(dirs, cache, &wanted).await?;
    if !context.quiet {
        for shadowed in registry.shadowed() {
            out::eprint(format_args!("warning: {shadowed}"));
        }
    }
    Ok(Arc::new(registry))
}

/// Reads a workflow file. When it has problems, the actions its nodes name
/// are checked against the plugins too (when they can be found), so that
/// one report shows every problem.
pub fn load_spec(
    context: &Context,
    path: &Path,
    flag_dirs: &[PathBuf],
) -> anyhow::Result<WorkflowSpec> {
    let mut error = match WorkflowSpec::load(path) {
        Ok(spec) => return Ok(spec),
        Err(error @ SpecError::Read { .. }) => return Err(error.into()),
        Err(error) => error,
    };
    let dirs = if flag_dirs.is_empty() {
        error.plugins().to_vec()
    } else {
        flag_dirs.to_vec()
    };
    let used: BTreeSet<String> = error.actions().map(String::from).collect();
    if !dirs.is_empty() && !used.is_empty() {
        let names = context.runtime(1).and_then(|(runtime, cache)| {
            let wanted = |name: &str| used.contains(name);
            let (registry, _) =
                tokio()?.block_on(runtime.scan_plugins_for(&dirs, &cache, &wanted))?;
            Ok(registry.names().map(String::from).collect::<Vec<_>>())
        });
        if let Ok(names) = names {
            error.check_actions(names.iter().map(String::as_str));
        }
    }
    Err(error.into())
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
        if cause.is::<SpecError>()
            || cause.is::<RegistryError>()
            || cause.is::<PluginError>()
            || cause.is::<flow_host::runtime::SecretsError>()
            || cause.is::<flow_host::spec::ParamError>()
        {
            return Exit::Invalid;
        }
        if let Some(error) = cause.downcast_ref::<ExecError>() {
            return match error {
                ExecError::Spec(_)
                | ExecError::NotLoaded { .. }
                | ExecError::NothingToResume { .. }
                | ExecError::StillRunning { .. }
                | ExecError::Changed { .. }
                | ExecError::Params(_)
                | ExecError::UnknownNode { .. } => Exit::Invalid,

                ExecError::Store(_) | ExecError::Aborted | ExecError::PoolTooSmall { .. } => {
                    Exit::Environment
                }
            };
        }
        if let Some(error) = cause.downcast_ref::<StoreError>() {
            return match error {
                StoreError::UnknownRun { .. }
                | StoreError::AmbiguousRun { .. }
                | StoreError::EmptyRunId => Exit::Invalid,
                // The server found the request wrong (not a 401: the
                // environment's token).
                StoreError::Server {
                    status: Some(status),
                    ..
                } if (400..500).contains(status) && *status != 401 => Exit::Invalid,
                _ => Exit::Environment,
            };
        }
        if cause.is::<CacheError>() {
            return Exit::Environment;
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

/// The message for an error: its chain, outermost first, after `error: `,
/// then what to do about it on the command line. Workflow file errors come
/// rendered with their locations already. With `verbose`, the internal
/// form of the chain follows.
pub fn render_error(error: &anyhow::Error, context: &Context) -> String {
    let mut message = render_message(error);
    if let Some(advice) = advice(error, context) {
        message.push_str("; ");
        message.push_str(&advice);
    }
    if context.verbose {
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

/// What the user can do about a library error, in the command line's
/// terms (the library's messages name no flags).
fn advice(error: &anyhow::Error, context: &Context) -> Option<String> {
    let db = context.db_flag();
    for cause in error.chain() {
        if let Some(error) = cause.downcast_ref::<StoreError>() {
            return match error {
                StoreError::UnknownRun { .. } => Some(format!("`flow list{db}` shows the runs")),
                StoreError::Locked { .. } => Some(
                    "wait for it to finish, or give this command another database with --db".into(),
                ),
                StoreError::Schema { .. } | StoreError::NotADatabase { .. } => {
                    Some("or give this command a new database with --db".into())
                }
                _ => None,
            };
        }
        if let Some(ExecError::Changed { retry, .. }) = cause.downcast_ref::<ExecError>() {
            let command = if *retry { "retry" } else { "resume" };
            return Some(format!(
                "{command} with --force to continue with them as they are now"
            ));
        }
        if let Some(CacheError::Unsafe { .. }) = cause.downcast_ref::<CacheError>() {
            return Some("pass --cache-dir DIR, or --no-cache".into());
        }
    }
    None
}

/// Ends a reading command's use of its store, the last thing before the
/// process exits: anything opening it wrote is made durable, and the rest
/// is left to the exit. Freeing a sled database that cached a big run's
/// pages would take a quarter of `flow status` of 100,000 nodes.
pub fn close_reader(store: Arc<dyn flow_host::WorkflowStore>) -> anyhow::Result<()> {
    store.flush()?;
    std::mem::forget(store);
    Ok(())
}
