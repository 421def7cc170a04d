//! `flow worker --metrics-listen ADDR`: the worker's metrics for a
//! Prometheus server to scrape, at `http://ADDR/metrics`.
//!
//! The worker's own series (claims, reports, heartbeats, lost leases,
//! attempts and their durations) and the engine's for the runs it took up
//! go to one recorder, installed for the whole process. Anything but
//! loopback needs `--token-file`, as `flow serve` does.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use flow_host::observe::DURATION_BUCKETS;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::cli::UsageError;
use crate::cli::serve::auth::{TokenFile, Tokens};

/// What the endpoint serves, and to whom.
struct Endpoint {
    handle: PrometheusHandle,
    tokens: Option<TokenFile>,
}

/// Installs the process's metrics recorder and starts serving it on
/// `listen`; returns the address it listens on (the port chosen when `0`
/// was asked for).
pub async fn serve(listen: SocketAddr, token_file: Option<&Path>) -> anyhow::Result<SocketAddr> {
    let tokens = token_file.map(TokenFile::open).transpose()?;
    if tokens.is_none() && !listen.ip().is_loopback() {
        return Err(UsageError(format!(
            "refusing to serve metrics on {listen} without --token-file: listen on 127.0.0.1, \
             or make a token with `flow token --token-file FILE` and pass --token-file FILE"
        ))
        .into());
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|error| {
            UsageError(format!(
                "cannot serve metrics on {listen}: {error}; choose another --metrics-listen"
            ))
        })?;
    let address = listener.local_addr()?;
    let handle = PrometheusBuilder::new()
        .set_buckets(DURATION_BUCKETS)?
        .install_recorder()?;
    let endpoint = Arc::new(Endpoint { handle, tokens });
    let app = Router::new()
        .route("/metrics", get(render))
        .with_state(endpoint);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!(target: "flow::worker", "the metrics endpoint stopped: {error}");
        }
    });
    Ok(address)
}

/// `GET /metrics`: every series, in the Prometheus text format.
async fn render(State(endpoint): State<Arc<Endpoint>>, request: Request) -> Response {
    if let Some(tokens) = &endpoint.tokens
        && Tokens::presented(request.headers()).is_none_or(|token| !tokens.accepts(token))
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "this endpoint needs a token it accepts: send `Authorization: Bearer <token>`\n",
        )
            .into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        endpoint.handle.render(),
    )
        .into_response()
}
