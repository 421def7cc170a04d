//! `flow retry`: a new run that reuses what an earlier one produced.

use clap::Args;

use super::resume::{RecordedRunArgs, go_on};
use super::{Context, Exit};

#[derive(Debug, Args)]
pub struct RetryArgs {
    /// The run to retry: its id, or enough of its beginning to tell it apart
    run_id: String,

    /// Run this node again, and everything downstream of it; repeatable.
    /// Every other node that succeeded keeps its output
    #[arg(long = "from", value_name = "NODE")]
    from: Vec<String>,

    /// Run again only what did not succeed (the default without --from;
    /// with it, in addition to the --from nodes)
    #[arg(long)]
    failed: bool,

    /// Retry even if the workflow file or a plugin changed since the run,
    /// with them as they are now
    #[arg(long)]
    force: bool,

    #[command(flatten)]
    recorded: RecordedRunArgs,
}

pub fn run(context: &Context, args: RetryArgs) -> anyhow::Result<Exit> {
    // `--failed` is what a retry does anyway for every node without an
    // output; it only says so.
    let _ = args.failed;
    let (from, force) = (args.from, args.force);
    go_on(
        context,
        &args.run_id,
        args.recorded,
        "retrying",
        |engine, spec, plugins, run_id| engine.retry_from(spec, plugins, run_id, &from, force),
    )
}
