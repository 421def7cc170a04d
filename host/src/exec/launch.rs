//! Starting a run, or resuming one: the run record, what changed since,
//! the state an earlier session left.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use ulid::Ulid;

use super::handle::{Canceller, Progress};
use super::node::Shared;
use super::persist::Persistence;
use super::scheduler::{self, Prior};
use super::{ExecError, RunHandle, WorkflowEngine};
use crate::report::{Failure, NodeStatus, RunStatus, Timestamp};
use crate::runtime::{Plugin, PluginRegistry};
use crate::spec::WorkflowSpec;
use crate::store::{ParentLink, RunRecord, WorkflowStore};

/// What started a new run, besides a caller: the node of the parent run
/// that runs a sub-workflow, or a schedule.
#[derive(Debug, Default)]
pub(super) struct Origin {
    pub parent: Option<ParentLink>,
    pub scheduled_for: Option<Timestamp>,
}

/// Records a new run and starts it.
pub(super) fn start(
    engine: &WorkflowEngine,
    workflow: Arc<WorkflowSpec>,
    plugins: Arc<PluginRegistry>,
    origin: Origin,
) -> Result<RunHandle, ExecError> {
    let node_plugins = resolve(engine, &workflow, &plugins)?;
    let record = RunRecord {
        parent: origin.parent,
        scheduled_for: origin.scheduled_for,
        ..new_record(&workflow, &plugins, workflow.resolved_params()?)
    };
    engine.store.create_run(&record, &workflow.source.text)?;
    // The run's start is on disk before any of its work.
    engine.store.flush()?;
    Ok(launch(
        engine,
        (workflow, plugins),
        node_plugins,
        record,
        Prior::default(),
    ))
}

/// Records a new run as queued, without starting it: a worker of the
/// shared store starts it.
pub(super) fn submit(
    engine: &WorkflowEngine,
    workflow: &WorkflowSpec,
    plugins: &PluginRegistry,
) -> Result<RunRecord, ExecError> {
    // The process that takes it up checks its own runtime and secrets.
    plugins_of(workflow, plugins, None)?;
    let record = RunRecord {
        status: RunStatus::Queued,
        ..new_record(workflow, plugins, workflow.resolved_params()?)
    };
    engine.store.create_run(&record, &workflow.source.text)?;
    engine.store.flush()?;
    Ok(record)
}

/// The record of a new run of `workflow` with `params`.
fn new_record(
    workflow: &WorkflowSpec,
    plugins: &PluginRegistry,
    params: serde_json::Map<String, serde_json::Value>,
) -> RunRecord {
    RunRecord {
        run_id: Ulid::new().to_string(),
        workflow_id: workflow.id.clone(),
        workflow_path: absolute(&workflow.source.path),
        status: RunStatus::Running,
        created_at: Timestamp::now(),
        finished_at: None,
        nodes: workflow.nodes.len(),
        sinks: Some(sinks(workflow)),
        error: None,
        failed_nodes: 0,
        workflow_sha256: sha256(&workflow.source.text),
        plugins_dirs: plugins.dirs().iter().map(|dir| absolute(dir)).collect(),
        plugins: digests(workflow, plugins),
        overrides: workflow.overrides.clone(),
        secrets: workflow.secret_names(),
        resumes: 0,
        params,
        retry_of: None,
        scheduled_for: None,
        parent: None,
    }
}

