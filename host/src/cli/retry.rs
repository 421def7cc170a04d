//! `flow retry`: a new run that reuses what an earlier one produced.

use std::sync::Arc;

use clap::Args;
use flow_host::WorkflowStore;

use super::options::OptionArgs;
use super::run::PluginsArg;
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
    plugins: PluginsArg,

    #[command(flatten)]
    secrets: super::SecretsArg,

    #[command(flatten)]
    show: super::run::ShowArgs,

    #[command(flatten)]
    options: OptionArgs,
}

pub fn run(context: &Context, args: RetryArgs) -> anyhow::Result<Exit> {
    let store = context.open_store()?;
    let record = store.find_run(&args.run_id)?;
    let (spec, dirs) = super::resume::recorded(
        context,
        &*store,
        &record,
        &args.options,
        &args.plugins,
        "retrying",
    )?;
    let secrets = args.secrets.load()?;
    // `--failed` is what a retry does anyway for every node without an
    // output; it only says so.
    let _ = args.failed;
    let (run_id, from, force) = (record.run_id, args.from, args.force);
    super::run::execute(
        context,
        store,
        Arc::new(spec),
        &dirs,
        secrets,
        &args.show,
        move |engine, spec, plugins| engine.retry_from(spec, plugins, &run_id, &from, force),
    )
}
