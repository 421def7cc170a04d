//! `flow worker`: runs attempts of any run on the shared store.

mod metrics;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use flow_host::WorkflowEngine;
use flow_host::exec::{ExecError, Worker, stored_workflow};
use flow_host::observe::MetricsBridge;
use flow_host::runtime::PluginRegistry;
use flow_host::store::{PostgresStore, StoreError};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use super::{Context, Exit, SecretsArg, UsageError, out};

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// A plugins directory; give it several times (or separate directories
    /// with `:`) for a search path where the first match wins. The worker
    /// runs the attempts whose plugin it has, byte for byte
    #[arg(
        long = "plugins",
        env = "FLOW_PLUGINS",
        value_name = "DIR",
        value_delimiter = ':',
        required = true
    )]
    plugins: Vec<PathBuf>,

    /// Attempts run at once at most [default: the number of CPUs]
    #[arg(long, value_name = "N")]
    max_concurrency: Option<usize>,

    /// Claim up to --max-concurrency more attempts than run while the
    /// attempts take less than this on average, so the next ones are at
    /// hand when a slot frees; 0s never claims ahead [default: 100ms]
    #[arg(long, value_name = "DURATION", value_parser = flow_host::options::parse_duration)]
    claim_ahead_below: Option<Duration>,

    #[command(flatten)]
    secrets: SecretsArg,

    /// Serve the worker's metrics (claims, reports, heartbeats, lost
    /// leases, attempts, and the runs it took up) in the Prometheus text
    /// format at http://ADDR/metrics; anything but loopback needs
    /// --token-file
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,

    /// With --metrics-listen: accept only requests with a bearer token
    /// whose hash this file lists (make one with `flow token --token-file
    /// FILE`)
    #[arg(long, value_name = "FILE", requires = "metrics_listen")]
    token_file: Option<PathBuf>,
}

