//! `/api/v1/runs`: the recorded runs; reading, following, cancelling,
//! resuming, retrying and deleting them.

use std::collections::HashSet;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use flow_host::store::{NodeHistory, RunRecord};
use flow_host::{RunStatus, WorkflowSpec};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;

use super::model::{LogLine, Logs, Resume, Retry, RunFilter, RunPage, RunRef, RunSummary};
use super::problem::{OptionalBody, Path, Problem, Query};
use super::state::App;

const PAGE: usize = 50;
const MAX_PAGE: usize = 500;

/// The runs, newest first, a page at a time.
#[utoipa::path(
    get, path = "/api/v1/runs", tag = "runs", params(RunFilter),
    responses(
        (status = 200, body = RunPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(app): State<Arc<App>>,
    Query(filter): Query<RunFilter>,
) -> Result<Json<RunPage>, Problem> {
    let limit = filter.limit.unwrap_or(PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Problem::bad_request(format!(
            "limit must be 1 to {MAX_PAGE}, not {limit}"
        )));
    }
    let status: Option<RunStatus> = match &filter.status {
        None => None,
        Some(text) => Some(serde_json::from_value(text.as_str().into()).map_err(|_| {
            Problem::bad_request(format!(
                "status {text:?} is not one of running, succeeded, failed, cancelled, interrupted"
            ))
        })?),
    };
    let since = filter
        .since
        .as_deref()
        .map(|t| millis("since", t))
        .transpose()?;
    let until = filter
        .until
        .as_deref()
        .map(|t| millis("until", t))
        .transpose()?;
    // Ids sort by start time: a page starts below the cursor, and below
    // the first id `until` excludes.
    let mut before = filter.cursor.clone();
    if let Some(until) = until {
        let bound = ulid::Ulid::from_parts(until, 0).to_string();
        if before.as_ref().is_none_or(|b| bound < *b) {
            before = Some(bound);
        }
    }
    let store = app.store.clone();
    let children = filter.children.unwrap_or(true);
    let page = tokio::task::spawn_blocking(move || {
        let mut runs = Vec::new();
        let mut more = false;
        for run in store.runs_before(before.as_deref()) {
            let run = run?;
            if since.is_some_and(|since| run.created_at.0 < since) {
                break;
            }
            let wanted = filter
                .workflow
                .as_ref()
                .is_none_or(|w| &run.workflow_id == w)
                && status.is_none_or(|s| run.status == s)
                && (children || run.parent.is_none());
            if !wanted {
                continue;
            }
            if runs.len() == limit {
                more = true;
                break;
            }
            runs.push(run);
        }
        let next_cursor = match more {
            true => runs.last().map(|run: &RunRecord| run.run_id.clone()),
            false => None,
        };
        Ok::<_, flow_host::store::StoreError>(RunPage {
            runs: runs.iter().map(RunSummary::from).collect(),
            next_cursor,
        })
    })
    .await
    .map_err(Problem::internal)??;
    Ok(Json(page))
}

fn millis(name: &str, text: &str) -> Result<u64, Problem> {
    humantime::parse_rfc3339_weak(text)
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map(|since| since.as_millis() as u64)
        .ok_or_else(|| {
            Problem::bad_request(format!(
                "{name} {text:?} is not an RFC 3339 time such as 2026-11-26T10:00:00Z"
            ))
        })
}

/// A run in detail: the document of `flow status --json` (nodes,
/// attempts, timings, fuel, outputs, errors).
#[utoipa::path(
    get, path = "/api/v1/runs/{id}", tag = "runs",
    params(("id" = String, Path, description = "The run's id, or enough of its beginning to tell it apart")),
    responses(
        (status = 200, description = "The run, as `flow status --json` prints it", body = Object),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<Response, Problem> {
    let run = find(&app, &id).await?;
    let json =
        |body: bytes::Bytes| ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    if run.status == RunStatus::Running {
        return Ok(json(document(&app, run).await?));
    }
    // An ended run: made once, then kept until it changes.
    if let Some(body) = app.documents.get(&run) {
        return Ok(json(body));
    }
    let _making = app.documents.making.lock().await;
    if let Some(body) = app.documents.get(&run) {
        return Ok(json(body));
    }
    let body = document(&app, run.clone()).await?;
    app.documents.put(&run, body.clone());
    Ok(json(body))
}

/// The document of `flow status --json` for `run`, read now.
async fn document(app: &Arc<App>, mut run: RunRecord) -> Result<bytes::Bytes, Problem> {
    let store = app.store.clone();
    tokio::task::spawn_blocking(move || -> Result<bytes::Bytes, Problem> {
        let (nodes, spec) = crate::cli::status::history(&*store, &mut run)?;
        let mut body = Vec::with_capacity(256 * nodes.len() + 1024);
        crate::cli::status::write_document(&mut body, &run, &nodes, spec.as_ref())
            .map_err(Problem::internal)?;
        Ok(body.into())
    })
    .await
    .map_err(Problem::internal)?
}

/// Whether to follow a node's logs.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Follow {
    /// Stream the lines as server-sent events (`line`, then `end` when the
    /// node has ended) instead of one JSON document.
    pub follow: Option<bool>,
}

