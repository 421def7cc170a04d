//! `flow serve`: an HTTP API over the run database, on one engine shared
//! by every run it starts.
//!
//! - `state`: what every request shares (store, engine, registries, runs);
//! - `workflows`, `runs`, `system`: the handlers, by resource;
//! - `model`, `problem`: the documents they exchange, and errors as RFC
//!   9457 problems;
//! - `auth`: bearer tokens, stored hashed; `origin`: without tokens, what
//!   web pages may not ask; `events`: the SSE stream;
//! - `catalog`: the workflow files; `idempotency`: keys of run starts;
//! - `openapi`: the OpenAPI document, generated from the handlers;
//! - `listen`: connections, bounded in number and in time.

pub mod auth;
mod catalog;
mod cron;
mod dashboard;
mod documents;
mod events;
mod idempotency;
mod listen;
pub mod model;
mod node_cache;
mod nodes;
pub mod openapi;
mod origin;
mod problem;
mod records;
pub use records::PAGE as RECORDS_PAGE;
mod runs;
mod state;
mod system;
mod workflows;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Args;
use flow_host::WorkflowEngine;
use flow_host::exec::AttemptSlots;
use flow_host::observe::PrometheusMetrics;
use tokio::signal::unix::{SignalKind, signal};

use super::{Context, Exit, UsageError, out};
use problem::Problem;
use state::App;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on; anything but loopback needs --token-file
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// The directory of workflow files the API offers; those with `cron`
    /// run on their schedules
    #[arg(long, env = "FLOW_WORKFLOWS", value_name = "DIR")]
    workflows: Option<PathBuf>,

    #[command(flatten)]
    plugins: super::run::PluginsArg,

    #[command(flatten)]
    secrets: super::SecretsArg,

    /// Accept only requests with a bearer token whose SHA-256 hash this
    /// file lists (make one with `flow token --token-file FILE`)
    #[arg(long, env = "FLOW_TOKEN_FILE", value_name = "FILE")]
    token_file: Option<PathBuf>,

    /// At most this many attempts run at once across every run, shared
    /// fairly between runs [default: twice the CPUs]
    #[arg(long, value_name = "N")]
    max_attempts: Option<usize>,

    /// On SIGTERM or Ctrl-C, how long requests in flight and runs may go
    /// on before the server stops waiting for the requests and cancels the
    /// runs (they can be resumed later)
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = flow_host::options::parse_duration)]
    shutdown_grace: Duration,

    /// Connections served at once; more wait until one closes
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..))]
    max_connections: u16,

    /// How long a client may take to send a request's headers, and an
    /// idle connection stays open
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = flow_host::options::parse_positive_duration)]
    header_timeout: Duration,

    /// Print the API's OpenAPI document and exit
    #[arg(long)]
    print_openapi: bool,
}

/// `flow token`: makes a token for `flow serve --token-file`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The token file to add the token's hash to (created if missing)
    #[arg(long, value_name = "FILE")]
    token_file: PathBuf,

    /// A name for the token, kept beside its hash
    #[arg(long, default_value = "")]
    name: String,
}

/// Makes a token, prints it once and keeps only its hash.
pub fn token(args: TokenArgs) -> anyhow::Result<Exit> {
    if args.name.contains(['\n', '\r']) {
        return Err(UsageError("--name must be one line".into()).into());
    }
    let token = auth::add_token(&args.token_file, &args.name)?;
    let mut out = out::stdout();
    writeln!(out, "{token}")?;
    out.flush()?;
    out::eprint(format_args!(
        "the token above is shown once; {} keeps only its hash",
        args.token_file.display()
    ));
    Ok(Exit::Success)
}

