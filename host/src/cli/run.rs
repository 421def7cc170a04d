//! `flow run`: execute a workflow.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use flow_host::exec::{Canceller, RunHandle};
use flow_host::observe::format_duration;
use flow_host::{
    Event, ExecError, NodeReport, NodeStatus, Observer, PluginRegistry, RunReport, RunStatus,
    SledStore, WorkflowEngine, WorkflowSpec,
};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::signal::unix::{Signal, SignalKind, signal};

use super::options::OptionArgs;
use super::{Context, Exit, load_plugins, plugins_dir};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The workflow file
    workflow: PathBuf,

    /// The plugins directory [default: the workflow's `plugins`, relative to the file]
    #[arg(long, value_name = "DIR")]
    plugins: Option<PathBuf>,

    /// Print the run's report as one JSON document instead of text
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    options: OptionArgs,
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
        args.json,
        |engine, spec, plugins| engine.start(spec, plugins),
    )
}

/// Runs (or resumes) a workflow, printing as it goes, and says how it ended.
pub fn execute(
    context: &Context,
    store: Arc<SledStore>,
    spec: Arc<WorkflowSpec>,
    dir: &Path,
    json: bool,
    launch: impl FnOnce(
        &WorkflowEngine,
        Arc<WorkflowSpec>,
        Arc<PluginRegistry>,
    ) -> Result<RunHandle, ExecError>,
) -> anyhow::Result<Exit> {
    let (runtime, cache) = context.runtime(spec.options.max_concurrency.workers())?;
    let live = !json && spec.options.observability;
    let report = super::tokio()?.block_on(async {
        let plugins = load_plugins(&runtime, &cache, dir).await?;
        spec.check_actions(plugins.names())?;
        let mut engine = WorkflowEngine::new(runtime, store);
        if live {
            engine = engine.with_observer(Arc::new(Printer::new(&spec)));
        }
        // Handlers go in before the run starts, so no signal is missed.
        let signals = Signals::install()?;
        let handle = launch(&engine, spec.clone(), plugins)?;
        signals.cancel(handle.canceller(), handle.run_id().to_string());
        anyhow::Ok(handle.wait().await?)
    })?;

    if json {
        println!("{}", report_json(&report));
        return Ok(exit(&report));
    }
    if !live {
        let printer = Printer::new(&spec);
        println!(
            "run {} of workflow `{}` ({} nodes)",
            report.run_id,
            spec.id,
            spec.nodes.len()
        );
        for node in &report.nodes {
            println!(
                "{}",
                node_line(node, printer.id_width, printer.action_width)
            );
        }
    }
    print_outputs(&report);
    let db = match &context.db {
        Some(db) => format!(" --db {}", db.display()),
        None => String::new(),
    };
    match report.status {
        RunStatus::Cancelled => println!(
            "run {} cancelled after {}; continue it with: flow resume {}{db}",
            report.run_id,
            format_duration(report.elapsed),
            report.run_id,
        ),
        RunStatus::Failed => println!(
            "run {} failed in {} (details: flow status {}{db}; after fixing the cause: flow resume {}{db})",
            report.run_id,
            format_duration(report.elapsed),
            report.run_id,
            report.run_id,
        ),
        status => println!(
            "run {} {status} in {} (details: flow status {}{db})",
            report.run_id,
            format_duration(report.elapsed),
            report.run_id,
        ),
    }
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

/// Prints a line per node as it finishes.
struct Printer {
    id_width: usize,
    action_width: usize,
}

impl Printer {
    fn new(spec: &WorkflowSpec) -> Self {
        Self {
            id_width: spec.nodes.iter().map(|n| n.id.len()).max().unwrap_or(0),
            action_width: spec.nodes.iter().map(|n| n.action.len()).max().unwrap_or(0),
        }
    }
}

impl Observer for Printer {
    fn on_event(&self, event: &Event<'_>) {
        let line = match event {
            Event::RunStarted {
                run_id,
                workflow_id,
                nodes,
            } => format!("run {run_id} of workflow `{workflow_id}` ({nodes} nodes)"),
            Event::NodeFinished { node } => node_line(node, self.id_width, self.action_width),
            Event::RetryScheduled {
                node,
                attempt,
                error,
                delay,
            } => format!(
                "  {:<7}  {node:<id_width$}  {:<action_width$}  attempt {attempt} failed: {error}; retrying in {}",
                "retry",
                "",
                format_duration(*delay),
                id_width = self.id_width,
                action_width = self.action_width,
            ),
            _ => return,
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

fn node_line(node: &NodeReport, id_width: usize, action_width: usize) -> String {
    let attempts = match node.attempts {
        0 | 1 => String::new(),
        n => format!(", {n} attempts"),
    };
    let (mark, detail) = match &node.status {
        NodeStatus::Succeeded => ("ok", format!("{}{attempts}", format_duration(node.elapsed))),
        NodeStatus::Failed => (
            "FAILED",
            format!(
                "{}{attempts}: {}",
                format_duration(node.elapsed),
                node.error.as_deref().unwrap_or("")
            ),
        ),
        NodeStatus::Skipped { because } => ("skipped", format!("`{because}` failed")),
        NodeStatus::Cancelled => (
            "cancel",
            format!("{}{attempts}: cancelled", format_duration(node.elapsed)),
        ),
        other => (other.name(), String::new()),
    };
    format!(
        "  {mark:<7}  {:<id_width$}  {:<action_width$}  {detail}",
        node.id, node.action
    )
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