/// What a node's actions logged and printed; a map node's include its
/// elements'. With `follow=true`, a stream of `line` events that ends
/// with `end` once the node ended.
#[utoipa::path(
    get, path = "/api/v1/runs/{id}/nodes/{node}/logs", tag = "runs",
    params(
        ("id" = String, Path, description = "The run's id or a prefix of it"),
        ("node" = String, Path, description = "The node's id, or `node[3]` for one element"),
        Follow,
    ),
    responses(
        (status = 200, body = Logs),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn logs(
    State(app): State<Arc<App>>,
    Path((id, node)): Path<(String, String)>,
    Query(follow): Query<Follow>,
) -> Result<Response, Problem> {
    // Subscribed before reading the run and its lines, so that neither
    // its end nor a line falls between.
    let events = app.events.subscribe();
    let run = find(&app, &id).await?;
    let lines = node_lines(&app, &run, &node, &mut HashSet::new()).await?;
    if !follow.follow.unwrap_or(false) {
        return Ok(Json(Logs {
            run_id: run.run_id,
            lines,
        })
        .into_response());
    }
    let shutdown = app.shutdown.clone().cancelled_owned();
    let stream = follow_lines(app, run, node, lines, events).take_until(shutdown);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// The lines of the attempts of `node` (and its elements) that ended and
/// are not in `sent`, which then holds them too. Unknown nodes are a 404
/// once the run has ended or the node's workflow lacks it.
async fn node_lines(
    app: &Arc<App>,
    run: &RunRecord,
    node: &str,
    sent: &mut HashSet<(String, u32)>,
) -> Result<Vec<LogLine>, Problem> {
    let store = app.store.clone();
    let run_id = run.run_id.clone();
    let history = tokio::task::spawn_blocking(move || store.history(&run_id))
        .await
        .map_err(Problem::internal)??;
    let mut found = false;
    let mut lines = Vec::new();
    let all = history.into_iter().flat_map(|mut history| {
        let elements = std::mem::take(&mut history.elements);
        std::iter::once(history).chain(elements)
    });
    for NodeHistory {
        node: record,
        attempts,
        ..
    } in all
    {
        if record.node_id != node && record.map_node() != node {
            continue;
        }
        found = true;
        for attempt in attempts {
            // An attempt's lines are stored when it ends.
            if attempt.elapsed_us.is_none() && attempt.error.is_none() {
                continue;
            }
            if !sent.insert((record.node_id.clone(), attempt.number)) {
                continue;
            }
            lines.extend(attempt.logs.iter().map(|line| LogLine {
                node: record.node_id.clone(),
                attempt: attempt.number,
                kind: line.kind.name().to_string(),
                text: line.text.clone(),
            }));
        }
    }
    if !found && !has_node(app, run, node).await {
        return Err(Problem::not_found(format!(
            "run {} has no node `{node}`",
            run.run_id
        )));
    }
    Ok(lines)
}

/// Whether the run's workflow has this node (it may not have started).
async fn has_node(app: &Arc<App>, run: &RunRecord, node: &str) -> bool {
    let wanted = node.split('[').next().unwrap_or(node).to_string();
    let (store, run) = (app.store.clone(), run.clone());
    // Read and validated off the async workers.
    tokio::task::spawn_blocking(move || {
        let Ok(Some(text)) = store.definition(&run.run_id) else {
            return false;
        };
        WorkflowSpec::parse(&run.workflow_path, text)
            .is_ok_and(|spec| spec.nodes.iter().any(|n| n.id == wanted))
    })
    .await
    .unwrap_or(false)
}

/// How often a follower looks at the run in the store, whatever events
/// come: runs this server does not hear about (another host's, on a
/// shared store, or one with `observability = false`) end all the same.
const LOOK: Duration = Duration::from_secs(1);

/// Lines are read again at most this often, however many events come (a
/// map node's elements each end), and at least this often while nothing
/// is heard.
const READ_AT_MOST: Duration = Duration::from_millis(250);
const READ_AT_LEAST: Duration = Duration::from_secs(10);

fn follow_lines(
    app: Arc<App>,
    run: RunRecord,
    node: String,
    first: Vec<LogLine>,
    events: tokio::sync::broadcast::Receiver<super::events::Message>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    struct Following {
        app: Arc<App>,
        run: RunRecord,
        node: String,
        sent: HashSet<(String, u32)>,
        pending: std::collections::VecDeque<SseEvent>,
        events: tokio::sync::broadcast::Receiver<super::events::Message>,
        read: tokio::time::Instant,
        /// When to look at the run in the store, whatever else is heard.
        look: tokio::time::Instant,
        done: bool,
    }
    let mut pending: std::collections::VecDeque<SseEvent> = first.iter().map(line_event).collect();
    let sent: HashSet<(String, u32)> = first
        .iter()
        .map(|line| (line.node.clone(), line.attempt))
        .collect();
    let ended = run.status.is_finished();
    if ended {
        pending.push_back(SseEvent::default().event("end").data("{}"));
    }
    let state = Following {
        app,
        run,
        node,
        sent,
        pending,
        events,
        read: tokio::time::Instant::now(),
        look: tokio::time::Instant::now() + LOOK,
        done: ended,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(event) = state.pending.pop_front() {
                return Some((Ok(event), state));
            }
            if state.done {
                return None;
            }
            let mut finished = false;
            let heard = tokio::select! {
                heard = state.events.recv() => Some(heard),
                () = tokio::time::sleep_until(state.look) => None,
            };
            match heard {
                Some(Ok(message)) => {
                    if *message.run_id != *state.run.run_id {
                        continue;
                    }
                    let ours = message.node.as_deref().is_some_and(|n| {
                        n == state.node || n.split('[').next() == Some(&state.node)
                    });
                    finished = message.kind == "run_finished"
                        || (ours && message.kind == "node_finished" && !state.node.contains('['));
                    if !(ours || finished) || message.kind == "attempt_started" {
                        continue;
                    }
                }
                Some(Err(RecvError::Lagged(_))) => {}
                Some(Err(RecvError::Closed)) => finished = true,
                None => {
                    state.look = tokio::time::Instant::now() + LOOK;
                    finished = run_ended(&state.app, &state.run.run_id).await;
                    if !finished && state.read.elapsed() < READ_AT_LEAST {
                        continue;
                    }
                }
            }
            // Events that come meanwhile wait in the channel; the next
            // read gathers their lines.
            tokio::time::sleep_until(state.read + READ_AT_MOST).await;
            state.read = tokio::time::Instant::now();
            let (app, run, node) = (state.app.clone(), state.run.clone(), state.node.clone());
            if let Ok(lines) = node_lines(&app, &run, &node, &mut state.sent).await {
                state.pending.extend(lines.iter().map(line_event));
            }
            if finished {
                state.done = true;
                state
                    .pending
                    .push_back(SseEvent::default().event("end").data("{}"));
            }
        }
    })
}

