//! A run's nodes as the dashboard reads them: each node's state with its
//! place in the graph, a page at a time, and one node in full.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use flow_host::WorkflowSpec;
use flow_host::report::{NodeStatus, RunStatus};
use flow_host::store::{NodeDocument, NodeHistory, NodeRecord, RunRecord};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::model::RunSummary;
use super::node_cache::{RunGraph, RunStates};
use super::problem::{Path, Problem, Query};
use super::state::App;

/// Nodes per page unless the request says.
const DEFAULT_LIMIT: usize = 1000;
/// The most nodes one page holds.
const MAX_LIMIT: usize = 10_000;

/// Which of a run's nodes to return.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NodeRange {
    /// The position of the first node, in file order (default 0).
    pub offset: Option<usize>,
    /// Nodes per page: 1 to 10,000 (default 1,000).
    pub limit: Option<usize>,
}

/// A page of a run's nodes, in file order.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodePage<'a> {
    /// The run's header.
    pub run: RunSummary,
    /// Nodes of the workflow.
    pub total: usize,
    /// Dependency levels of the workflow.
    pub levels: usize,
    /// The position of the first node of this page.
    pub offset: usize,
    /// The nodes.
    #[schema(value_type = Vec<NodeState>)]
    pub nodes: &'a [NodeState],
}

/// A node's place in the graph and where it stands, without its output
/// and logs (`GET /api/v1/runs/{id}/nodes/{node}` has those).
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeState {
    /// The node's id.
    pub id: String,
    /// Its position in the workflow file.
    pub index: usize,
    /// Its action.
    pub action: String,
    /// Its dependency level (0: depends on nothing).
    pub level: usize,
    /// The positions of the nodes it depends on.
    pub depends_on: Vec<usize>,
    /// `pending`, `running`, `succeeded`, `failed`, `skipped`,
    /// `cancelled`, ...
    pub status: String,
    /// Why it was skipped, or which node's failure it follows.
    pub reason: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// When its first attempt started (RFC 3339).
    pub started_at: Option<String>,
    /// How long it ran, once it ended.
    pub elapsed_ms: Option<f64>,
    /// Its error's message, cut to 200 characters.
    pub error: Option<String>,
    /// For a map node: elements that started.
    pub elements: usize,
    /// Whether it runs once per element of a list.
    pub map: bool,
    /// Whether it has a `when` condition.
    pub conditional: bool,
    /// The run of its sub-workflow.
    pub child_run: Option<String>,
    /// For a node a retry did not run again: the run whose output it kept.
    pub reused_from: Option<String>,
}

/// A page of a run's nodes with their states and places in the graph,
/// for views of large runs.
#[utoipa::path(
    get, path = "/api/v1/runs/{id}/nodes", tag = "runs",
    params(("id" = String, Path, description = "The run's id or a prefix of it"), NodeRange),
    responses(
        (status = 200, body = NodePage),
        (status = 400, description = "A malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A limit out of range", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(range): Query<NodeRange>,
) -> Result<Response, Problem> {
    let limit = range.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Problem::invalid(format!(
            "limit must be 1 to {MAX_LIMIT}, not {limit}"
        )));
    }
    let offset = range.offset.unwrap_or(0);
    let run = super::runs::find(&app, &id).await?;
    let graph = graph(&app, &run).await?;
    let states = states(&app, &run, graph.as_deref()).await?;
    let start = offset.min(states.nodes.len());
    let end = offset.saturating_add(limit).min(states.nodes.len());
    let page = || {
        let page = NodePage {
            run: RunSummary::from(&run),
            total: graph
                .as_ref()
                .map_or(states.nodes.len().max(run.nodes), |g| g.nodes.len()),
            levels: graph.as_ref().map_or(1, |g| g.levels),
            offset,
            nodes: &states.nodes[start..end],
        };
        serde_json::to_vec(&page).map(bytes::Bytes::from)
    };
    let body = if start == 0 && end == states.nodes.len() && run.status != RunStatus::Running {
        match states.whole.get() {
            Some(body) => body.clone(),
            None => {
                let body = page().map_err(Problem::internal)?;
                states.whole.get_or_init(|| body).clone()
            }
        }
    } else {
        page().map_err(Problem::internal)?
    };
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// Every node's state: kept for a run that ended, read now for one that
/// runs.
async fn states(
    app: &Arc<App>,
    run: &RunRecord,
    graph: Option<&RunGraph>,
) -> Result<Arc<RunStates>, Problem> {
    let ended = run.status != RunStatus::Running;
    if !ended {
        return read_states(app, run, graph).await;
    }
    if let Some(states) = app.nodes.states(run) {
        return Ok(states);
    }
    // Many requests for one big run read it once.
    let _making = app.nodes.making.lock().await;
    if let Some(states) = app.nodes.states(run) {
        return Ok(states);
    }
    let states = read_states(app, run, graph).await?;
    app.nodes.keep_states(run, states.clone());
    Ok(states)
}

