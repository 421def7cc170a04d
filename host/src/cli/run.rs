//! `flow run`: execute a workflow.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use flow_host::exec::{Canceller, RunHandle, Worker};
use flow_host::observe::{PrometheusMetrics, format_duration};
use flow_host::{
    ExecError, PluginRegistry, RunReport, RunStatus, WorkflowEngine, WorkflowSpec, WorkflowStore,
};
use serde_json::Value;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

use super::options::OptionArgs;
use super::progress::{Progress, ProgressMode, print_summary};
use super::{Context, Exit, UsageError, load_plugins, out, plugins_dirs};

/// `--plugins`, shared by the commands that load plugins.
#[derive(Debug, Args)]
pub struct PluginsArg {
    /// A plugins directory; give it several times (or separate
    /// directories with `:`) for a search path where the first match wins
    /// [default: the workflow's `plugins`, relative to the file]
    #[arg(
        long = "plugins",
        env = "FLOW_PLUGINS",
        value_name = "DIR",
        value_delimiter = ':'
    )]
    pub dirs: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The workflow file
    workflow: PathBuf,

    #[command(flatten)]
    plugins: PluginsArg,

    #[command(flatten)]
    secrets: super::SecretsArg,

    #[command(flatten)]
    show: ShowArgs,

    #[command(flatten)]
    params: ParamArgs,

    #[command(flatten)]
    options: OptionArgs,

    /// With a shared store (--store): record the run and return its id at
    /// once; the store's `flow worker`s run it
    #[arg(long)]
    submit: bool,
}

/// The run's parameters (`[params]`).
#[derive(Debug, Args)]
pub struct ParamArgs {
    /// Give parameter KEY the value VALUE (read as the parameter's type:
    /// `limit=25`, `dry_run=true`, `ids=[1,2]`); repeatable
    #[arg(long = "param", value_name = "KEY=VALUE")]
    param: Vec<String>,

    /// Read parameters from FILE, a JSON object; --param wins over it
    #[arg(long, value_name = "FILE")]
    params: Option<PathBuf>,
}

impl ParamArgs {
    /// The values given, if any: the file's, then each --param.
    fn given(&self) -> anyhow::Result<Option<serde_json::Map<String, serde_json::Value>>> {
        if self.param.is_empty() && self.params.is_none() {
            return Ok(None);
        }
        let mut values = serde_json::Map::new();
        if let Some(file) = &self.params {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read the parameters file {}", file.display()))?;
            match serde_json::from_str(&text) {
                Ok(serde_json::Value::Object(object)) => values = object,
                Ok(_) => {
                    return Err(UsageError(format!(
                        "{}: the parameters file must hold a JSON object",
                        file.display()
                    ))
                    .into());
                }
                Err(error) => {
                    return Err(UsageError(format!("{}: not JSON: {error}", file.display())).into());
                }
            }
        }
        for pair in &self.param {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(UsageError(format!(
                    "--param {pair}: write KEY=VALUE, e.g. --param region=eu"
                ))
                .into());
            };
            values.insert(key.trim().to_string(), serde_json::Value::from(value));
        }
        Ok(Some(values))
    }
}

/// What `flow run` and `flow resume` print and write besides the run.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Print the run's report as one JSON document instead of text
    #[arg(long)]
    json: bool,

    /// How to show progress while the run goes
    #[arg(long, value_enum, value_name = "MODE", default_value_t = ProgressMode::Auto)]
    progress: ProgressMode,

    /// Write the run's metrics to FILE in the Prometheus text format
    #[arg(long, value_name = "FILE")]
    metrics_out: Option<PathBuf>,
}

pub fn run(context: &Context, args: RunArgs) -> anyhow::Result<Exit> {
    if args.submit && context.store.is_none() {
        return Err(UsageError(
            "--submit hands the run to the workers of a shared store: pass --store postgres://USER@HOST/DATABASE (or set FLOW_STORE)".into(),
        )
        .into());
    }
    // A server holds the database: the run goes to it.
    if let Some(address) = context.server()? {
        if !args.plugins.dirs.is_empty() || args.options.given() || args.show.metrics_out.is_some()
        {
            return Err(UsageError(format!(
                "a flow serve ({}) holds the run database and runs workflows with its own plugins and options:                  leave out --plugins, option flags and --metrics-out, or give this run another --db",
                address.url
            ))
            .into());
        }
        return super::submit::run(
            context,
            &address,
            &args.workflow,
            args.params.given()?,
            args.show.json,
        );
    }
    let mut spec = super::load_spec(context, &args.workflow, &args.plugins.dirs)?;
    spec.apply_overrides(&args.options.overrides());
    let params = match args.params.given()? {
        Some(given) => spec.set_params(&given),
        // Checks now that every required parameter was given.
        None => spec.resolved_params().map(|_| ()),
    };
    params.map_err(|error| {
        let file = args.workflow.display();
        UsageError(format!(
            "{file}: {}",
            error.problems.join(&format!("\n{file}: "))
        ))
    })?;
    context
        .log
        .workflow_default(spec.options.log_level.as_deref());
    let spec = Arc::new(spec);
    let dirs = plugins_dirs(&args.plugins.dirs, &spec.plugins, &args.workflow)?;
    let secrets = args.secrets.load()?;
    let opened = context.open()?;
    if args.submit {
        return submit(context, opened.store, &spec, &dirs, args.show.json);
    }
    execute(
        context,
        opened,
        spec,
        &dirs,
        secrets,
        &args.show,
        |engine, spec, plugins| engine.start(spec, plugins),
    )
}