/// Whether run `id` has ended, as the store says (an error reads as not).
async fn run_ended(app: &Arc<App>, id: &str) -> bool {
    let store = app.store.clone();
    let id = id.to_string();
    tokio::task::spawn_blocking(move || store.run(&id))
        .await
        .is_ok_and(|run| matches!(run, Ok(Some(run)) if run.status.is_finished()))
}

fn line_event(line: &LogLine) -> SseEvent {
    SseEvent::default()
        .event("line")
        .data(serde_json::to_string(line).unwrap_or_default())
}

/// Asks a running run to stop; its running nodes are cancelled and
/// recorded, and it can be resumed.
#[utoipa::path(
    post, path = "/api/v1/runs/{id}/cancel", tag = "runs",
    params(("id" = String, Path, description = "The run's id or a prefix of it")),
    responses(
        (status = 202, description = "The run is stopping", body = RunRef),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run is not running here", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cancel(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let run = find(&app, &id).await?;
    // The store says whether it ended; a run that just ended may still
    // be on the server's list a moment.
    if run.status == RunStatus::Running && app.cancel(&run.run_id) {
        return Ok((StatusCode::ACCEPTED, Json(RunRef::new(&run.run_id))).into_response());
    }
    Err(Problem::conflict(match run.status {
        RunStatus::Running => format!(
            "run {} is not run by this server (another process, or its parent run, runs it)",
            run.run_id
        ),
        status => format!("run {} is not running: it {status}", run.run_id),
    }))
}