pub fn run(context: &Context, args: WorkerArgs) -> anyhow::Result<Exit> {
    let Some(url) = &context.store else {
        return Err(UsageError(
            "flow worker serves runs kept in PostgreSQL: pass --store postgres://USER@HOST/DATABASE \
             (or set FLOW_STORE)"
                .into(),
        )
        .into());
    };
    let capacity = match args.max_concurrency {
        Some(0) => return Err(UsageError("--max-concurrency must be at least 1".into()).into()),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let secrets = args.secrets.load()?;
    let store = Arc::new(context.open_postgres(url)?);
    let (runtime, cache) = context.runtime(capacity)?;
    super::tokio()?.block_on(async move {
        let metrics_at = match args.metrics_listen {
            Some(listen) => Some(metrics::serve(listen, args.token_file.as_deref()).await?),
            None => None,
        };
        if let Some(address) = metrics_at {
            out::eprint(format_args!("metrics at http://{address}/metrics"));
        }
        let plugins = Arc::new(runtime.load_plugins(&args.plugins, &cache).await?);
        let mut engine = WorkflowEngine::new(runtime.clone(), store.clone())
            .with_secrets(secrets.clone())
            .with_dispatcher(Arc::new(store.queue()));
        if metrics_at.is_some() {
            engine = engine.with_metrics(Arc::new(MetricsBridge::global()));
        }
        let mut worker = Worker::new(
            store.owner(),
            store.queue(),
            store.clone(),
            runtime,
            plugins.clone(),
            secrets,
            capacity,
        );
        if let Some(below) = args.claim_ahead_below {
            worker = worker.with_claim_ahead_below(below);
        }
        let worker = Arc::new(worker);
        let serves = worker.serves();
        if serves.is_empty() {
            return Err(UsageError(format!(
                "no plugins in {}: a worker runs the attempts of the plugins it has",
                args.plugins
                    .iter()
                    .map(|dir| dir.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into());
        }
        worker.announce().await?;
        // The line scripts and tests wait for.
        println!("flow worker {}: ready", store.owner());
        if !context.quiet {
            let plugins: Vec<String> = serves
                .iter()
                .map(|(name, digest)| format!("{name} ({})", &digest[..digest.len().min(12)]))
                .collect();
            out::eprint(format_args!(
                "database {}; at most {capacity} attempts at once; plugins: {}",
                store.address(),
                plugins.join(", ")
            ));
        }
        let stop = CancellationToken::new();
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let stopping = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            out::eprint(
                "flow worker: stopping: no new attempts; those running finish first \
                 (again to stop at once; their claims then lapse and other workers run them)",
            );
            stopping.cancel();
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            std::process::exit(130);
        });
        tokio::spawn(adopt(engine, store.clone(), plugins, stop.clone()));
        worker.clone().run(stop).await;
        let stats = worker.stats();
        if !context.quiet {
            out::eprint(format_args!(
                "flow worker: stopped; {} attempts claimed, {} reported, {} refused (lease lost), \
                 {} stopped, {} given back unstarted",
                stats.claimed, stats.completed, stats.refused, stats.abandoned, stats.given_back
            ));
        }
        anyhow::Ok(Exit::Success)
    })
}

/// Takes up the runs that wait for a process to run them: queued ones
/// (`flow run --submit`) and those whose process stopped. The store lets
/// one process take a run: the others are refused and leave it. A run this
/// worker cannot run (a plugin it lacks or has in another version) is left
/// to others, with one warning.
async fn adopt(
    engine: WorkflowEngine,
    store: Arc<PostgresStore>,
    plugins: Arc<PluginRegistry>,
    stop: CancellationToken,
) {
    let running: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut refused: HashSet<String> = HashSet::new();
    let every = Duration::from_secs(1).min(store.lease() / 3);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let reader = store.clone();
        let candidates = match tokio::task::spawn_blocking(move || reader.adoptable_runs(16)).await
        {
            Ok(Ok(candidates)) => candidates,
            Ok(Err(error)) => {
                tracing::warn!(target: "flow::worker", "cannot look for runs to take up: {error}");
                continue;
            }
            Err(_) => continue,
        };
        for run_id in candidates {
            if refused.contains(&run_id)
                || running
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains(&run_id)
            {
                continue;
            }
            let (engine, reader, plugins, id) = (
                engine.clone(),
                store.clone(),
                plugins.clone(),
                run_id.clone(),
            );
            // Reads the run's state and records the takeover: blocking.
            let taken = tokio::task::spawn_blocking(move || {
                let spec = stored_workflow(&*reader, &id).map_err(|why| why.to_string())?;
                engine
                    .resume(Arc::new(spec), plugins, &id, false)
                    .map_err(|error| match error {
                        ExecError::StillRunning { .. }
                        | ExecError::Store(StoreError::Held { .. }) => String::new(),
                        error => error.to_string(),
                    })
            })
            .await;
            match taken {
                Ok(Ok(handle)) => {
                    tracing::info!(target: "flow::worker", run = %run_id, "took up run {run_id}");
                    ::metrics::counter!("flow_worker_runs_taken_up_total").increment(1);
                    let watch = watch_cancel(store.clone(), run_id.clone(), handle.canceller());
                    running
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(run_id.clone());
                    let running = running.clone();
                    tokio::spawn(async move {
                        match handle.wait().await {
                            Ok(report) => tracing::info!(
                                target: "flow::worker",
                                run = %run_id,
                                "run {run_id} {}",
                                report.status
                            ),
                            Err(error) => tracing::warn!(
                                target: "flow::worker",
                                run = %run_id,
                                "run {run_id} stopped: {error}"
                            ),
                        }
                        watch.abort();
                        running
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&run_id);
                    });
                }
                // Another process took it first.
                Ok(Err(why)) if why.is_empty() => {}
                Ok(Err(why)) => {
                    tracing::warn!(
                        target: "flow::worker",
                        run = %run_id,
                        "cannot take up run {run_id}: {why}; leaving it to other workers"
                    );
                    refused.insert(run_id);
                }
                Err(_) => {}
            }
        }
    }
}

/// Cancels run `run_id` here once a cancellation was asked for on any host
/// (`flow cancel`); abort the task when the run ends.
pub fn watch_cancel(
    store: Arc<PostgresStore>,
    run_id: String,
    canceller: flow_host::exec::Canceller,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if store.cancel_requested(&run_id) {
                tracing::info!(target: "flow::worker", run = %run_id, "cancelling run {run_id}, as asked");
                canceller.cancel();
                return;
            }
        }
    })
}
