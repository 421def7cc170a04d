//! `flow list`: the recorded runs.

use std::time::Duration;

use clap::Args;
use flow_host::WorkflowStore;
use flow_host::observe::format_duration;
use flow_host::store::RunRecord;

use super::{Context, Exit, table};

#[derive(Debug, Args)]
pub struct ListArgs {}

pub fn run(context: &Context, _args: ListArgs) -> anyhow::Result<Exit> {
    let store = context.open_store()?;
    let runs = store.runs()?;
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