/// Continues a run that was interrupted, cancelled or failed: what
/// succeeded is kept, everything else runs.
#[utoipa::path(
    post, path = "/api/v1/runs/{id}/resume", tag = "runs",
    params(("id" = String, Path, description = "The run's id or a prefix of it")),
    request_body(content = Resume, description = "Optional"),
    responses(
        (status = 202, description = "The run goes on", body = RunRef),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Running, succeeded, or changed since", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn resume(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    OptionalBody(body): OptionalBody<Resume>,
) -> Result<Response, Problem> {
    let Resume { force } = body;
    let run = find(&app, &id).await?;
    let (spec, dirs) = recorded(&app, &run).await?;
    let run_id = run.run_id.clone();
    let started = app
        .launch(Arc::new(spec), &dirs, |engine, spec, plugins| {
            engine.resume(spec, plugins, &run_id, force)
        })
        .await?;
    Ok((StatusCode::ACCEPTED, Json(RunRef::new(&started))).into_response())
}

/// Starts a new run that reuses this run's outputs: everything but the
/// nodes of `from` and what is downstream of them (or, without `from`,
/// what did not succeed).
#[utoipa::path(
    post, path = "/api/v1/runs/{id}/retry", tag = "runs",
    params(("id" = String, Path, description = "The run's id or a prefix of it")),
    request_body(content = Retry, description = "Optional"),
    responses(
        (status = 201, description = "The new run", body = RunRef),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Changed since", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown node", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn retry(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    OptionalBody(body): OptionalBody<Retry>,
) -> Result<Response, Problem> {
    let Retry { from, force } = body;
    let run = find(&app, &id).await?;
    let (spec, dirs) = recorded(&app, &run).await?;
    let run_id = run.run_id.clone();
    let started = app
        .launch(Arc::new(spec), &dirs, |engine, spec, plugins| {
            engine.retry_from(spec, plugins, &run_id, &from, force)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(RunRef::new(&started))).into_response())
}

/// Deletes a run that is not running, with its nodes and attempts.
#[utoipa::path(
    delete, path = "/api/v1/runs/{id}", tag = "runs",
    params(("id" = String, Path, description = "The run's whole id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run is running", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    // A deletion takes no prefix: it cannot be undone.
    let store = app.store.clone();
    let wanted = id.clone();
    let run = tokio::task::spawn_blocking(move || store.run(&wanted))
        .await
        .map_err(Problem::internal)??
        .ok_or_else(|| {
            Problem::not_found(format!("no run {id} (a deletion needs the whole id)"))
        })?;
    if run.status == RunStatus::Running {
        return Err(Problem::conflict(format!(
            "run {} is running; cancel it first",
            run.run_id
        )));
    }
    let store = app.store.clone();
    tokio::task::spawn_blocking(move || {
        store.delete_run(&run.run_id)?;
        store.flush()
    })
    .await
    .map_err(Problem::internal)??;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn find(app: &Arc<App>, id: &str) -> Result<RunRecord, Problem> {
    let store = app.store.clone();
    let id = id.to_string();
    Ok(tokio::task::spawn_blocking(move || store.find_run(&id))
        .await
        .map_err(Problem::internal)??)
}

/// A recorded run's workflow, as its file says now (or as stored with
/// the run when the file is gone), with the run's option overrides, and
/// its plugins search path; read and validated off the async workers.
async fn recorded(
    app: &Arc<App>,
    run: &RunRecord,
) -> Result<(WorkflowSpec, Vec<PathBuf>), Problem> {
    let (app, run) = (app.clone(), run.clone());
    tokio::task::spawn_blocking(move || read_recorded(&app, &run))
        .await
        .map_err(Problem::internal)?
}

fn read_recorded(app: &App, run: &RunRecord) -> Result<(WorkflowSpec, Vec<PathBuf>), Problem> {
    let path = &run.workflow_path;
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(_) => app.store.definition(&run.run_id)?.unwrap_or_default(),
    };
    let mut spec = WorkflowSpec::parse(path, text)?;
    spec.apply_overrides(&run.overrides);
    let dirs = match (app.plugins.is_empty(), run.plugins_dirs.is_empty()) {
        (false, _) => app.plugins.clone(),
        (true, false) => run.plugins_dirs.clone(),
        (true, true) => {
            return Err(Problem::invalid(format!(
                "run {} does not say where its plugins were; start the server with --plugins DIR",
                run.run_id
            )));
        }
    };
    Ok((spec, dirs))
}
