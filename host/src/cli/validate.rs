//! `flow validate`: check a workflow without running it.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use std::collections::BTreeMap;
use std::sync::Arc;

use flow_host::runtime::Capability;
use flow_host::{PluginRegistry, SpecError, WorkflowSpec};
use serde_json::json;

use super::run::PluginsArg;
use super::{Context, Exit, load_plugins, out, plugins_dirs};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The workflow file
    workflow: PathBuf,

    #[command(flatten)]
    plugins: PluginsArg,

    #[command(flatten)]
    secrets: super::SecretsArg,

    /// Print the verdict as one JSON document (`valid`, and `errors` with
    /// line and column, or the nodes by level); the exit code is the same
    #[arg(long)]
    json: bool,
}

pub fn run(context: &Context, args: ValidateArgs) -> anyhow::Result<Exit> {
    match check(context, &args) {
        Ok((spec, registry, dirs)) => {
            let plugins: Vec<String> = registry.names().map(String::from).collect();
            let warnings = ungranted(&spec, &registry);
            report(context, &args, &spec, &plugins, &dirs, &warnings)?;
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
                    "errors": [{ "message": error_text(&error, context) }],
                }),
            };
            let mut out = out::stdout();
            writeln!(out, "{verdict}")?;
            out.flush()?;
            Ok(super::exit_code(&error))
        }
        Err(error) => Err(error),
    }
}

/// An error's message without the `error: ` of the terminal form.
fn error_text(error: &anyhow::Error, context: &Context) -> String {
    let text = super::render_error(error, context);
    text.strip_prefix("error: ")
        .map(String::from)
        .unwrap_or(text)
}

/// The workflow, its plugins' names and their directory, once all is valid.
fn check(
    context: &Context,
    args: &ValidateArgs,
) -> anyhow::Result<(WorkflowSpec, Arc<PluginRegistry>, Vec<PathBuf>)> {
    let spec = super::load_spec(context, &args.workflow, &args.plugins.dirs)?;
    let dirs = plugins_dirs(&args.plugins.dirs, &spec.plugins, &args.workflow)?;
    let (runtime, cache) = context.runtime(1)?;
    let plugins =
        super::tokio()?.block_on(load_plugins(context, &runtime, &cache, &dirs, &spec))?;
    spec.check_actions(plugins.names())?;
    spec.check_secrets(&args.secrets.load()?)?;
    Ok((spec, plugins, dirs))
}

fn report(
    context: &Context,
    args: &ValidateArgs,
    spec: &WorkflowSpec,
    plugins: &[String],
    dirs: &[PathBuf],
    warnings: &[String],
) -> anyhow::Result<()> {
    let levels: Vec<Vec<&str>> = spec
        .dag
        .levels()
        .iter()
        .map(|level| level.iter().map(|&i| spec.nodes[i].id.as_str()).collect())
        .collect();
    let dirs: Vec<String> = dirs.iter().map(|dir| dir.display().to_string()).collect();
    let mut out = out::stdout();
    if args.json {
        let verdict = json!({
            "valid": true,
            "file": args.workflow.display().to_string(),
            "workflow": spec.id,
            "nodes": spec.nodes.len(),
            "levels": levels,
            "plugins_dirs": dirs,
            "plugins": plugins,
            "warnings": warnings,
        });
        writeln!(out, "{verdict}")?;
    } else if !context.quiet {
        writeln!(
            out,
            "{}: workflow `{}` is valid: {} nodes in {} levels",
            args.workflow.display(),
            spec.id,
            spec.nodes.len(),
            levels.len()
        )?;
        for (level, ids) in levels.iter().enumerate() {
            writeln!(out, "  level {level}: {}", ids.join(", "))?;
        }
        writeln!(
            out,
            "plugins in {}: {}",
            dirs.join(", "),
            plugins.join(", ")
        )?;
    }
    out.flush()?;
    if !args.json {
        for warning in warnings {
            out::eprint(format_args!("warning: {warning}"));
        }
    }
    Ok(())
}

/// What nodes' plugins import but the nodes are not granted: one warning
/// per plugin and kind of access, naming the nodes.
fn ungranted(spec: &WorkflowSpec, registry: &PluginRegistry) -> Vec<String> {
    let mut found: BTreeMap<(&str, Capability), Vec<&str>> = BTreeMap::new();
    for node in &spec.nodes {
        let Some(plugin) = registry.get(&node.action) else {
            continue;
        };
        let grants = &node.options.grants;
        for capability in plugin.capabilities() {
            let granted = match capability {
                Capability::Http => !grants.http.is_empty(),
                Capability::Filesystem => !grants.files.is_empty(),
                // Always refused; said once below.
                Capability::Sockets => false,
                Capability::Environment => true,
            };
            if !granted {
                found
                    .entry((node.action.as_str(), capability))
                    .or_default()
                    .push(node.id.as_str());
            }
        }
    }
    found
        .into_iter()
        .map(|((action, capability), nodes)| {
            let (listed, has) = match nodes.len() {
                1 => (format!("node {}", nodes[0]), "has"),
                2..=3 => (format!("nodes {}", nodes.join(", ")), "have"),
                n => (
                    format!("nodes {} and {} more", nodes[..3].join(", "), n - 3),
                    "have",
                ),
            };
            match capability {
                Capability::Http => format!(
                    "plugin `{action}` imports wasi:http, but {listed} {has} no `http` grant: \
                     their requests will be refused"
                ),
                Capability::Filesystem => format!(
                    "plugin `{action}` imports wasi:filesystem, but {listed} {has} no `files` \
                     grant: they see no files"
                ),
                _ => format!(
                    "plugin `{action}` imports wasi:sockets ({listed}): the host refuses \
                     every socket; the network is reached through wasi:http and `http` grants"
                ),
            }
        })
        .collect()
}
