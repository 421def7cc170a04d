//! `flow resume`: continue a run that did not succeed.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use flow_host::exec::RunHandle;
use flow_host::store::RunRecord;
use flow_host::{ExecError, PluginRegistry, WorkflowEngine, WorkflowSpec, WorkflowStore};

use super::options::OptionArgs;
use super::run::PluginsArg;
use super::{Context, Exit, UsageError, out};

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run's id, or enough of its beginning to tell it apart
    run_id: String,

    /// Resume even if the workflow file or a plugin changed since the run
    /// started, with them as they are now
    #[arg(long)]
    force: bool,

    #[command(flatten)]
    recorded: RecordedRunArgs,
}

/// What `resume` and `retry` take beside the run: where its plugins are,
/// the secrets, what to show and the options over the run's.
#[derive(Debug, Args)]
pub struct RecordedRunArgs {
    #[command(flatten)]
    plugins: PluginsArg,

    #[command(flatten)]
    secrets: super::SecretsArg,

    #[command(flatten)]
    show: super::run::ShowArgs,

    #[command(flatten)]
    options: OptionArgs,
}

pub fn run(context: &Context, args: ResumeArgs) -> anyhow::Result<Exit> {
    let force = args.force;
    go_on(
        context,
        &args.run_id,
        args.recorded,
        "resuming",
        |engine, spec, plugins, run_id| engine.resume(spec, plugins, run_id, force),
    )
}

/// Goes on from recorded run `run_id` (`doing`: "resuming", "retrying"):
/// its workflow and plugins as [`recorded`] finds them, started with
/// `launch` (given the run's whole id).
pub(super) fn go_on(
    context: &Context,
    run_id: &str,
    args: RecordedRunArgs,
    doing: &str,
    launch: impl FnOnce(
        &WorkflowEngine,
        Arc<WorkflowSpec>,
        Arc<PluginRegistry>,
        &str,
    ) -> Result<RunHandle, ExecError>,
) -> anyhow::Result<Exit> {
    let opened = context.open()?;
    let store = opened.store.clone();
    let record = store.find_run(run_id)?;
    let (spec, dirs) = recorded(
        context,
        &*store,
        &record,
        &args.options,
        &args.plugins,
        doing,
    )?;
    let secrets = args.secrets.load()?;
    super::run::execute(
        context,
        opened,
        Arc::new(spec),
        &dirs,
        secrets,
        &args.show,
        |engine, spec, plugins| launch(engine, spec, plugins, &record.run_id),
    )
}

/// The workflow of a recorded run and its plugins search path, for going
/// on with it (`doing`: "resuming", "retrying"): the workflow as its file
/// says now (a change is caught when the run starts), or as stored with the
/// run when the file is gone, with the run's options and `options` over
/// them; the plugins it used unless `plugins` says otherwise.
fn recorded(
    context: &Context,
    store: &dyn WorkflowStore,
    record: &RunRecord,
    options: &OptionArgs,
    plugins: &PluginsArg,
    doing: &str,
) -> anyhow::Result<(WorkflowSpec, Vec<PathBuf>)> {
    let path = &record.workflow_path;
    let mut spec = match std::fs::read_to_string(path) {
        Ok(text) => WorkflowSpec::parse(path, text)?,
        Err(_) => {
            let text = store.definition(&record.run_id)?.unwrap_or_default();
            if !context.quiet {
                match flow_host::spec::is_built(path) {
                    true => out::eprint(format_args!(
                        "note: run {} is of a workflow built in code; {doing} with the copy \
                         stored with the run (native actions exist only in the program that \
                         registers them: resume such a run there, with WorkflowEngine::resume)",
                        record.run_id
                    )),
                    false => out::eprint(format_args!(
                        "note: {} is gone; {doing} with the copy stored with the run",
                        path.display()
                    )),
                }
            }
            WorkflowSpec::parse(path, text)?
        }
    };
    spec.apply_overrides(&record.overrides.merged_with(&options.overrides()));
    context
        .log
        .workflow_default(spec.options.log_level.as_deref());
    let dirs = match (plugins.dirs.is_empty(), record.plugins_dirs.is_empty()) {
        (false, _) => plugins.dirs.clone(),
        (true, false) => record.plugins_dirs.clone(),
        (true, true) => {
            return Err(UsageError(format!(
                "run {} does not say where its plugins were: pass --plugins DIR",
                record.run_id
            ))
            .into());
        }
    };
    Ok((spec, dirs))
}