/// Continues a run that did not succeed: nodes that succeeded keep their
/// outputs and do not run again; every other node runs, with fresh retries.
pub(super) fn resume(
    engine: &WorkflowEngine,
    workflow: Arc<WorkflowSpec>,
    plugins: Arc<PluginRegistry>,
    run_id: &str,
    force: bool,
) -> Result<RunHandle, ExecError> {
    let store = &engine.store;
    let mut record = store.find_run(run_id)?;
    if record.status == RunStatus::Succeeded {
        return Err(ExecError::NothingToResume {
            run_id: record.run_id,
        });
    }
    if record.status == RunStatus::Running {
        return Err(ExecError::StillRunning {
            run_id: record.run_id,
        });
    }
    let node_plugins = resolve(engine, &workflow, &plugins)?;
    let (workflow_sha256, plugin_digests) =
        unchanged_since(&record, &workflow, &plugins, force, false)?;

    let prior = Prior {
        forced: force,
        ..prior_state(store.as_ref(), &record.run_id, &workflow)?
    };
    record.status = RunStatus::Running;
    record.finished_at = None;
    record.error = None;
    record.resumes += 1;
    record.nodes = workflow.nodes.len();
    record.sinks = Some(sinks(&workflow));
    record.workflow_sha256 = workflow_sha256;
    record.failed_nodes = 0;
    record.plugins_dirs = plugins.dirs().iter().map(|dir| absolute(dir)).collect();
    record.plugins = plugin_digests;
    record.secrets = workflow.secret_names();
    record.overrides = workflow.overrides.clone();
    // The values it started with, unless new ones were given.
    if let Some(values) = &workflow.param_values {
        record.params = values.clone();
    }
    store.create_run(&record, &workflow.source.text)?;
    store.flush()?;
    if let Some(dispatcher) = engine.dispatcher() {
        dispatcher.resumed(&record.run_id);
    }
    Ok(launch(
        engine,
        (workflow, plugins),
        node_plugins,
        record,
        prior,
    ))
}

/// Starts a new run of `workflow` that reuses what run `run_id` produced:
/// the stored output of every node that succeeded and is not `from` or
/// downstream of it; every other node runs.
pub(super) fn retry_from(
    engine: &WorkflowEngine,
    workflow: Arc<WorkflowSpec>,
    plugins: Arc<PluginRegistry>,
    run_id: &str,
    from: &[String],
    force: bool,
) -> Result<RunHandle, ExecError> {
    let store = &engine.store;
    let old = store.find_run(run_id)?;
    if old.status == RunStatus::Running {
        return Err(ExecError::StillRunning { run_id: old.run_id });
    }
    let mut rerun = vec![false; workflow.nodes.len()];
    for id in from {
        let Some(index) = workflow.node_index(id) else {
            let ids = workflow.nodes.iter().map(|node| node.id.as_str());
            return Err(ExecError::UnknownNode {
                node: id.clone(),
                hint: crate::spec::suggest(id, ids, "nodes"),
            });
        };
        rerun[index] = true;
        for downstream in workflow.dag.downstream(index) {
            rerun[downstream] = true;
        }
    }
    let node_plugins = resolve(engine, &workflow, &plugins)?;
    unchanged_since(&old, &workflow, &plugins, force, true)?;
    let params = match &workflow.param_values {
        Some(values) => values.clone(),
        None => old.params.clone(),
    };
    let record = RunRecord {
        retry_of: Some(old.run_id.clone()),
        ..new_record(&workflow, &plugins, params)
    };
    // The outputs kept: recorded in the new run as succeeded without an
    // attempt of its own, saying where they come from.
    let mut prior = Prior::new(workflow.nodes.len());
    let mut kept = Vec::new();
    for mut node in store.nodes(&old.run_id)? {
        let Some(index) = workflow.node_index(&node.node_id) else {
            continue;
        };
        if rerun[index] || node.status != NodeStatus::Succeeded || node.element.is_some() {
            continue;
        }
        let Some(output) = node.output.clone() else {
            continue;
        };
        prior.outputs[index] = Some(output);
        node.index = index;
        node.attempts = 0;
        node.reused_from = Some(old.run_id.clone());
        kept.push(node);
    }
    store.create_run(&record, &workflow.source.text)?;
    store.put_batch(&record.run_id, &kept, &[])?;
    store.flush()?;
    Ok(launch(
        engine,
        (workflow, plugins),
        node_plugins,
        record,
        prior,
    ))
}

