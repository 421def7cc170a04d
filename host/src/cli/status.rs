//! `flow status`: one recorded run in detail.

use std::collections::HashSet;
use std::io::Write;
use std::time::Duration;

use clap::Args;
use flow_host::observe::{format_delay, format_duration};
use flow_host::store::{AttemptRecord, NodeHistory, NodeRecord, RunDocument, RunRecord};
use flow_host::{Failure, FailureKind, NodeStatus, RunStatus, WorkflowSpec, WorkflowStore};

use super::{Context, Exit, UsageError, out, table};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The run's id, or enough of its beginning to tell it apart
    /// [default: the most recent run]
    run_id: Option<String>,

    /// Print the run as one JSON document (the schema of `flow run --json`)
    #[arg(long)]
    json: bool,
}

pub fn run(context: &Context, args: StatusArgs) -> anyhow::Result<Exit> {
    let store = context.open_reader()?;
    let run = match &args.run_id {
        Some(id) => store.find_run(id)?,
        // The most recent run that is not a sub-workflow's.
        None => newest_top_level(&*store)?
            .ok_or_else(|| UsageError(format!("no runs recorded in {} yet", context.db_name())))?,
    };
    show(context, &*store, &run, args.json)?;
    super::close_reader(store)?;
    Ok(Exit::Success)
}

/// Prints a run as `flow status` does: text, or its JSON document.
pub fn show(
    context: &Context,
    store: &dyn WorkflowStore,
    run: &RunRecord,
    json: bool,
) -> anyhow::Result<()> {
    let mut run = run.clone();
    let (nodes, spec) = history(store, &mut run)?;
    let run = &run;
    let mut out = out::stdout();
    if json {
        write_document(&mut out, run, &nodes, spec.as_ref())?;
    } else {
        print_header(&mut out, context, run)?;
        if matches!(run.status, RunStatus::Queued | RunStatus::Interrupted) {
            for why in store.waiting(run)? {
                writeln!(out, "waiting   {why}")?;
            }
        }
        print_nodes(&mut out, &nodes)?;
        print_maps(&mut out, &nodes)?;
        print_details(&mut out, &nodes)?;
        print_attempts(&mut out, &nodes)?;
        let lines: usize = nodes
            .iter()
            .flat_map(|node| std::iter::once(node).chain(&node.elements))
            .flat_map(|node| &node.attempts)
            .map(|a| a.logs.len())
            .sum();
        if lines > 0 {
            writeln!(
                out,
                "\nlogs: {lines} line{} from the actions (flow logs {}{})",
                if lines == 1 { "" } else { "s" },
                run.run_id,
                context.db_flag()
            )?;
        }
    }
    out.flush()?;
    // The process ends next: freeing the records one by one would cost a
    // run of 100,000 nodes a tenth of the command's time.
    std::mem::forget(nodes);
    Ok(())
}

/// Every node of a run with its attempts, those that never started as
/// pending, and the run's workflow when it had to be read for that (or,
/// for older runs, to tell which nodes are sinks).
/// The run's sinks are read into `run` when its store keeps them apart.
pub fn history(
    store: &dyn WorkflowStore,
    run: &mut RunRecord,
) -> Result<(Vec<NodeHistory>, Option<WorkflowSpec>), flow_host::store::StoreError> {
    if run.sinks.is_none() {
        run.sinks = store.sinks(&run.run_id)?;
    }
    let mut nodes = store.history(&run.run_id)?;
    // The workflow is read again only for what the records do not say.
    let spec = if nodes.len() < run.nodes || run.sinks.is_none() {
        store
            .definition(&run.run_id)?
            .and_then(|text| WorkflowSpec::parse(&run.workflow_path, text).ok())
    } else {
        None
    };
    if let Some(spec) = &spec {
        add_pending(&mut nodes, spec);
    }
    Ok((nodes, spec))
}

/// The newest run no node of another run started.
fn newest_top_level(store: &dyn WorkflowStore) -> anyhow::Result<Option<RunRecord>> {
    for run in store.runs() {
        let run = run?;
        if run.parent.is_none() {
            return Ok(Some(run));
        }
    }
    Ok(None)
}

