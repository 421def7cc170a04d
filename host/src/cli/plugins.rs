//! `flow plugins`: list what a plugins directory provides.

use std::path::PathBuf;

use clap::Args;

use super::{Context, Exit, UsageError, table};

#[derive(Debug, Args)]
pub struct PluginsArgs {
    /// The plugins directory
    #[arg(env = "FLOW_PLUGINS", value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn run(context: &Context, args: PluginsArgs) -> anyhow::Result<Exit> {
    let dir = args.dir.ok_or_else(|| {
        UsageError("say which directory to list: flow plugins DIR (or set FLOW_PLUGINS)".into())
    })?;
    let (runtime, cache) = context.runtime()?;
    let (plugins, errors) = super::tokio()?.block_on(runtime.scan_plugins(&dir, &cache))?;

    if plugins.is_empty() && errors.is_empty() {
        println!("{}: no plugins (*.wasm files)", dir.display());
    } else if !plugins.is_empty() {
        let mut rows = table::new(&["NAME", "VERSION", "DESCRIPTION", "FILE", "SIZE"]);
        for plugin in plugins.iter() {
            let file = plugin.path.file_name().map_or_else(
                || plugin.path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            rows.add_row(vec![
                plugin.info.name.clone(),
                plugin.info.version.clone(),
                plugin.info.description.clone(),
                file,
                format!("{} KiB", plugin.size.div_ceil(1024)),
            ]);
        }
        table::align_right(&mut rows, &[4]);
        table::print(&mut rows);
    }
    for error in &errors {
        eprintln!("error: {error}");
    }
    Ok(if errors.is_empty() {
        Exit::Success
    } else {
        Exit::Invalid
    })
}