/// `flow run --submit`: records the run as queued for the store's workers.
fn submit(
    context: &Context,
    store: Arc<dyn WorkflowStore>,
    spec: &WorkflowSpec,
    dirs: &[PathBuf],
    json: bool,
) -> anyhow::Result<Exit> {
    let (runtime, cache) = context.runtime(1)?;
    let record = super::tokio()?.block_on(async {
        let plugins = load_plugins(context, &runtime, &cache, dirs, spec).await?;
        spec.check_actions(plugins.names())?;
        anyhow::Ok(WorkflowEngine::new(runtime.clone(), store).submit(spec, &plugins)?)
    })?;
    let mut out = out::stdout();
    if json {
        writeln!(
            out,
            "{}",
            serde_json::json!({ "run_id": record.run_id, "status": record.status })
        )?;
    } else {
        writeln!(out, "run {} queued", record.run_id)?;
        if !context.quiet {
            out::eprint(format_args!(
                "a `flow worker` of {} will run it; follow it with: flow status {}{}",
                context.db_name(),
                record.run_id,
                context.db_flag()
            ));
        }
    }
    out.flush()?;
    Ok(Exit::Success)
}

/// Runs (or resumes) a workflow, printing as it goes, and says how it ended.
pub fn execute(
    context: &Context,
    opened: super::Opened,
    spec: Arc<WorkflowSpec>,
    dirs: &[PathBuf],
    secrets: flow_host::runtime::Secrets,
    show: &ShowArgs,
    launch: impl FnOnce(
        &WorkflowEngine,
        Arc<WorkflowSpec>,
        Arc<PluginRegistry>,
    ) -> Result<RunHandle, ExecError>,
) -> anyhow::Result<Exit> {
    let super::Opened { store, shared } = opened;
    let (runtime, cache) = context.runtime(spec.options.max_concurrency.workers())?;
    let text = !show.json && !context.quiet;
    let mode = match show.progress.resolve() {
        _ if !text || !spec.options.observability => ProgressMode::Off,
        mode => mode,
    };
    let progress = Arc::new(Progress::new(&spec, mode));
    let metrics = match &show.metrics_out {
        Some(path) => {
            // Found unwritable now rather than after the run.
            std::fs::File::create(path)
                .with_context(|| format!("cannot write the metrics to {}", path.display()))?;
            if !spec.options.observability {
                out::eprint(format_args!(
                    "warning: the workflow sets `observability = false`: {} will hold no metrics",
                    path.display()
                ));
            }
            Some(Arc::new(PrometheusMetrics::new()))
        }
        None => None,
    };
    let report = super::tokio()?.block_on(async {
        let plugins = load_plugins(context, &runtime, &cache, dirs, &spec).await?;
        spec.check_actions(plugins.names())?;
        spec.check_secrets(&secrets)?;
        let mut engine = WorkflowEngine::new(runtime.clone(), store.clone())
            .with_observer(progress.clone())
            .with_secrets(secrets.clone());
        if let Some(metrics) = &metrics {
            engine = engine.with_metrics(metrics.clone());
        }
        // On the shared store, attempts go through its task queue, and
        // this process is one more worker while its run lasts.
        let mut worker = None;
        if let Some(shared) = &shared {
            let queue = shared.queue();
            engine = engine.with_dispatcher(Arc::new(queue.clone()));
            worker = Some(Arc::new(Worker::new(
                shared.owner(),
                queue,
                store.clone(),
                runtime.clone(),
                plugins.clone(),
                secrets,
                spec.options.max_concurrency.workers(),
            )));
        }
        // Handlers go in before the run starts, so no signal is missed.
        let signals = Signals::install()?;
        let handle = launch(&engine, spec.clone(), plugins)?;
        signals.cancel(handle.canceller(), handle.run_id().to_string());
        let stop = CancellationToken::new();
        let working = worker.map(|worker| tokio::spawn(worker.run(stop.clone())));
        let watch = shared.map(|shared| {
            super::worker::watch_cancel(shared, handle.run_id().to_string(), handle.canceller())
        });
        let report = handle.wait().await;
        stop.cancel();
        if let Some(watch) = watch {
            watch.abort();
        }
        if let Some(working) = working {
            let _ = working.await;
        }
        anyhow::Ok(report?)
    });
    progress.finish();
    let report = report?;

    if let (Some(path), Some(metrics)) = (&show.metrics_out, &metrics) {
        std::fs::write(path, metrics.render())
            .with_context(|| format!("cannot write the metrics to {}", path.display()))?;
    }
    // The run is over and recorded: a reader of stdout that went away
    // does not change how it ended.
    match show_result(context, store.as_ref(), &spec, &report, show.json, mode) {
        Err(error) if !out::is_broken_pipe(&error) => Err(error),
        _ => Ok(exit(&report)),
    }
}