/// What the earlier sessions of a run left: the outputs of the nodes that
/// succeeded, and the attempts of the others. Those nodes run again, so
/// their records become pending; an attempt that never ended (its process
/// stopped while it ran) is recorded as lost.
fn prior_state(
    store: &dyn WorkflowStore,
    run_id: &str,
    workflow: &WorkflowSpec,
) -> Result<Prior, ExecError> {
    let mut prior = Prior::new(workflow.nodes.len());
    // Node records only: the attempts of the nodes that run again are the
    // only ones read. A map node's element records follow its own.
    for mut node in store.nodes(run_id)? {
        let Some(index) = workflow.node_index(node.map_node()) else {
            continue;
        };
        let succeeded = node.status == NodeStatus::Succeeded;
        match node.element {
            // An element of a map node that did not end: its output is
            // kept if it succeeded; else it runs again.
            Some(element) => {
                let before = prior.elements.entry(index).or_default();
                before.attempts.insert(element, node.attempts);
                if succeeded && let Some(output) = node.output.take() {
                    before.outputs.insert(element, output);
                    continue;
                }
            }
            None if succeeded => {
                prior.attempts[index] = node.attempts;
                let output = node.output.unwrap_or_else(|| {
                    crate::report::JsonText::from_value(&serde_json::Value::Null)
                });
                prior.outputs[index] = Some(output);
                prior.spent[index] = (
                    Duration::from_micros(node.elapsed_us.unwrap_or(0)),
                    node.fuel_used,
                );
                continue;
            }
            None => {
                prior.attempts[index] = node.attempts;
                // A sub-workflow's node goes on with the child run it started.
                if let Some(child) = &node.child_run {
                    prior.children.insert(index, child.clone());
                }
            }
        }
        let lost = store
            .attempts(run_id, &node.node_id)?
            .into_iter()
            .filter(|attempt| attempt.elapsed_us.is_none() && attempt.error.is_none())
            .map(|mut attempt| {
                attempt.error = Some(Failure::lost());
                (node.node_id.clone(), attempt)
            });
        let lost: Vec<_> = lost.collect();
        if node.status != NodeStatus::Pending || !lost.is_empty() {
            // It runs again: until it starts, it is pending, not failed.
            node.status = NodeStatus::Pending;
            node.error = None;
            node.finished_at = None;
            store.put_batch(run_id, std::slice::from_ref(&node), &lost)?;
        }
    }
    // The elements of map nodes that succeeded are not needed again.
    prior
        .elements
        .retain(|&index, _| prior.outputs[index].is_none());
    Ok(prior)
}

fn launch(
    engine: &WorkflowEngine,
    (workflow, registry): (Arc<WorkflowSpec>, Arc<PluginRegistry>),
    node_plugins: Vec<Option<Arc<Plugin>>>,
    record: RunRecord,
    prior: Prior,
) -> RunHandle {
    let persistence = Arc::new(Persistence::new(
        engine.store.clone(),
        record.run_id.clone(),
        workflow.options.durability,
    ));
    let canceller = Canceller::default();
    let progress = Arc::new(Progress::new(workflow.nodes.iter().map(|n| n.id.clone())));
    for (index, output) in prior.outputs.iter().enumerate() {
        if output.is_some() {
            progress.set_node(index, &NodeStatus::Succeeded, prior.attempts[index]);
        }
    }
    let run_json = serde_json::json!({
        "id": record.run_id,
        "workflow": workflow.id,
        "params": record.params,
    })
    .to_string();
    // Written by serde_json just now: it reads back.
    let run_value = crate::expr::parse_json(&run_json).unwrap_or_default();
    let shared = Arc::new(Shared {
        engine: engine.clone(),
        registry,
        runtime: engine.runtime.clone(),
        store: engine.store.clone(),
        observers: engine.observers.clone(),
        metrics: engine.metrics.clone(),
        error_handler: engine.error_handler.clone(),
        middleware: engine.middleware.clone(),
        sleeper: engine.sleeper.clone(),
        workflow,
        plugins: node_plugins,
        run_id: record.run_id.clone(),
        cancel: canceller.0.clone(),
        progress: progress.clone(),
        persistence,
        secrets: engine.secrets.clone(),
        redactor: engine.redactor.clone(),
        run_value,
    });
    let run_id = record.run_id.clone();
    engine.live.insert(&run_id, &progress);
    let task = tokio::spawn(scheduler::run(shared, record, prior));
    RunHandle {
        run_id,
        canceller,
        progress,
        task,
    }
}

/// Checks that the runtime can hold as many instances as the run has
/// workers. With a dispatcher, attempts of WebAssembly actions run
/// elsewhere, each worker bounded by its own runtime.
fn check_pool(engine: &WorkflowEngine, workflow: &WorkflowSpec) -> Result<(), ExecError> {
    let workers = workflow.options.max_concurrency.workers();
    let instances = engine.runtime.config().max_instances;
    if engine.dispatcher().is_none() && instances > 0 && workers > instances as usize {
        return Err(ExecError::PoolTooSmall { workers, instances });
    }
    Ok(())
}

