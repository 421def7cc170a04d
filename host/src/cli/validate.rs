//! `flow validate`: check a workflow without running it.

use std::path::PathBuf;

use clap::Args;
use flow_host::{SpecError, WorkflowSpec};
use serde_json::json;

use super::{Context, Exit, load_plugins, plugins_dir};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The workflow file
    workflow: PathBuf,

    /// The plugins directory [default: the workflow's `plugins`, relative to the file]
    #[arg(long, value_name = "DIR")]
    plugins: Option<PathBuf>,

    /// Print the verdict as one JSON document (`valid`, and `errors` with
    /// line and column, or the nodes by level); the exit code is the same
    #[arg(long)]
    json: bool,
}

pub fn run(context: &Context, args: ValidateArgs) -> anyhow::Result<Exit> {
    match check(context, &args) {
        Ok((spec, plugins, dir)) => {
            report(context, &args, &spec, &plugins, &dir);
            Ok(Exit::Success)
        }
        Err(error) if args.json => {
            let verdict = match error.downcast_ref::<SpecError>() {
                Some(spec) => {
                    let mut value = spec.to_json();
                    value["valid"] = json!(false);
                    value
                }
                None => json!({
                    "valid": false,
                    "file": args.workflow.display().to_string(),
                    "errors": [{ "message": error_text(&error) }],
                }),
            };
            println!("{verdict}");
            Ok(super::exit_code(&error))
        }
        Err(error) => Err(error),
    }
}

/// An error's message without the `error: ` of the terminal form.
fn error_text(error: &anyhow::Error) -> String {
    let text = super::render_error(error, false);
    text.strip_prefix("error: ")
        .map(String::from)
        .unwrap_or(text)
}

/// The workflow, its plugins' names and their directory, once all is valid.
fn check(
    context: &Context,
    args: &ValidateArgs,
) -> anyhow::Result<(WorkflowSpec, Vec<String>, PathBuf)> {
    let spec = WorkflowSpec::load(&args.workflow)?;
    let dir = plugins_dir(
        args.plugins.as_deref(),
        spec.plugins.as_deref(),
        &args.workflow,
    )?;
    let (runtime, cache) = context.runtime(1)?;
    let plugins = super::tokio()?.block_on(load_plugins(&runtime, &cache, &dir, &spec))?;
    spec.check_actions(plugins.names())?;
    let names = plugins.names().map(String::from).collect();
    Ok((spec, names, dir))
}

fn report(
    context: &Context,
    args: &ValidateArgs,
    spec: &WorkflowSpec,
    plugins: &[String],
    dir: &std::path::Path,
) {
    let levels: Vec<Vec<&str>> = spec
        .dag
        .levels()
        .iter()
        .map(|level| level.iter().map(|&i| spec.nodes[i].id.as_str()).collect())
        .collect();
    if args.json {
        println!(
            "{}",
            json!({
                "valid": true,
                "file": args.workflow.display().to_string(),
                "workflow": spec.id,
                "nodes": spec.nodes.len(),
                "levels": levels,
                "plugins_dir": dir.display().to_string(),
                "plugins": plugins,
            })
        );
        return;
    }
    if context.quiet {
        return;
    }
    println!(
        "{}: workflow `{}` is valid: {} nodes in {} levels",
        args.workflow.display(),
        spec.id,
        spec.nodes.len(),
        levels.len()
    );
    for (level, ids) in levels.iter().enumerate() {
        println!("  level {level}: {}", ids.join(", "));
    }
    println!("plugins in {}: {}", dir.display(), plugins.join(", "));
}
