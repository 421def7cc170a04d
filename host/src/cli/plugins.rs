//! `flow plugins`: list what a plugins search path provides.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use flow_host::PluginRegistry;
use flow_host::observe::format_duration;
use flow_host::runtime::{CacheOutcome, PluginError};
use serde_json::{Value, json};

use super::{Context, Exit, UsageError, out, table};

#[derive(Debug, Args)]
pub struct PluginsArgs {
    /// The plugins directories, first match first (or FLOW_PLUGINS, with
    /// directories separated by `:`)
    #[arg(env = "FLOW_PLUGINS", value_name = "DIR", value_delimiter = ':')]
    dirs: Vec<PathBuf>,

    /// Print the plugins and the errors as one JSON document
    #[arg(long)]
    json: bool,
}

pub fn run(context: &Context, args: PluginsArgs) -> anyhow::Result<Exit> {
    if args.dirs.is_empty() {
        return Err(UsageError(
            "say which directory to list: flow plugins DIR (or set FLOW_PLUGINS)".into(),
        )
        .into());
    }
    let (runtime, cache) = context.runtime(1)?;
    let (plugins, errors) = super::tokio()?.block_on(runtime.scan_plugins(&args.dirs, &cache))?;
    let exit = if errors.is_empty() {
        Exit::Success
    } else {
        Exit::Invalid
    };
    let mut out = out::stdout();
    if args.json {
        print_json(&mut out, &args.dirs, &plugins, &errors)?;
        out.flush()?;
        return Ok(exit);
    }
    if plugins.is_empty() && errors.is_empty() {
        let dirs: Vec<String> = args.dirs.iter().map(|d| d.display().to_string()).collect();
        writeln!(out, "{}: no plugins (*.wasm files)", dirs.join(", "))?;
    } else if !plugins.is_empty() {
        print_table(&mut out, &plugins, args.dirs.len() > 1)?;
    }
    out.flush()?;
    for shadowed in plugins.shadowed() {
        out::eprint(format_args!("warning: {shadowed}"));
    }
    for error in &errors {
        out::eprint(format_args!("error: {error}"));
    }
    Ok(exit)
}

fn print_json(
    out: &mut impl Write,
    dirs: &[PathBuf],
    plugins: &PluginRegistry,
    errors: &[PluginError],
) -> std::io::Result<()> {
    let list: Vec<Value> = plugins
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
                "reaches": plugin.capabilities().iter().map(|c| c.name()).collect::<Vec<_>>(),
                "imports": plugin.imports,
            })
        })
        .collect();
    let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let hidden: Vec<String> = plugins.shadowed().iter().map(ToString::to_string).collect();
    let document = json!({
        "dirs": dirs,
        "plugins": list,
        "hidden": hidden,
        "errors": errors,
    });
    writeln!(out, "{document}")
}

/// One row per plugin; with several directories, files by their path.
fn print_table(
    out: &mut impl Write,
    plugins: &PluginRegistry,
    several: bool,
) -> std::io::Result<()> {
    let mut rows = table::new(&[
        "NAME",
        "VERSION",
        "DESCRIPTION",
        "REACHES",
        "FILE",
        "SIZE",
        "LOAD",
    ]);
    for plugin in plugins.iter() {
        let file = match plugin.path.file_name() {
            Some(name) if !several => name.to_string_lossy().into_owned(),
            _ => plugin.path.display().to_string(),
        };
        rows.add_row(vec![
            plugin.info.name.clone(),
            plugin.info.version.clone(),
            plugin.info.description.clone(),
            reaches(plugin),
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
    table::align_right(&mut rows, &[5]);
    table::print(out, &mut rows)
}

/// What a plugin's imports ask for beyond JSON in and out, or `-`.
fn reaches(plugin: &flow_host::runtime::Plugin) -> String {
    let names: Vec<&str> = plugin.capabilities().iter().map(|c| c.name()).collect();
    if names.is_empty() {
        "-".into()
    } else {
        names.join(", ")
    }
}
