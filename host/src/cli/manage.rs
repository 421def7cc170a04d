//! `flow delete` and `flow prune`: removing recorded runs.

use std::io::Write;
use std::time::{Duration, SystemTime};

use clap::Args;
use flow_host::WorkflowStore;
use flow_host::options;

use super::{Context, Exit, UsageError, out};

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

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The run's id, or enough of its beginning to tell it apart
    run_id: String,
}

/// `flow cancel` on a shared store: whichever process runs the run stops
/// it.
fn cancel_shared(
    context: &Context,
    store: &flow_host::store::PostgresStore,
    run_id: &str,
) -> anyhow::Result<Exit> {
    use flow_host::store::CancelRequest;
    let run = store.find_run(run_id)?;
    let said = match store.request_cancel(&run.run_id)? {
        CancelRequest::Asked => format!(
            "run {} is stopping (flow status {}{})",
            run.run_id,
            run.run_id,
            context.db_flag()
        ),
        CancelRequest::Dequeued => format!("run {} was queued: it is cancelled", run.run_id),
        CancelRequest::NotRunning(status) => {
            return Err(
                UsageError(format!("run {} is not running (it {status})", run.run_id)).into(),
            );
        }
    };
    if !context.quiet {
        out::eprint(said);
    }
    Ok(Exit::Success)
}

/// `flow cancel`: asks the `flow serve` that holds the database to stop a
/// run (on a shared store, the process that runs it). A `flow run` also
/// stops on Ctrl-C or SIGTERM to its process.
pub fn cancel(context: &Context, args: CancelArgs) -> anyhow::Result<Exit> {
    if let Some(url) = &context.store {
        return cancel_shared(context, &context.open_postgres(url)?, &args.run_id);
    }
    let db = context.db_path()?;
    let Some(address) = super::remote::server_of(&db) else {
        let store = context.open_store()?;
        let run = store.find_run(&args.run_id)?;
        return Err(UsageError(format!(
            "run {} {}: no flow serve holds {}; a `flow run` stops on Ctrl-C, or SIGTERM to its process",
            run.run_id,
            match run.status {
                flow_host::RunStatus::Running => "is not running under a server".to_string(),
                status => format!("is not running (it {status})"),
            },
            db.display()
        ))
        .into());
    };
    let server = super::remote::RemoteStore::new(&address)?;
    let run = server.find_run(&args.run_id)?;
    server.call("POST", &format!("/api/v1/runs/{}/cancel", run.run_id))?;
    if !context.quiet {
        out::eprint(format_args!(
            "run {} is stopping (flow status {}{})",
            run.run_id,
            run.run_id,
            context.db_flag()
        ));
    }
    Ok(Exit::Success)
}