async fn read_states(
    app: &Arc<App>,
    run: &RunRecord,
    graph: Option<&RunGraph>,
) -> Result<Arc<RunStates>, Problem> {
    let store = app.store.clone();
    let run_id = run.run_id.clone();
    let records = tokio::task::spawn_blocking(move || store.nodes(&run_id))
        .await
        .map_err(Problem::internal)??;
    let mut nodes = node_states(records, graph);
    if run.status == RunStatus::Running {
        live(app, &run.run_id, &mut nodes);
    }
    Ok(Arc::new(RunStates {
        nodes,
        whole: Default::default(),
    }))
}

/// The engine's live state of each node of a run it runs, over what the
/// store holds: with batched durability a node's start reaches the store
/// only at the next flush, and its event may have gone before the client
/// listened.
fn live(app: &App, run_id: &str, nodes: &mut [NodeState]) {
    let Ok(snapshot) = app.engine.status(run_id) else {
        return;
    };
    if snapshot.nodes.len() != nodes.len() {
        return;
    }
    for (node, (id, status, attempts)) in nodes.iter_mut().zip(snapshot.nodes) {
        if node.id == id && !matches!(status, NodeStatus::Pending) {
            node.status = status.name().to_string();
            node.reason = status.reason();
            node.attempts = node.attempts.max(attempts);
        }
    }
}

/// The run's workflow, as stored with it: parsed once.
async fn graph(app: &Arc<App>, run: &RunRecord) -> Result<Option<Arc<RunGraph>>, Problem> {
    if let Some(graph) = app.nodes.graph(run) {
        return Ok(graph);
    }
    let store = app.store.clone();
    let owned = run.clone();
    let graph = tokio::task::spawn_blocking(move || {
        let text = store.definition(&owned.run_id).ok().flatten()?;
        let spec = WorkflowSpec::parse(&owned.workflow_path, text).ok()?;
        Some(Arc::new(RunGraph::new(&spec)))
    })
    .await
    .map_err(Problem::internal)?;
    app.nodes.keep_graph(run, graph.clone());
    Ok(graph)
}

