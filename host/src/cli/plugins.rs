//! `flow plugins`: list what a plugins directory provides.

use std::path::PathBuf;

use clap::Args;
use flow_host::observe::format_duration;
use flow_host::runtime::CacheOutcome;
use serde_json::{Value, json};

use super::{Context, Exit, UsageError, table};

#[derive(Debug, Args)]
pub struct PluginsArgs {
    /// The plugins directory
    #[arg(env = "FLOW_PLUGINS", value_name = "DIR")]
    dir: Option<PathBuf>,

    /// Print the plugins and the errors as one JSON document
    #[arg(long)]
    json: bool,
}

pub fn run(context: &Context, args: PluginsArgs) -> anyhow::Result<Exit> {
    let dir = args.dir.ok_or_else(|| {
        UsageError("say which directory to list: flow plugins DIR (or set FLOW_PLUGINS)".into())
    })?;
    let (runtime, cache) = context.runtime(1)?;
    let (plugins, errors) = super::tokio()?.block_on(runtime.scan_plugins(&dir, &cache))?;
    let exit = if errors.is_empty() {
        Exit::Success
    } else {
        Exit::Invalid
    };

    if args.json {
        let plugins: Vec<Value> = plugins
            .iter()
            .map(|plugin| {
                json!({
                    "name": plugin.info.name,
                    "version": plugin.info.version,
                    "description": plugin.info.description,
                    "path": plugin.path,
                    "size": plugin.size,
                    "sha256": plugin.digest,
                    "cached": plugin.cache == CacheOutcome::Hit,
                    "load_ms": plugin.load_time.as_secs_f64() * 1e3,
                })
            })
            .collect();
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        println!(
            "{}",
            json!({"dir": dir, "plugins": plugins, "errors": errors})
        );
        return Ok(exit);
    }

    if plugins.is_empty() && errors.is_empty() {
        println!("{}: no plugins (*.wasm files)", dir.display());
    } else if !plugins.is_empty() {
        let mut rows = table::new(&["NAME", "VERSION", "DESCRIPTION", "FILE", "SIZE", "LOAD"]);
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
                format!(
                    "{} {}",
                    match plugin.cache {
                        CacheOutcome::Hit => "cached",
                        CacheOutcome::Compiled => "compiled",
                    },
                    format_duration(plugin.load_time)
                ),
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