/// The run as one JSON document and a newline; the workflow's outputs are
/// those of the sinks recorded with the run (or, for older runs, of `spec`).
pub fn write_document(
    out: &mut impl Write,
    run: &RunRecord,
    nodes: &[NodeHistory],
    spec: Option<&WorkflowSpec>,
) -> anyhow::Result<()> {
    let sinks: Vec<&str> = match (&run.sinks, spec) {
        (Some(sinks), _) => sinks.iter().map(String::as_str).collect(),
        (None, Some(spec)) => spec
            .dag
            .sinks()
            .map(|i| spec.nodes[i].id.as_str())
            .collect(),
        (None, None) => Vec::new(),
    };
    let document = RunDocument {
        run,
        nodes,
        sinks: &sinks,
    };
    document.write_json(&mut *out)?;
    writeln!(out)?;
    Ok(())
}

fn print_header(out: &mut impl Write, context: &Context, run: &RunRecord) -> std::io::Result<()> {
    let db = context.db_flag();
    writeln!(out, "run       {}", run.run_id)?;
    writeln!(
        out,
        "workflow  {} ({})",
        run.workflow_id,
        run.workflow_path.display()
    )?;
    match run.status {
        RunStatus::Interrupted => writeln!(
            out,
            "status    interrupted: the flow process running it stopped before the end; \
             continue it with: flow resume {}{db}",
            run.run_id
        )?,
        RunStatus::Queued => writeln!(
            out,
            "status    queued: waiting for a `flow worker` of this store to start it"
        )?,
        RunStatus::Failed | RunStatus::Cancelled => writeln!(
            out,
            "status    {}; continue it with: flow resume {}{db}",
            run.status, run.run_id
        )?,
        RunStatus::Succeeded if run.failed_nodes > 0 => writeln!(
            out,
            "status    succeeded, with {} failed node{} (allowed by continue_on_error)",
            run.failed_nodes,
            if run.failed_nodes == 1 { "" } else { "s" }
        )?,
        status => writeln!(out, "status    {status}")?,
    }
    if run.resumes > 0 {
        writeln!(
            out,
            "resumed   {} time{}",
            run.resumes,
            if run.resumes == 1 { "" } else { "s" }
        )?;
    }
    if let Some(old) = &run.retry_of {
        writeln!(
            out,
            "retry of  {old} (nodes with 0 attempts reuse its outputs)"
        )?;
    }
    if let Some(parent) = &run.parent {
        writeln!(
            out,
            "parent    run {}, node `{}` (a sub-workflow's run)",
            parent.run_id, parent.node_id
        )?;
    }
    if !run.params.is_empty() {
        let params: Vec<String> = run
            .params
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        writeln!(out, "params    {}", out::printable(&params.join(" ")))?;
    }
    writeln!(out, "started   {}", run.created_at)?;
    if let Some(end) = run.finished_at {
        writeln!(out, "finished  {end} (took {})", super::list::duration(run))?;
    }
    if let Some(error) = &run.error {
        writeln!(out, "error     {}", out::printable(error))?;
    }
    writeln!(out)
}

fn print_nodes(out: &mut impl Write, nodes: &[NodeHistory]) -> std::io::Result<()> {
    let mut rows = table::new(&["NODE", "ACTION", "STATUS", "ATTEMPTS", "DURATION", "FUEL"]);
    for NodeHistory { node, .. } in nodes {
        rows.add_row(vec![
            node.node_id.clone(),
            node.action.clone(),
            node.status.to_string(),
            node.attempts.to_string(),
            node.elapsed_us
                .map_or("-".into(), |us| format_duration(Duration::from_micros(us))),
            node.fuel_used.map_or("-".into(), |fuel| fuel.to_string()),
        ]);
    }
    table::align_right(&mut rows, &[3, 4, 5]);
    table::print(out, &mut rows)
}

/// The width of the longest node id, for a column of them.
fn id_width(nodes: &[NodeHistory]) -> usize {
    nodes
        .iter()
        .map(|n| n.node.node_id.len())
        .max()
        .unwrap_or(0)
}