/// Each node's state from its record (pending without one), in file
/// order; without the workflow, the records alone.
fn node_states(records: Vec<NodeRecord>, graph: Option<&RunGraph>) -> Vec<NodeState> {
    // A node's record, and how many of its elements started.
    let mut by_index: HashMap<usize, (Option<NodeRecord>, usize)> = HashMap::new();
    let mut named: Vec<NodeRecord> = Vec::new();
    for record in records {
        let entry = by_index.entry(record.index).or_default();
        if record.element.is_some() {
            entry.1 += 1;
        } else if graph.is_some() {
            entry.0 = Some(record);
        } else {
            named.push(record);
        }
    }
    let state = |index: usize, record: NodeRecord, elements: usize| {
        let node = graph.and_then(|graph| graph.nodes.get(index));
        NodeState {
            index,
            level: node.map_or(0, |node| node.level),
            depends_on: node.map_or_else(Vec::new, |node| node.deps.clone()),
            status: record.status.name().to_string(),
            reason: record.status.reason(),
            attempts: record.attempts,
            started_at: record.started_at.map(|t| t.to_rfc3339()),
            elapsed_ms: record.elapsed_us.map(|us| us as f64 / 1e3),
            error: record.error.as_ref().map(|error| {
                let mut message: String = error.message.chars().take(200).collect();
                if message.len() < error.message.len() {
                    message.push('…');
                }
                message
            }),
            elements,
            map: node.is_some_and(|node| node.map),
            conditional: node.is_some_and(|node| node.conditional),
            child_run: record.child_run,
            reused_from: record.reused_from,
            id: record.node_id,
            action: record.action,
        }
    };
    match graph {
        Some(graph) => graph
            .nodes
            .iter()
            .enumerate()
            .map(|(index, node)| {
                let (record, elements) = by_index.remove(&index).unwrap_or_default();
                let record = record.unwrap_or_else(|| {
                    NodeRecord::new(index, &node.id, &node.action, NodeStatus::Pending)
                });
                state(index, record, elements)
            })
            .collect(),
        // The workflow is not stored with the run: its records alone.
        None => named
            .into_iter()
            .map(|record| {
                let elements = by_index.get(&record.index).map_or(0, |entry| entry.1);
                state(record.index, record, elements)
            })
            .collect(),
    }
}

/// One node in full.
#[derive(Serialize)]
struct NodeDetail<'a> {
    #[serde(flatten)]
    node: NodeDocument<'a>,
    /// Its `input` as the workflow writes it (templates unrendered).
    input: Option<serde_json::Value>,
    /// The nodes it depends on.
    depends_on: Vec<String>,
}

/// One node of a run: its record, every attempt with its logs, its output
/// and error, and its `input` as the workflow writes it; a map node's
/// elements too.
#[utoipa::path(
    get, path = "/api/v1/runs/{id}/nodes/{node}", tag = "runs",
    params(
        ("id" = String, Path, description = "The run's id or a prefix of it"),
        ("node" = String, Path, description = "The node's id, or `node[3]` for one element"),
    ),
    responses(
        (status = 200, description = "The node, as in `flow status --json`'s `nodes`, with `input` and `depends_on`", body = Object),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(
    State(app): State<Arc<App>>,
    Path((id, node)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let run = super::runs::find(&app, &id).await?;
    let graph = graph(&app, &run).await?;
    let store = app.store.clone();
    let run_id = run.run_id.clone();
    let body = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, Problem> {
        let written = graph
            .as_deref()
            .and_then(|graph| Some(&graph.nodes[*graph.index.get(&node)?]));
        let history = match (store.node(&run_id, &node)?, written) {
            (Some(history), _) => history,
            (None, Some(entry)) => NodeHistory::new(
                NodeRecord::new(entry.index, &entry.id, &entry.action, NodeStatus::Pending),
                Vec::new(),
            ),
            (None, None) => {
                return Err(Problem::not_found(format!(
                    "run {run_id} has no node {node:?}"
                )));
            }
        };
        // An element's page shows what its map node's input says.
        let written = written.or_else(|| {
            let graph = graph.as_deref()?;
            Some(&graph.nodes[*graph.index.get(history.node.map_node())?])
        });
        let detail = NodeDetail {
            node: NodeDocument(&history),
            input: written.and_then(|entry| serde_json::from_str(&entry.input).ok()),
            depends_on: written.map_or_else(Vec::new, |entry| entry.depends_on.clone()),
        };
        serde_json::to_vec(&detail).map_err(Problem::internal)
    })
    .await
    .map_err(Problem::internal)??;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}
