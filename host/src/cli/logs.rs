//! `flow logs`: what the actions of a run logged and printed.

use std::io::Write;

use clap::Args;
use flow_host::spec::suggest;
use flow_host::store::{AttemptRecord, NodeHistory, NodeRecord};
use serde_json::json;

use super::{Context, Exit, UsageError, out};

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The run's id, or enough of its beginning to tell it apart
    run_id: String,

    /// Only this node
    node: Option<String>,

    /// Only this attempt (with NODE)
    #[arg(long, value_name = "N", requires = "node")]
    attempt: Option<u32>,

    /// One JSON object per line: node, attempt, kind, text
    #[arg(long)]
    json: bool,
}

pub fn run(context: &Context, args: LogsArgs) -> anyhow::Result<Exit> {
    let store = context.open_reader()?;
    let run = store.find_run(&args.run_id)?;
    // Elements of map nodes are listed after their node; NODE names a node
    // (with its elements) or one element (`node[3]`).
    let mut nodes: Vec<NodeHistory> = store
        .history(&run.run_id)?
        .into_iter()
        .flat_map(|mut history| {
            let elements = std::mem::take(&mut history.elements);
            std::iter::once(history).chain(elements)
        })
        .collect();
    if let Some(wanted) = &args.node {
        if !nodes.iter().any(|history| &history.node.node_id == wanted) {
            let ids = nodes.iter().map(|history| history.node.node_id.as_str());
            return Err(UsageError(format!(
                "run {id} has no node `{wanted}` that started; {} (all of them: flow status {id}{db})",
                suggest(wanted, ids, "nodes that started"),
                id = run.run_id,
                db = context.db_flag(),
            ))
            .into());
        }
        nodes
            .retain(|history| &history.node.node_id == wanted || history.node.map_node() == wanted);
    }
    let mut out = out::stdout();
    let mut printed = 0;
    let width = nodes
        .iter()
        .map(|n| n.node.node_id.len())
        .max()
        .unwrap_or(0);
    for NodeHistory { node, attempts, .. } in &nodes {
        if let Some(wanted) = args.attempt
            && !attempts.iter().any(|a| a.number == wanted)
        {
            return Err(UsageError(format!(
                "node `{}` of run {} has no attempt {wanted}; it made {}",
                node.node_id,
                run.run_id,
                attempts.len()
            ))
            .into());
        }
        for attempt in attempts {
            if args.attempt.is_some_and(|n| n != attempt.number) {
                continue;
            }
            printed += print_attempt(&mut out, node, attempt, width, args.json)?;
        }
    }
    out.flush()?;
    if printed == 0 && !args.json && !context.quiet {
        let whom = match (&args.node, args.attempt) {
            (Some(node), Some(n)) => format!("attempt {n} of node `{node}`"),
            (Some(node), None) => format!("node `{node}`"),
            _ => format!("the nodes of run {}", run.run_id),
        };
        out::eprint(format_args!("nothing logged or printed by {whom}"));
    }
    super::close_reader(store)?;
    Ok(Exit::Success)
}

/// Prints the lines of one attempt; returns how many.
fn print_attempt(
    out: &mut impl Write,
    node: &NodeRecord,
    attempt: &AttemptRecord,
    width: usize,
    json: bool,
) -> std::io::Result<usize> {
    for line in &attempt.logs {
        if json {
            let record = json!({
                "node": node.node_id,
                "attempt": attempt.number,
                "kind": line.kind,
                "text": line.text,
            });
            writeln!(out, "{record}")?;
        } else {
            let prefix = format!(
                "{:<width$} #{:<2} {:<6} ",
                node.node_id,
                attempt.number,
                line.kind.name()
            );
            let indent = format!("\n{}", " ".repeat(prefix.chars().count()));
            let text = out::printable(&line.text);
            writeln!(out, "{prefix}{}", text.replace('\n', &indent))?;
        }
    }
    Ok(attempt.logs.len())
}
