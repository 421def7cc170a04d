//! `flow list`: the recorded runs.

use std::io::Write;
use std::time::Duration;

use clap::Args;
use flow_host::RunStatus;
use flow_host::observe::format_duration;
use flow_host::store::RunRecord;
use serde_json::json;

use super::{Context, Exit, out, table};

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

    /// Leave out the runs of sub-workflows (those a node of another run
    /// started)
    #[arg(long)]
    hide_children: bool,

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
    let store = context.open_reader()?;
    let filtered = args.workflow.is_some() || args.status.is_some() || args.hide_children;
    // Runs are read newest first and only as far as the limit.
    let mut runs: Vec<RunRecord> = Vec::new();
    for run in store.runs() {
        if runs.len() >= args.limit.unwrap_or(usize::MAX) {
            break;
        }
        let run = match run {
            Ok(run) => run,
            Err(error) => {
                out::eprint(format_args!("warning: a run is skipped: {error}"));
                continue;
            }
        };
        let wanted = args
            .workflow
            .as_ref()
            .is_none_or(|id| &run.workflow_id == id)
            && args.status.is_none_or(|status| run.status == status)
            && !(args.hide_children && run.parent.is_some());
        if wanted {
            runs.push(run);
        }
    }
    let mut out = out::stdout();
    if args.json {
        let runs: Vec<serde_json::Value> = runs.iter().map(run_json).collect();
        writeln!(out, "{}", json!({ "runs": runs }))?;
    } else if runs.is_empty() && filtered {
        writeln!(
            out,
            "no runs match in {} (without --workflow and --status: flow list{})",
            context.db_name(),
            context.db_flag()
        )?;
    } else if runs.is_empty() {
        writeln!(out, "no runs recorded in {}", context.db_name())?;
    } else {
        let mut rows = table::new(&[
            "RUN", "WORKFLOW", "STATUS", "STARTED", "DURATION", "NODES", "FAILED",
        ]);
        for run in &runs {
            // A sub-workflow's run names the node that runs it.
            let workflow = match &run.parent {
                Some(parent) => format!("{} (in {})", run.workflow_id, parent.node_id),
                None => run.workflow_id.clone(),
            };
            rows.add_row(vec![
                run.run_id.clone(),
                workflow,
                run.status.to_string(),
                run.created_at.to_string(),
                duration(run),
                run.nodes.to_string(),
                run.failed_nodes.to_string(),
            ]);
        }
        table::align_right(&mut rows, &[4, 5, 6]);
        table::print(&mut out, &mut rows)?;
    }
    out.flush()?;
    super::close_reader(store)?;
    Ok(Exit::Success)
}

/// A run's header as `flow list --json` shows it.
fn run_json(run: &RunRecord) -> serde_json::Value {
    serde_json::to_value(super::serve::model::RunSummary::from(run)).unwrap_or_default()
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