/// The plugin of each node, by node index (none for a node that runs a
/// sub-workflow); checks the runtime's pool (see [`check_pool`]), and that
/// the plugins and secrets of the sub-workflows are there too.
fn resolve(
    engine: &WorkflowEngine,
    workflow: &WorkflowSpec,
    plugins: &PluginRegistry,
) -> Result<Vec<Option<Arc<Plugin>>>, ExecError> {
    check_pool(engine, workflow)?;
    plugins_of(workflow, plugins, Some(&engine.secrets))
}

/// The plugin of each node, and those of the sub-workflows, checked; with
/// `secrets`, that those the workflows grant are there.
fn plugins_of(
    workflow: &WorkflowSpec,
    plugins: &PluginRegistry,
    secrets: Option<&crate::runtime::Secrets>,
) -> Result<Vec<Option<Arc<Plugin>>>, ExecError> {
    workflow
        .check_actions(plugins.names())
        .map_err(ExecError::Spec)?;
    for spec in std::iter::once(workflow).chain(workflow.sub_workflows()) {
        if let Some(secrets) = secrets {
            spec.check_secrets(secrets).map_err(ExecError::Spec)?;
        }
        for node in spec.nodes.iter().filter(|node| node.workflow.is_none()) {
            if plugins.get(&node.action).is_none() {
                return Err(not_loaded(plugins, &node.action));
            }
        }
    }
    Ok(workflow
        .nodes
        .iter()
        .map(|node| plugins.get(&node.action).cloned())
        .collect())
}

fn not_loaded(plugins: &PluginRegistry, action: &str) -> ExecError {
    ExecError::NotLoaded {
        action: action.to_string(),
        path: plugins
            .listed(action)
            .map(Path::to_path_buf)
            .unwrap_or_default(),
    }
}

/// The ids of the nodes nothing depends on.
fn sinks(workflow: &WorkflowSpec) -> Vec<String> {
    workflow
        .dag
        .sinks()
        .map(|index| workflow.nodes[index].id.clone())
        .collect()
}

/// SHA-256 of each plugin the workflow uses, by name.
fn digests(workflow: &WorkflowSpec, plugins: &PluginRegistry) -> BTreeMap<String, String> {
    workflow
        .nodes
        .iter()
        .filter_map(|node| {
            let plugin = plugins.get(&node.action)?;
            Some((node.action.clone(), plugin.digest.clone()))
        })
        .collect()
}

/// The workflow's SHA-256 and its plugins' now, once checked against those
/// of `record`: a difference is refused unless `force` (`retry` says which
/// command it was for).
fn unchanged_since(
    record: &RunRecord,
    workflow: &WorkflowSpec,
    plugins: &PluginRegistry,
    force: bool,
    retry: bool,
) -> Result<(String, BTreeMap<String, String>), ExecError> {
    let workflow_sha256 = sha256(&workflow.source.text);
    let plugin_digests = digests(workflow, plugins);
    let changes = changes(record, workflow, &workflow_sha256, &plugin_digests);
    if !changes.is_empty() && !force {
        return Err(ExecError::Changed {
            run_id: record.run_id.clone(),
            retry,
            changes,
        });
    }
    Ok((workflow_sha256, plugin_digests))
}

/// What differs between the run's record and the workflow and plugins now.
fn changes(
    record: &RunRecord,
    workflow: &WorkflowSpec,
    workflow_sha256: &str,
    plugins: &BTreeMap<String, String>,
) -> Vec<String> {
    let short = |digest: &str| digest.chars().take(12).collect::<String>();
    let mut changes = Vec::new();
    if record.workflow_sha256 != workflow_sha256 {
        changes.push(format!(
            "the workflow file {} changed (sha256 {} -> {})",
            workflow.source.path.display(),
            short(&record.workflow_sha256),
            short(workflow_sha256)
        ));
    }
    for (name, digest) in plugins {
        match record.plugins.get(name) {
            Some(old) if old == digest => {}
            Some(old) => changes.push(format!(
                "plugin `{name}` changed (sha256 {} -> {})",
                short(old),
                short(digest)
            )),
            None => changes.push(format!("plugin `{name}` is new to this run")),
        }
    }
    changes
}

fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The path made absolute, so that a resume from another directory finds it.
fn absolute(path: &std::path::Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
