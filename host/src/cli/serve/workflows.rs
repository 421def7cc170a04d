//! `/api/v1/workflows`: the workflow files of the server's directory, and
//! starting runs of them.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use flow_host::WorkflowSpec;
use flow_host::report::Timestamp;

use super::catalog::Entry;
use super::idempotency::{self, Started};
use super::model::{
    GraphNode, ParamInfo, RunRef, ScheduleInfo, StartRun, WorkflowDetail, WorkflowSummary,
};
use super::problem::{OptionalBody, Path, Problem};
use super::state::App;

/// The longest idempotency key taken.
const MAX_KEY: usize = 255;

/// The workflow files of the server's `--workflows` directory.
#[utoipa::path(
    get, path = "/api/v1/workflows", tag = "workflows",
    responses((status = 200, description = "Every workflow file, valid or not", body = Vec<WorkflowSummary>))
)]
pub async fn list(State(app): State<Arc<App>>) -> Result<Json<Vec<WorkflowSummary>>, Problem> {
    let catalog = app.catalog.clone();
    let entries = tokio::task::spawn_blocking(move || {
        let mut entries = Vec::new();
        for name in catalog.names()? {
            entries.extend(catalog.get(&name)?);
        }
        std::io::Result::Ok(entries)
    })
    .await
    .map_err(Problem::internal)?
    .map_err(Problem::internal)?;
    Ok(Json(
        entries.iter().map(|entry| summary(&app, entry)).collect(),
    ))
}

/// A workflow file with its graph.
#[utoipa::path(
    get, path = "/api/v1/workflows/{name}", tag = "workflows",
    params(("name" = String, Path, description = "The file's name without `.toml`")),
    responses(
        (status = 200, body = WorkflowDetail),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<Json<WorkflowDetail>, Problem> {
    let entry = entry(&app, &name).await?;
    let graph = match &entry.spec {
        Ok(spec) => graph(spec),
        Err(_) => Vec::new(),
    };
    Ok(Json(WorkflowDetail {
        summary: summary(&app, &entry),
        graph,
    }))
}

/// Starts a run of a workflow file. With an `Idempotency-Key` header, a
/// request that repeats one made within a day gets the run the first
/// started (200 instead of 201); the same key with another request is
/// refused.
#[utoipa::path(
    post, path = "/api/v1/workflows/{name}/runs", tag = "workflows",
    params(
        ("name" = String, Path, description = "The file's name without `.toml`"),
        ("Idempotency-Key" = Option<String>, Header, description = "Up to 255 characters; the same key returns the same run"),
    ),
    request_body(content = StartRun, description = "Parameter values (optional)"),
    responses(
        (status = 201, description = "The run started", body = RunRef),
        (status = 200, description = "The run this idempotency key started before", body = RunRef),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid workflow, parameters or key reuse", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn start(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    OptionalBody(request): OptionalBody<StartRun>,
) -> Result<Response, Problem> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(value) => match value.to_str() {
            Ok(key) if !key.is_empty() && key.len() <= MAX_KEY => Some(key.to_string()),
            _ => {
                return Err(Problem::bad_request(format!(
                    "Idempotency-Key must be 1 to {MAX_KEY} visible ASCII characters"
                )));
            }
        },
    };
    let Some(key) = key else {
        let run_id = start_run(&app, &name, request).await?;
        return Ok(created(&run_id));
    };
    // The key's slot is held while the run starts: a second request with
    // the key waits for the first and gets its run; other keys go on.
    let slot = app.keys.lock().await.slot(&key);
    let mut entry = slot.lock().await;
    let asked = idempotency::digest(&format!(
        "{name}\n{}",
        serde_json::to_string(&request).unwrap_or_default()
    ));
    if let Some(started) = entry.as_ref() {
        if started.request != asked {
            return Err(Problem::invalid(format!(
                "Idempotency-Key {key:?} was used for another request (run {}); use a new key for a new run",
                started.run_id
            )));
        }
        let mut response = Json(RunRef::new(&started.run_id)).into_response();
        response.headers_mut().insert(
            "idempotent-replayed",
            "true".parse().expect("a valid header"),
        );
        return Ok(response);
    }
    let run_id = match start_run(&app, &name, request).await {
        Ok(run_id) => run_id,
        Err(problem) => {
            drop(entry);
            app.keys.lock().await.forget_unused(&key, &slot);
            return Err(problem);
        }
    };
    *entry = Some(Started {
        request: asked,
        run_id: run_id.clone(),
    });
    Ok(created(&run_id))
}