pub fn run(context: &Context, args: ServeArgs) -> anyhow::Result<Exit> {
    if args.print_openapi {
        let mut out = out::stdout();
        out.write_all(openapi::document().as_bytes())?;
        out.flush()?;
        return Ok(Exit::Success);
    }
    let tokens = match &args.token_file {
        Some(file) => Some(auth::TokenFile::open(file)?),
        None => None,
    };
    if tokens.is_none() && !args.listen.ip().is_loopback() {
        return Err(UsageError(format!(
            "refusing to listen on {} without --token-file: anyone who can reach it could run workflows; \
             listen on 127.0.0.1, or make a token with `flow token --token-file FILE` and pass --token-file FILE",
            args.listen
        ))
        .into());
    }
    if let Some(dir) = &args.workflows
        && !dir.is_dir()
    {
        return Err(UsageError(format!("--workflows {}: not a directory", dir.display())).into());
    }
    let max_attempts = args
        .max_attempts
        .unwrap_or_else(|| 2 * std::thread::available_parallelism().map_or(1, |n| n.get()));
    if max_attempts == 0 {
        return Err(UsageError("--max-attempts must be at least 1".into()).into());
    }
    let secrets = args.secrets.load()?;
    let store = context.open_store()?;
    // Where commands on this machine find the server of an embedded
    // database; a shared store needs none (every host opens it).
    let beside = match &context.store {
        None => Some(address_file(&context.db_path()?)),
        Some(_) => None,
    };
    let (runtime, cache) = context.runtime(max_attempts)?;
    let tokio = super::tokio()?;
    tokio.block_on(async move {
        let events = events::Broadcaster::new(4096);
        let metrics = Arc::new(PrometheusMetrics::new());
        let engine = WorkflowEngine::new(runtime.clone(), store.clone())
            .with_observer(Arc::new(events.clone()))
            .with_metrics(metrics.clone())
            .with_secrets(secrets.clone())
            .with_attempt_slots(AttemptSlots::new(max_attempts));
        let app = Arc::new(App::new(
            store.clone(),
            engine,
            runtime,
            cache,
            secrets,
            args.plugins.dirs.clone(),
            catalog::Catalog::new(args.workflows.clone()),
            events,
            metrics,
            tokens,
        ));
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let address = listener.local_addr()?;
        let url = format!("http://{address}");
        if let Some(beside) = &beside {
            std::fs::write(
                beside,
                serde_json::json!({
                    "url": url,
                    "pid": std::process::id(),
                    "token": app.tokens.is_some(),
                })
                .to_string(),
            )
            .with_context(|| {
                format!("cannot record the server's address in {}", beside.display())
            })?;
        }
        let _remove = beside.map(RemoveOnDrop);
        // The line tests and scripts wait for.
        println!("flow serve: listening on {url}");
        if !context.quiet {
            out::eprint(format_args!(
                "database {}; workflows {}; at most {max_attempts} attempts at once{}",
                context.db_name(),
                args.workflows
                    .as_ref()
                    .map_or("(none: pass --workflows DIR)".into(), |d| d.display().to_string()),
                match &app.tokens {
                    Some(tokens) => format!("; {} token(s) accepted", tokens.len()),
                    None => String::new(),
                }
            ));
        }
        for (name, spec) in app.catalog.scheduled() {
            let Some(schedule) = &spec.cron else { continue };
            let next = cron::next_fire(&app, &name, schedule);
            out::eprint(format_args!(
                "schedule {name}: {} ({}), next at {}",
                schedule.expression,
                schedule.timezone,
                next.map_or("never".into(), |next| schedule.local(next))
            ));
        }
        tokio::spawn(cron::run(app.clone()));
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let shutdown = app.shutdown.clone();
        let stopping = app.clone();
        let bounds = listen::Bounds {
            connections: args.max_connections.into(),
            header_timeout: args.header_timeout,
            grace: args.shutdown_grace,
        };
        let began = listen::serve(listener, router(app.clone()), bounds, async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            stopping.stop_accepting();
            shutdown.cancel();
        })
        .await;
        // The grace counts from the signal, requests' time included.
        let left = args.shutdown_grace.saturating_sub(began.elapsed());
        let runs = app.active_runs();
        if runs > 0 {
            out::eprint(format_args!(
                "stopping: {runs} run(s) going on may finish within {}; then they are cancelled (resume them later)",
                humantime::format_duration(Duration::from_millis(left.as_millis() as u64))
            ));
        }
        let mut again = signal(SignalKind::interrupt())?;
        tokio::select! {
            () = app.drain(left) => {}
            _ = again.recv() => {
                app.cancel_all();
                app.tasks.wait().await;
            }
        }
        store.flush()?;
        out::eprint("flow serve: stopped; every run is recorded");
        anyhow::Ok(Exit::Success)
    })
}

/// Where a running server records its address: beside the database.
pub fn address_file(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".server.json");
    db.with_file_name(name)
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Every route of the server.
fn router(app: Arc<App>) -> Router {
    let api = Router::new()
        .route("/api/v1/workflows", get(workflows::list))
        .route("/api/v1/workflows/{name}", get(workflows::get))
        .route("/api/v1/workflows/{name}/runs", post(workflows::start))
        .route("/api/v1/runs", get(runs::list))
        .route("/api/v1/runs/{id}", get(runs::get).delete(runs::delete))
        .route("/api/v1/runs/{id}/nodes", get(nodes::list))
        .route("/api/v1/runs/{id}/nodes/{node}", get(nodes::get))
        .route("/api/v1/runs/{id}/nodes/{node}/logs", get(runs::logs))
        .route("/api/v1/runs/{id}/cancel", post(runs::cancel))
        .route("/api/v1/runs/{id}/resume", post(runs::resume))
        .route("/api/v1/runs/{id}/retry", post(runs::retry))
        .route("/api/v1/events", get(system::events))
        .route("/api/v1/records/runs", get(records::runs))
        .route("/api/v1/records/runs/{id}", get(records::run))
        .route("/api/v1/records/runs/{id}/history", get(records::history))
        .route("/api/v1/openapi.json", get(system::openapi))
        .route("/metrics", get(system::metrics))
        .route_layer(middleware::from_fn_with_state(app.clone(), authorize));
    Router::new()
        .route("/healthz", get(system::health))
        .merge(dashboard::routes())
        .merge(api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(app)
}

/// Lets a request through when it carries one of the server's tokens,
/// or, when the server has none, when no web page of another site could
/// have sent it.
async fn authorize(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let Some(tokens) = &app.tokens else {
        return match origin::refused(request.headers()) {
            None => next.run(request).await,
            Some(why) => Problem::new(StatusCode::FORBIDDEN, why).into_response(),
        };
    };
    match auth::Tokens::presented(request.headers()) {
        Some(token) if tokens.accepts(token) => next.run(request).await,
        Some(_) => Problem::new(
            StatusCode::UNAUTHORIZED,
            "the bearer token is not one this server accepts",
        )
        .into_response(),
        None => Problem::new(
            StatusCode::UNAUTHORIZED,
            "this server needs a token: send `Authorization: Bearer <token>`",
        )
        .into_response(),
    }
}

async fn not_found(request: Request) -> Problem {
    Problem::not_found(format!(
        "no such path: {}; the API is under /api/v1 (GET /api/v1/openapi.json describes it)",
        request.uri().path()
    ))
}

async fn method_not_allowed(request: Request) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
}
