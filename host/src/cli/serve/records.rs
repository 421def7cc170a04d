//! `/api/v1/records`: the stored records as the command line reads them,
//! so that `flow status`, `flow list`, `flow logs` and `flow graph` work
//! while a server holds the database (see `cli::remote`). Their format is
//! the store's and may change with it; other programs should use the
//! documents of `/api/v1/runs`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use flow_host::store::{NodeHistory, RunRecord};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use super::problem::{Path, Problem, Query};
use super::state::App;

/// The most runs one request returns.
pub const PAGE: usize = 500;

/// Which run headers to read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Runs older than this one (default: from the newest).
    pub before: Option<String>,
    /// Only runs whose ids start with this (upper case).
    pub prefix: Option<String>,
}

/// Run headers, newest first, up to 500.
#[utoipa::path(
    get, path = "/api/v1/records/runs", tag = "records", params(Page),
    responses((status = 200, description = "Stored run records", body = Vec<Object>))
)]
pub async fn runs(
    State(app): State<Arc<App>>,
    Query(page): Query<Page>,
) -> Result<Json<Vec<RunRecord>>, Problem> {
    let store = app.store.clone();
    let runs = tokio::task::spawn_blocking(move || {
        let prefix = page.prefix.unwrap_or_default();
        store
            .runs_before(page.before.as_deref())
            .filter(|run| {
                run.as_ref()
                    .map_or(true, |run| run.run_id.starts_with(&prefix))
            })
            .take(PAGE)
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(Problem::internal)??;
    Ok(Json(runs))
}

/// A run's header and the workflow text it started with.
#[derive(Debug, Serialize)]
pub struct Run {
    run: RunRecord,
    definition: Option<String>,
}

/// A run's stored header and workflow text.
#[utoipa::path(
    get, path = "/api/v1/records/runs/{id}", tag = "records",
    params(("id" = String, Path, description = "The run's whole id")),
    responses(
        (status = 200, description = "`run` and `definition`", body = Object),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn run(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<Run>, Problem> {
    let store = app.store.clone();
    let found = tokio::task::spawn_blocking(move || {
        let mut run = store.run(&id)?;
        if let Some(run) = &mut run
            && run.sinks.is_none()
        {
            run.sinks = store.sinks(&id)?;
        }
        let definition = store.definition(&id)?;
        Ok::<_, flow_host::store::StoreError>(run.map(|run| Run { run, definition }).ok_or(id))
    })
    .await
    .map_err(Problem::internal)??;
    found
        .map(Json)
        .map_err(|id| Problem::not_found(format!("no run {id}")))
}

/// A run's node records with their attempts.
#[utoipa::path(
    get, path = "/api/v1/records/runs/{id}/history", tag = "records",
    params(("id" = String, Path, description = "The run's whole id")),
    responses((status = 200, description = "Stored node records with their attempts", body = Vec<Object>))
)]
pub async fn history(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<Vec<NodeHistory>>, Problem> {
    let store = app.store.clone();
    let history = tokio::task::spawn_blocking(move || store.history(&id))
        .await
        .map_err(Problem::internal)??;
    Ok(Json(history))
}
