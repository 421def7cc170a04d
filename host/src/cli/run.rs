//! `flow run`: execute a workflow.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use flow_host::exec::{Canceller, RunHandle};
use flow_host::observe::{PrometheusMetrics, format_duration};
use flow_host::{
    ExecError, NodeStatus, PluginRegistry, RunReport, RunStatus, SledStore, WorkflowEngine,
    WorkflowSpec,
};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::signal::unix::{Signal, SignalKind, signal};

use super::options::OptionArgs;
use super::progress::{Progress, ProgressMode, print_summary};
use super::{Context, Exit, load_plugins, plugins_dir};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The workflow file
    workflow: PathBuf,

    /// The plugins directory [default: the workflow's `plugins`, relative to the file]
    #[arg(long, value_name = "DIR")]
    plugins: Option<PathBuf>,

    #[command(flatten)]
    show: ShowArgs,

    #[command(flatten)]
    options: OptionArgs,
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
    let mut spec = WorkflowSpec::load(&args.workflow)?;
    spec.apply_overrides(&args.options.overrides());
    context
        .log
        .workflow_default(spec.options.log_level.as_deref());
    let spec = Arc::new(spec);
    let dir = plugins_dir(
        args.plugins.as_deref(),
        spec.plugins.as_deref(),
        &args.workflow,
    )?;
    let store = context.open_store()?;
    execute(
        context,
        store,
        spec,
        &dir,
        &args.show,
        |engine, spec, plugins| engine.start(spec, plugins),
    )
}

/// Runs (or resumes) a workflow, printing as it goes, and says how it ended.
pub fn execute(
    context: &Context,
    store: Arc<SledStore>,
    spec: Arc<WorkflowSpec>,
    dir: &Path,
    show: &ShowArgs,
    launch: impl FnOnce(
        &WorkflowEngine,
        Arc<WorkflowSpec>,
        Arc<PluginRegistry>,
    ) -> Result<RunHandle, ExecError>,
) -> anyhow::Result<Exit> {
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
                eprintln!(
                    "warning: the workflow sets `observability = false`: {} will hold no metrics",
                    path.display()
                );
            }
            Some(Arc::new(PrometheusMetrics::new()))
        }
        None => None,
    };
    let report = super::tokio()?.block_on(async {
        let plugins = load_plugins(&runtime, &cache, dir, &spec).await?;
        spec.check_actions(plugins.names())?;
        let mut engine = WorkflowEngine::new(runtime, store).with_observer(progress.clone());
        if let Some(metrics) = &metrics {
            engine = engine.with_metrics(metrics.clone());
        }
        // Handlers go in before the run starts, so no signal is missed.
        let signals = Signals::install()?;
        let handle = launch(&engine, spec.clone(), plugins)?;
        signals.cancel(handle.canceller(), handle.run_id().to_string());
        anyhow::Ok(handle.wait().await?)
    });
    progress.finish();
    let report = report?;

    if let (Some(path), Some(metrics)) = (&show.metrics_out, &metrics) {
        std::fs::write(path, metrics.render())
            .with_context(|| format!("cannot write the metrics to {}", path.display()))?;
    }
    if show.json {
        println!("{}", report_json(&report));
        return Ok(exit(&report));
    }
    let db = context.db_flag();
    let id = &report.run_id;
    let elapsed = format_duration(report.elapsed);
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
        status => format!("run {id} {status} in {elapsed} (details: flow status {id}{db})"),
    };
    if context.quiet {
        if report.status != RunStatus::Succeeded {
            eprintln!("{last}");
        }
        return Ok(exit(&report));
    }
    if mode == ProgressMode::Off {
        println!(
            "run {id} of workflow `{}` ({} nodes)",
            spec.id,
            spec.nodes.len()
        );
    }
    print_summary(&report, &db);
    print_outputs(&report);
    println!("{last}");
    Ok(exit(&report))
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
            eprintln!(
                "cancelling run {run_id}: stopping the running nodes (press Ctrl-C again to exit at once)"
            );
            canceller.cancel();
            self.next().await;
            eprintln!("exiting at once: run {run_id} is left as it was");
            std::process::exit(Exit::Cancelled as i32);
        });
    }
}

fn print_outputs(report: &RunReport) {
    let mut outputs = report.outputs().peekable();
    if outputs.peek().is_none() {
        return;
    }
    println!("outputs:");
    for (node, output) in outputs {
        let pretty = serde_json::from_str::<Value>(output)
            .and_then(|value| serde_json::to_string_pretty(&value))
            .unwrap_or_else(|_| output.to_string());
        let indented = pretty.replace('\n', "\n  ");
        println!("  {node}: {indented}");
    }
}

/// The report as JSON; outputs are embedded as they are.
pub fn report_json(report: &RunReport) -> String {
    let raw = |text: &str| RawValue::from_string(text.to_string()).ok();
    let nodes: Vec<Value> = report
        .nodes
        .iter()
        .map(|node| {
            json!({
                "id": node.id,
                "action": node.action,
                "status": node.status.name(),
                "skipped_because": match &node.status {
                    NodeStatus::Skipped { because } => Some(because),
                    _ => None,
                },
                "attempts": node.attempts,
                "elapsed_ms": node.elapsed.as_secs_f64() * 1e3,
                "fuel_used": node.fuel_used,
                "output": node.output.as_deref().and_then(raw),
                "error": node.error,
            })
        })
        .collect();
    let outputs: serde_json::Map<String, Value> = report
        .outputs()
        .filter_map(|(node, output)| {
            Some((node.to_string(), serde_json::to_value(raw(output)?).ok()?))
        })
        .collect();
    json!({
        "run_id": report.run_id,
        "workflow_id": report.workflow_id,
        "status": report.status,
        "error": report.error,
        "elapsed_ms": report.elapsed.as_secs_f64() * 1e3,
        "nodes": nodes,
        "outputs": outputs,
    })
    .to_string()
}
