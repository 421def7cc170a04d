//! `flow delete` and `flow prune`: removing recorded runs.

use std::io::Write;
use std::time::{Duration, SystemTime};

use clap::Args;
use flow_host::WorkflowStore;
use flow_host::options;

use super::{Context, Exit, out};

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The runs' ids (or unambiguous beginnings of them)
    #[arg(required = true, value_name = "RUN_ID")]
    run_ids: Vec<String>,
}

pub fn delete(context: &Context, args: DeleteArgs) -> anyhow::Result<Exit> {
    let store = context.open_store()?;
    // Resolve every id before deleting anything: a typo deletes nothing.
    let runs = args
        .run_ids
        .iter()
        .map(|id| store.find_run(id))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = out::stdout();
    for run in runs {
        store.delete_run(&run.run_id)?;
        // Deleting goes on whether or not anyone reads what was deleted.
        let _ = writeln!(
            out,
            "deleted run {} of workflow `{}`",
            run.run_id, run.workflow_id
        );
    }
    store.flush()?;
    out.flush()?;
    Ok(Exit::Success)
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Delete the runs that started longer ago than this, e.g. `30days`, `12h`
    #[arg(long, value_name = "DURATION", value_parser = options::parse_duration)]
    older_than: Duration,

    /// Say what would be deleted, delete nothing
    #[arg(long)]
    dry_run: bool,
}

pub fn prune(context: &Context, args: PruneArgs) -> anyhow::Result<Exit> {
    let store = context.open_store()?;
    let cutoff = SystemTime::now()
        .checked_sub(args.older_than)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let old: Vec<_> = store
        .runs()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|run| run.created_at.to_system_time() < cutoff)
        .collect();
    for run in &old {
        if !args.dry_run {
            store.delete_run(&run.run_id)?;
        }
    }
    store.flush()?;
    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    let mut out = out::stdout();
    writeln!(
        out,
        "{verb} {} run{} that started before {}",
        old.len(),
        if old.len() == 1 { "" } else { "s" },
        humantime::format_rfc3339_seconds(cutoff)
    )?;
    out.flush()?;
    Ok(Exit::Success)
}