/// How far the elements of each map node got.
fn print_maps(out: &mut impl Write, nodes: &[NodeHistory]) -> std::io::Result<()> {
    let width = id_width(nodes);
    let mut header = false;
    for history in nodes.iter().filter(|n| !n.elements.is_empty()) {
        if !std::mem::replace(&mut header, true) {
            writeln!(out, "\nmap elements:")?;
        }
        let mut counts: Vec<(&'static str, usize)> = Vec::new();
        for element in &history.elements {
            let name = element.node.status.name();
            match counts.iter_mut().find(|(n, _)| *n == name) {
                Some((_, count)) => *count += 1,
                None => counts.push((name, 1)),
            }
        }
        let counts: Vec<String> = counts
            .iter()
            .map(|(name, count)| format!("{count} {name}"))
            .collect();
        let started = history.elements.len();
        writeln!(
            out,
            "  {:<width$}  {started} started: {}",
            history.node.node_id,
            counts.join(", ")
        )?;
    }
    Ok(())
}

/// Outputs and errors, one line per node that has one.
fn print_details(out: &mut impl Write, nodes: &[NodeHistory]) -> std::io::Result<()> {
    let width = id_width(nodes);
    let mut header = false;
    for NodeHistory { node, .. } in nodes {
        if let Some(child) = &node.child_run {
            if !std::mem::replace(&mut header, true) {
                writeln!(out, "\noutputs and errors:")?;
            }
            writeln!(
                out,
                "  {:<width$}  its sub-workflow ran as run {child} (flow status {child})",
                node.node_id
            )?;
        }
        let detail = match (&node.output, &node.error) {
            (Some(output), _) => output.to_string(),
            (None, Some(error)) if error.kind != FailureKind::Cancelled => {
                format!("error: {}", out::printable(&error.message))
            }
            _ => continue,
        };
        if !std::mem::replace(&mut header, true) {
            writeln!(out, "\noutputs and errors:")?;
        }
        writeln!(out, "  {:<width$}  {detail}", node.node_id)?;
    }
    Ok(())
}

/// Failed attempts of a map's elements shown before the rest are counted.
const ELEMENT_ATTEMPTS_SHOWN: usize = 20;

/// Every attempt that failed or was lost, with its retry delay (for a map
/// node's elements, the first few).
fn print_attempts(out: &mut impl Write, nodes: &[NodeHistory]) -> std::io::Result<()> {
    let width = nodes
        .iter()
        .flat_map(|n| std::iter::once(n).chain(n.elements.last()))
        .map(|n| n.node.node_id.len())
        .max()
        .unwrap_or(0);
    let mut header = false;
    fn failed(
        history: &NodeHistory,
    ) -> impl Iterator<Item = (&NodeRecord, &AttemptRecord, &Failure)> {
        let node = &history.node;
        history
            .attempts
            .iter()
            .filter_map(move |attempt| Some((node, attempt, attempt.error.as_ref()?)))
    }
    for history in nodes {
        let mut elements = history.elements.iter().flat_map(failed);
        let shown = failed(history).chain(elements.by_ref().take(ELEMENT_ATTEMPTS_SHOWN));
        for (node, attempt, error) in shown {
            if !std::mem::replace(&mut header, true) {
                writeln!(out, "\nfailed attempts:")?;
            }
            let took = attempt
                .elapsed_us
                .map_or("-".into(), |us| format_duration(Duration::from_micros(us)));
            let retry = attempt.retry_delay_ms.map_or(String::new(), |ms| {
                format!(
                    "; retried after {}",
                    format_delay(Duration::from_millis(ms))
                )
            });
            writeln!(
                out,
                "  {:<width$}  #{}  {took}  [{}] {}{retry}",
                node.node_id,
                attempt.number,
                error.kind,
                out::printable(&error.message)
            )?;
        }
        let rest = elements.count();
        if rest > 0 {
            writeln!(
                out,
                "  {:<width$}  ... and {rest} more failed attempts of its elements (flow status --json)",
                history.node.node_id
            )?;
        }
    }
    Ok(())
}

/// Adds a `pending` record for every node of the stored workflow that has
/// none, so that status lists the whole workflow.
fn add_pending(nodes: &mut Vec<NodeHistory>, spec: &WorkflowSpec) {
    let recorded: HashSet<String> = nodes.iter().map(|n| n.node.node_id.clone()).collect();
    for (index, node) in spec.nodes.iter().enumerate() {
        if recorded.contains(&node.id) {
            continue;
        }
        nodes.push(NodeHistory::new(
            NodeRecord::new(index, &node.id, &node.action, NodeStatus::Pending),
            Vec::new(),
        ));
    }
    nodes.sort_by_key(|history| history.node.index);
}
