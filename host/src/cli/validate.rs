//! `flow validate`: check a workflow without running it.

use std::path::PathBuf;

use clap::Args;
use flow_host::WorkflowSpec;

use super::{Context, Exit, load_plugins, plugins_dir};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The workflow file
    workflow: PathBuf,

    /// The plugins directory [default: the workflow's `plugins`, relative to the file]
    #[arg(long, value_name = "DIR")]
    plugins: Option<PathBuf>,
}

pub fn run(context: &Context, args: ValidateArgs) -> anyhow::Result<Exit> {
    let spec = WorkflowSpec::load(&args.workflow)?;
    let dir = plugins_dir(
        args.plugins.as_deref(),
        spec.plugins.as_deref(),
        &args.workflow,
    )?;
    let (runtime, cache) = context.runtime(1)?;
    let plugins = super::tokio()?.block_on(load_plugins(&runtime, &cache, &dir))?;
    spec.check_actions(plugins.names())?;

    let levels = spec.dag.levels();
    println!(
        "{}: workflow `{}` is valid: {} nodes in {} levels",
        args.workflow.display(),
        spec.id,
        spec.nodes.len(),
        levels.len()
    );
    for (level, nodes) in levels.iter().enumerate() {
        let ids: Vec<&str> = nodes.iter().map(|&i| spec.nodes[i].id.as_str()).collect();
        println!("  level {level}: {}", ids.join(", "));
    }
    let names: Vec<&str> = plugins.names().collect();
    println!("plugins in {}: {}", dir.display(), names.join(", "));
    Ok(Exit::Success)
}
