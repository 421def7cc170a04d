//! `flow list`: the recorded runs.

use std::time::Duration;

use clap::Args;
use flow_host::observe::format_duration;
use flow_host::store::RunRecord;
use flow_host::{RunStatus, WorkflowStore};
use serde_json::json;

use super::{Context, Exit, table};

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only runs of this workflow (its `id`)
    #[arg(long, value_name = "ID")]
    workflow: Option<String>,

    /// Only runs with this status
    #[arg(long, value_parser = parse_status)]
    status: Option<RunStatus>,

    /// At most this many runs, newest first
    #[arg(long, value_name = "N")]
    limit: Option<usize>,

    /// Print the runs as one JSON document
    #[arg(long)]
    json: bool,
}

fn parse_status(text: &str) -> Result<RunStatus, String> {
    serde_json::from_value(json!(text)).map_err(|_| {
        "expected one of running, succeeded, failed, cancelled, interrupted".to_string()
    })
}

pub fn run(context: &Context, args: ListArgs) -> anyhow::Result<Exit> {
    let store = context.open_store()?;
    let runs: Vec<RunRecord> = store
        .runs()?
        .into_iter()
        .filter(|run| {
            args.workflow
                .as_ref()
                .is_none_or(|id| &run.workflow_id == id)
        })
        .filter(|run| args.status.is_none_or(|status| run.status == status))
        .take(args.limit.unwrap_or(usize::MAX))
        .collect();
    if args.json {
        println!("{}", json!({ "runs": runs }));
        return Ok(Exit::Success);
    }
    if runs.is_empty() {
        println!("no runs recorded in {}", context.db_path()?.display());
        return Ok(Exit::Success);
    }
    let mut rows = table::new(&["RUN", "WORKFLOW", "STATUS", "STARTED", "DURATION", "NODES"]);
    for run in &runs {
        rows.add_row(vec![
            run.run_id.clone(),
            run.workflow_id.clone(),
            run.status.to_string(),
            run.created_at.to_string(),
            duration(run),
            run.nodes.to_string(),
        ]);
    }
    table::align_right(&mut rows, &[4, 5]);
    table::print(&mut rows);
    Ok(Exit::Success)
}

/// How long the run took, if it ended.
pub fn duration(run: &RunRecord) -> String {
    match run.finished_at {
        Some(end) => format_duration(Duration::from_millis(
            end.0.saturating_sub(run.created_at.0),
        )),
        None => "-".to_string(),
    }
}