fn created(run_id: &str) -> Response {
    let reference = RunRef::new(run_id);
    let location = reference.url.clone();
    let mut response = (StatusCode::CREATED, Json(reference)).into_response();
    if let Ok(location) = location.parse() {
        response.headers_mut().insert("location", location);
    }
    response
}

async fn start_run(app: &Arc<App>, name: &str, request: StartRun) -> Result<String, Problem> {
    let entry = entry(app, name).await?;
    let mut spec = entry.spec?;
    spec.set_params(&request.params)
        .map_err(|error| Problem::invalid(error.problems.join("; ")))?;
    let dirs = app.plugins_dirs(&spec, &entry.path)?;
    app.launch(Arc::new(spec), &dirs, |engine, spec, plugins| {
        engine.start(spec, plugins)
    })
    .await
}

async fn entry(app: &Arc<App>, name: &str) -> Result<Entry, Problem> {
    let catalog = app.catalog.clone();
    let wanted = name.to_string();
    let found = tokio::task::spawn_blocking(move || catalog.get(&wanted))
        .await
        .map_err(Problem::internal)?
        .map_err(Problem::internal)?;
    found.ok_or_else(|| {
        Problem::not_found(match app.catalog.dir() {
            Some(dir) => format!(
                "no workflow `{name}`: {} has no {name}.toml (GET /api/v1/workflows lists them)",
                dir.display()
            ),
            None => format!("no workflow `{name}`: the server was started without --workflows DIR"),
        })
    })
}

fn summary(app: &App, entry: &Entry) -> WorkflowSummary {
    let file = entry.path.display().to_string();
    match &entry.spec {
        Ok(spec) => WorkflowSummary {
            name: entry.name.clone(),
            file,
            id: Some(spec.id.clone()),
            valid: true,
            nodes: Some(spec.nodes.len()),
            params: spec
                .params
                .iter()
                .map(|(name, param)| ParamInfo {
                    name: name.clone(),
                    kind: param.kind.name().to_string(),
                    default: param.default.clone(),
                    description: param.description.clone(),
                })
                .collect(),
            errors: None,
            schedule: spec.cron.as_ref().map(|schedule| ScheduleInfo {
                cron: schedule.expression.clone(),
                timezone: schedule.timezone.clone(),
                overlap: schedule.overlap.name().to_string(),
                catch_up_s: schedule.catch_up.as_secs(),
                last_fire: app
                    .store
                    .last_fire(&entry.name)
                    .ok()
                    .flatten()
                    .map(Timestamp::to_rfc3339),
                next_fire: super::cron::next_fire(app, &entry.name, schedule)
                    .map(Timestamp::to_rfc3339),
            }),
        },
        Err(error) => WorkflowSummary {
            name: entry.name.clone(),
            file,
            id: None,
            valid: false,
            nodes: None,
            params: Vec::new(),
            errors: Some(error.to_json()),
            schedule: None,
        },
    }
}

fn graph(spec: &WorkflowSpec) -> Vec<GraphNode> {
    spec.nodes
        .iter()
        .enumerate()
        .map(|(index, node)| GraphNode {
            id: node.id.clone(),
            action: node.action.clone(),
            depends_on: node.depends_on.clone(),
            level: spec.dag.level_of(index),
            map: node.exprs.map.is_some(),
            conditional: node.exprs.when.is_some(),
        })
        .collect()
}
