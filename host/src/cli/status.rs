//! `flow status`: one recorded run in detail.

use std::time::Duration;

use clap::Args;
use flow_host::observe::format_duration;
use flow_host::store::{AttemptRecord, NodeRecord};

use flow_host::{NodeStatus, RunStatus, WorkflowSpec, WorkflowStore};

use serde_json::json;

use super::{Context, Exit, UsageError, table};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The run's id, or enough of its beginning to tell it apart
    /// [default: the most recent run]
    run_id: Option<String>,

    /// Print the run as one JSON document
    #[arg(long)]
    json: bool,
}

pub fn run(context: &Context, args: StatusArgs) -> anyhow::Result<Exit> {
    let store = context.open_store()?;
    let run = match &args.run_id {
        Some(id) => store.find_run(id)?,
        None => store.runs()?.into_iter().next().ok_or_else(|| {
            UsageError(format!(
                "no runs recorded in {} yet",
                context.db_path().unwrap_or_default().display()
            ))
        })?,
    };
    let mut nodes = store.nodes(&run.run_id)?;
    add_pending(
        &mut nodes,
        store.definition(&run.run_id)?,
        &run.workflow_path,
    );

    let mut attempts = Vec::with_capacity(nodes.len());
    for node in &nodes {
        attempts.push(store.attempts(&run.run_id, &node.node_id)?);
    }

    if args.json {
        let nodes: Vec<serde_json::Value> = nodes
            .iter()
            .zip(&attempts)
            .map(|(node, attempts)| {
                let mut value = serde_json::to_value(node).expect("records serialise");
                value["attempt_records"] = json!(attempts);
                value
            })
            .collect();
        println!("{}", json!({"run": run, "nodes": nodes}));
        return Ok(Exit::Success);
    }

    println!("run       {}", run.run_id);
    println!(
        "workflow  {} ({})",
        run.workflow_id,
        run.workflow_path.display()
    );
    match run.status {
        RunStatus::Interrupted => println!(
            "status    interrupted: the flow process running it stopped before the end; \
             continue it with: flow resume {}",
            run.run_id
        ),
        RunStatus::Failed | RunStatus::Cancelled => println!(
            "status    {}; continue it with: flow resume {}",
            run.status, run.run_id
        ),
        status => println!("status    {status}"),
    }
    if run.resumes > 0 {
        println!(
            "resumed   {} time{}",
            run.resumes,
            if run.resumes == 1 { "" } else { "s" }
        );
    }
    println!("started   {}", run.created_at);
    if let Some(end) = run.finished_at {
        println!("finished  {end} (took {})", super::list::duration(&run));
    }
    if let Some(error) = &run.error {
        println!("error     {error}");
    }
    println!();

    let mut rows = table::new(&["NODE", "ACTION", "STATUS", "ATTEMPTS", "DURATION", "FUEL"]);
    for node in &nodes {
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
    table::print(&mut rows);

    let width = nodes.iter().map(|n| n.node_id.len()).max().unwrap_or(0);
    let mut header = false;
    for node in &nodes {
        let detail = match (&node.output, &node.error) {
            (Some(output), _) => output.get().to_string(),
            (None, Some(error)) => format!("error: {error}"),
            (None, None) => continue,
        };
        if !std::mem::replace(&mut header, true) {
            println!("\noutputs and errors:");
        }
        println!("  {:<width$}  {detail}", node.node_id);
    }

    let failed: Vec<(&NodeRecord, &AttemptRecord)> = nodes
        .iter()
        .zip(&attempts)
        .flat_map(|(node, attempts)| attempts.iter().map(move |a| (node, a)))
        .filter(|(_, attempt)| attempt.error.is_some())
        .collect();
    if !failed.is_empty() {
        println!("\nfailed attempts:");
    }
    for (node, attempt) in failed {
        let took = attempt
            .elapsed_us
            .map_or("-".into(), |us| format_duration(Duration::from_micros(us)));
        let retry = attempt.retry_delay_ms.map_or(String::new(), |ms| match ms {
            // Delays are stored in whole milliseconds.
            0 => "; retried after < 1 ms".to_string(),
            ms => format!(
                "; retried after {}",
                format_duration(Duration::from_millis(ms))
            ),
        });
        println!(
            "  {:<width$}  #{}  {took}  {}{retry}",
            node.node_id,
            attempt.number,
            attempt.error.as_deref().unwrap_or("")
        );
    }

    let lines: usize = attempts.iter().flatten().map(|a| a.logs.len()).sum();
    if lines > 0 {
        println!(
            "\nlogs: {lines} line{} from the actions (flow logs {}{})",
            if lines == 1 { "" } else { "s" },
            run.run_id,
            context.db_flag()
        );
    }
    Ok(Exit::Success)
}

/// Adds a `pending` record for every node of the stored workflow that has
/// none, so that status lists the whole workflow.
fn add_pending(nodes: &mut Vec<NodeRecord>, definition: Option<String>, path: &std::path::Path) {
    let Some(spec) = definition.and_then(|text| WorkflowSpec::parse(path, text).ok()) else {
        return;
    };
    for (index, node) in spec.nodes.iter().enumerate() {
        if nodes.iter().any(|record| record.node_id == node.id) {
            continue;
        }
        nodes.push(NodeRecord {
            node_id: node.id.clone(),
            index,
            action: node.action.clone(),
            status: NodeStatus::Pending,
            attempts: 0,
            started_at: None,
            finished_at: None,
            elapsed_us: None,
            output: None,
            error: None,
            fuel_used: None,
        });
    }
    nodes.sort_by_key(|node| node.index);
}
