//! `flow resume`: continue a run that did not succeed.

use std::sync::Arc;

use clap::Args;
use flow_host::{WorkflowSpec, WorkflowStore};

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
    plugins: PluginsArg,

    #[command(flatten)]
    secrets: super::SecretsArg,

    #[command(flatten)]
    show: super::run::ShowArgs,

    #[command(flatten)]
    options: OptionArgs,
}

pub fn run(context: &Context, args: ResumeArgs) -> anyhow::Result<Exit> {
    let store = context.open_store()?;
    let record = store.find_run(&args.run_id)?;
    // The workflow as the file says now (a change is caught by the resume),
    // or as stored with the run when the file is gone.
    let path = &record.workflow_path;
    let mut spec = match std::fs::read_to_string(path) {
        Ok(text) => WorkflowSpec::parse(path, text)?,
        Err(_) => {
            let text = store.definition(&record.run_id)?.unwrap_or_default();
            if !context.quiet {
                match flow_host::spec::is_built(path) {
                    true => out::eprint(format_args!(
                        "note: run {} is of a workflow built in code; resuming with the copy \
                         stored with the run (native actions exist only in the program that \
                         registers them: resume such a run there, with WorkflowEngine::resume)",
                        record.run_id
                    )),
                    false => out::eprint(format_args!(
                        "note: {} is gone; resuming with the copy stored with the run",
                        path.display()
                    )),
                }
            }
            WorkflowSpec::parse(path, text)?
        }
    };
    spec.apply_overrides(&record.overrides.merged_with(&args.options.overrides()));
    context
        .log
        .workflow_default(spec.options.log_level.as_deref());
    // The plugins the run used, unless told otherwise.
    let dirs = match (args.plugins.dirs.is_empty(), record.plugins_dirs.is_empty()) {
        (false, _) => args.plugins.dirs.clone(),
        (true, false) => record.plugins_dirs.clone(),
        (true, true) => {
            return Err(UsageError(format!(
                "run {} does not say where its plugins were: pass --plugins DIR",
                record.run_id
            ))
            .into());
        }
    };
    let run_id = record.run_id.clone();
    let secrets = args.secrets.load()?;
    super::run::execute(
        context,
        store,
        Arc::new(spec),
        &dirs,
        secrets,
        &args.show,
        |engine, spec, plugins| engine.resume(spec, plugins, &run_id, args.force),
    )
}