/// Prints how a run ended: its JSON document, or a summary, the outputs
/// and the last line.
fn show_result(
    context: &Context,
    store: &dyn WorkflowStore,
    spec: &WorkflowSpec,
    report: &RunReport,
    json: bool,
    mode: ProgressMode,
) -> anyhow::Result<()> {
    let mut out = out::stdout();
    if json {
        let run = store.find_run(&report.run_id)?;
        let nodes = store.history(&report.run_id)?;
        super::status::write_document(&mut out, &run, &nodes, Some(spec))?;
        out.flush()?;
        return Ok(());
    }
    let db = context.db_flag();
    let id = &report.run_id;
    let elapsed = format_duration(report.elapsed);
    let failed_nodes = match report.failed_nodes {
        0 => String::new(),
        1 => " with 1 failed node (allowed by continue_on_error)".into(),
        n => format!(" with {n} failed nodes (allowed by continue_on_error)"),
    };
    let last = match report.status {
        RunStatus::Cancelled => {
            format!("run {id} cancelled after {elapsed}; continue it with: flow resume {id}{db}")
        }
        RunStatus::Failed => format!(
            "run {id} failed in {elapsed}{} (details: flow status {id}{db}; after fixing the cause: flow resume {id}{db})",
            // Without --quiet, the lines above said why.
            match (&report.error, context.quiet) {
                (Some(error), true) => format!(": {error}"),
                _ => String::new(),
            }
        ),
        status => {
            format!("run {id} {status}{failed_nodes} in {elapsed} (details: flow status {id}{db})")
        }
    };
    if context.quiet {
        if report.status != RunStatus::Succeeded {
            out::eprint(&last);
        }
        return Ok(());
    }
    if mode == ProgressMode::Off {
        writeln!(
            out,
            "run {id} of workflow `{}` ({} nodes)",
            spec.id,
            spec.nodes.len()
        )?;
    }
    print_summary(&mut out, report, &db)?;
    print_outputs(&mut out, report)?;
    writeln!(out, "{last}")?;
    out.flush()?;
    Ok(())
}

fn exit(report: &RunReport) -> Exit {
    match report.status {
        RunStatus::Succeeded => Exit::Success,
        RunStatus::Cancelled => Exit::Cancelled,
        _ => Exit::RunFailed,
    }
}

/// Ctrl-C (SIGINT) and SIGTERM.
struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }

    /// The first signal cancels the run: running nodes are stopped and
    /// recorded. The second exits at once.
    fn cancel(mut self, canceller: Canceller, run_id: String) {
        tokio::spawn(async move {
            self.next().await;
            out::eprint(format_args!(
                "cancelling run {run_id}: stopping the running nodes (press Ctrl-C again to exit at once)"
            ));
            canceller.cancel();
            self.next().await;
            out::eprint(format_args!(
                "exiting at once: run {run_id} is left as it was"
            ));
            std::process::exit(Exit::Cancelled as i32);
        });
    }
}

fn print_outputs(out: &mut impl Write, report: &RunReport) -> std::io::Result<()> {
    let mut outputs = report.outputs().peekable();
    if outputs.peek().is_none() {
        return Ok(());
    }
    writeln!(out, "outputs:")?;
    for (node, output) in outputs {
        let pretty = serde_json::from_str::<Value>(output)
            .and_then(|value| serde_json::to_string_pretty(&value))
            .unwrap_or_else(|_| output.to_string());
        let indented = pretty.replace('\n', "\n  ");
        writeln!(out, "  {node}: {indented}")?;
    }
    Ok(())
}
