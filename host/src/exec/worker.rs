//! A worker: claims attempts from the shared store's task queue, runs them
//! with its own plugins under each node's limits and grants, and reports
//! them (see [`crate::store::TaskQueue`]).
//!
//! A worker needs no part of a run but the attempt: the process running
//! the run computed its input. It reads the run's workflow (stored with
//! the run) once per run for the node's limits and grants; secrets come
//! from the worker's own host, and their values are masked in what it
//! reports.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::WireReport;
use crate::runtime::{
    Access, AttemptError, AttemptReport, Invocation, PluginRegistry, Redactor, Runtime, Secrets,
};
use crate::spec::WorkflowSpec;
use crate::store::{Claimed, TaskQueue, WorkflowStore};

/// What a worker did, for its logs and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WorkerStats {
    /// Attempts claimed.
    pub claimed: u64,
    /// Attempts reported.
    pub completed: u64,
    /// Reports refused because the claim was no longer this worker's.
    pub refused: u64,
    /// Attempts stopped because their lease was lost or they were
    /// cancelled.
    pub abandoned: u64,
}

/// Claims and runs attempts until stopped.
pub struct Worker {
    id: String,
    queue: Arc<TaskQueue>,
    store: Arc<dyn WorkflowStore>,
    runtime: Arc<Runtime>,
    plugins: Arc<PluginRegistry>,
    secrets: Arc<Secrets>,
    redactor: Redactor,
    capacity: usize,
    specs: Mutex<HashMap<String, Arc<WorkflowSpec>>>,
    stats: Mutex<WorkerStats>,
}

impl Worker {
    /// A worker named `id` that runs at most `capacity` attempts at once
    /// with `plugins` on `runtime`, reading runs from `store`.
    pub fn new(
        id: impl Into<String>,
        queue: Arc<TaskQueue>,
        store: Arc<dyn WorkflowStore>,
        runtime: Arc<Runtime>,
        plugins: Arc<PluginRegistry>,
        secrets: Secrets,
        capacity: usize,
    ) -> Self {
        Self {
            id: id.into(),
            queue,
            store,
            runtime,
            plugins,
            redactor: secrets.redactor(),
            secrets: Arc::new(secrets),
            capacity: capacity.max(1),
            specs: Mutex::new(HashMap::new()),
            stats: Mutex::new(WorkerStats::default()),
        }
    }

    /// The plugins this worker serves: name and SHA-256 of each
    /// WebAssembly plugin (native actions run where their run runs).
    pub fn serves(&self) -> Vec<(String, String)> {
        self.plugins
            .iter()
            .filter(|plugin| !plugin.is_native())
            .map(|plugin| (plugin.info.name.clone(), plugin.digest.clone()))
            .collect()
    }

    /// Records in the store that this worker lives and which plugins it
    /// serves (`flow status` tells what no live worker can run); the
    /// worker renews it while it runs.
    pub async fn announce(&self) -> Result<(), crate::store::StoreError> {
        self.queue.announce(&self.id, Some(&self.serves())).await
    }

    /// What the worker did so far.
    pub fn stats(&self) -> WorkerStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count(&self, change: impl FnOnce(&mut WorkerStats)) {
        change(&mut self.stats.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Claims and runs attempts until `stop` is cancelled, then lets those
    /// it runs finish.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let serves = self.serves();
        if let Err(error) = self.queue.announce(&self.id, Some(&serves)).await {
            tracing::warn!(target: "flow::worker", "cannot announce this worker: {error}");
        }
        let held: Arc<Mutex<HashMap<i64, CancellationToken>>> = Arc::default();
        let renewing = CancellationToken::new();
        tokio::spawn(renew(self.clone(), held.clone(), renewing.clone()));
        let mut running = JoinSet::new();
        let mut backoff = Duration::from_millis(100);
        while !stop.is_cancelled() {
            let free = self.capacity.saturating_sub(running.len());
            let mut claimed_any = false;
            if free > 0 && !serves.is_empty() {
                // A claim waits out an unreachable database; a stop does not.
                let claimed = tokio::select! {
                    () = stop.cancelled() => break,
                    claimed = self.queue.claim(&self.id, &serves, None, free) => claimed,
                };
                match claimed {
                    Ok(claims) => {
                        backoff = Duration::from_millis(100);
                        claimed_any = !claims.is_empty();
                        for claim in claims {
                            self.count(|s| s.claimed += 1);
                            metrics::counter!("flow_worker_claims_total").increment(1);
                            let token = CancellationToken::new();
                            held.lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .insert(claim.id, token.clone());
                            let (this, held) = (self.clone(), held.clone());
                            running.spawn(async move {
                                this.execute(&claim, token).await;
                                held.lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .remove(&claim.id);
                            });
                        }
                    }
                    Err(error) => {
                        tracing::warn!(target: "flow::worker", "cannot claim attempts: {error}");
                        tokio::select! {
                            () = stop.cancelled() => break,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                }
            }
            if claimed_any && running.len() < self.capacity {
                continue;
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = self.queue.wait_for_work(), if running.len() < self.capacity => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
            // Claims for every slot freed meanwhile go in one statement.
            while running.try_join_next().is_some() {}
        }
        while running.join_next().await.is_some() {}
        renewing.cancel();
        // Best effort: the announcement lapses by itself.
        let retired =
            tokio::time::timeout(Duration::from_secs(5), self.queue.announce(&self.id, None));
        if let Ok(Err(error)) = retired.await {
            tracing::debug!(target: "flow::worker", "cannot retire this worker: {error}");
        }
    }

    /// Runs one claimed attempt and reports it, unless the claim was lost
    /// meanwhile.
    async fn execute(&self, claim: &Claimed, lost: CancellationToken) {
        let attempt = &claim.attempt;
        tracing::debug!(
            target: "flow::worker",
            run = %attempt.run_id,
            node = %attempt.node_id,
            attempt = attempt.attempt,
            "claimed"
        );
        let report = tokio::select! {
            biased;
            () = lost.cancelled() => None,
            report = self.attempt(claim) => Some(report),
        };
        let Some(report) = report else {
            self.count(|s| s.abandoned += 1);
            metrics::counter!("flow_worker_leases_lost_total").increment(1);
            tracing::warn!(
                target: "flow::worker",
                run = %attempt.run_id,
                node = %attempt.node_id,
                attempt = attempt.attempt,
                "stopped: the claim on this attempt was lost or cancelled"
            );
            return;
        };
        match self.queue.complete(claim, WireReport::from(report)).await {
            Ok(true) => self.count(|s| s.completed += 1),
            Ok(false) => {
                self.count(|s| s.refused += 1);
                metrics::counter!("flow_worker_completions_refused_total").increment(1);
                tracing::warn!(
                    target: "flow::worker",
                    run = %attempt.run_id,
                    node = %attempt.node_id,
                    attempt = attempt.attempt,
                    "report refused: the claim is no longer this worker's (its lease lapsed)"
                );
            }
            Err(error) => tracing::warn!(
                target: "flow::worker",
                run = %attempt.run_id,
                node = %attempt.node_id,
                "cannot report the attempt: {error}"
            ),
        }
    }

    /// The attempt's report, with secret values masked.
    async fn attempt(&self, claim: &Claimed) -> AttemptReport {
        let attempt = &claim.attempt;
        let spec = match self.spec(&attempt.run_id).await {
            Ok(spec) => spec,
            Err(message) => return host_failure(format!("worker {}: {message}", self.id)),
        };
        let name = attempt.node_id.split('[').next().unwrap_or_default();
        let Some(node) = spec.node_index(name).map(|index| &spec.nodes[index]) else {
            return host_failure(format!(
                "worker {}: the run's workflow has no node `{name}`",
                self.id
            ));
        };
        let Some(plugin) = self
            .plugins
            .get(&attempt.action)
            .filter(|plugin| plugin.digest == attempt.plugin_sha256)
        else {
            return host_failure(format!(
                "worker {} has no plugin `{}` with SHA-256 {}",
                self.id, attempt.action, attempt.plugin_sha256
            ));
        };
        let call = Invocation {
            workflow_id: &spec.id,
            run_id: &attempt.run_id,
            node_id: &attempt.node_id,
            attempt: attempt.attempt,
            input: &attempt.input,
            access: Access {
                grants: &node.options.grants,
                base: spec.base_dir(),
                secrets: &self.secrets,
            },
        };
        let mut report = self.runtime.run(plugin, call, &node.options.limits).await;
        self.mask(&mut report);
        report
    }

    /// Replaces secret values in what the report carries to the database.
    fn mask(&self, report: &mut AttemptReport) {
        let redactor = &self.redactor;
        if redactor.is_empty() {
            return;
        }
        for record in &mut report.logs {
            redactor.redact_in_place(&mut record.message);
        }
        redactor.redact_in_place(&mut report.stdout);
        redactor.redact_in_place(&mut report.stderr);
        match &mut report.result {
            Ok(output) => redactor.redact_in_place(output),
            Err(error) => error.redact(redactor),
        }
    }

    /// The run's workflow as stored with it, its options applied; read
    /// once per run.
    async fn spec(&self, run_id: &str) -> Result<Arc<WorkflowSpec>, String> {
        if let Some(spec) = self
            .specs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(run_id)
        {
            return Ok(spec.clone());
        }
        let store = self.store.clone();
        let id = run_id.to_string();
        let spec = tokio::task::spawn_blocking(move || stored_workflow(&*store, &id))
            .await
            .map_err(|error| error.to_string())??;
        let spec = Arc::new(spec);
        let mut specs = self.specs.lock().unwrap_or_else(|e| e.into_inner());
        // Runs come and go; a small map is enough.
        if specs.len() >= 64 {
            specs.clear();
        }
        specs.insert(run_id.to_string(), spec.clone());
        Ok(spec)
    }
}

/// The workflow of a run as stored with it, with the run's options
/// applied: what a host that did not start the run runs it by.
pub fn stored_workflow(store: &dyn WorkflowStore, run_id: &str) -> Result<WorkflowSpec, String> {
    let run = store
        .run(run_id)
        .map_err(|error| error.to_string())?
        .ok_or_else(|| format!("run {run_id} is not in the store"))?;
    let text = store
        .definition(run_id)
        .map_err(|error| error.to_string())?
        .ok_or_else(|| format!("run {run_id} has no stored workflow"))?;
    let mut spec = WorkflowSpec::parse(&run.workflow_path, text)
        .map_err(|error| format!("cannot read the workflow of run {run_id}: {error}"))?;
    spec.apply_overrides(&run.overrides);
    Ok(spec)
}

fn host_failure(message: String) -> AttemptReport {
    AttemptReport::new(Err(AttemptError::Host { message }))
}

/// Renews the leases of the claims held, every third of the lease; stops
/// the attempts whose claims are gone.
async fn renew(
    worker: Arc<Worker>,
    held: Arc<Mutex<HashMap<i64, CancellationToken>>>,
    stop: CancellationToken,
) {
    let mut ticks = tokio::time::interval(worker.queue.lease() / 3);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(error) = worker
            .queue
            .announce(&worker.id, Some(&worker.serves()))
            .await
        {
            tracing::warn!(target: "flow::worker", "cannot announce this worker: {error}");
        }
        // Claims made while the renewal runs are not in its answer: only
        // those held before it are judged by it.
        let before: Vec<(i64, CancellationToken)> = held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(id, token)| (*id, token.clone()))
            .collect();
        if before.is_empty() {
            continue;
        }
        match worker.queue.renew(&worker.id).await {
            Ok(still) => {
                let still: std::collections::HashSet<i64> = still.into_iter().collect();
                for (id, token) in before {
                    if !still.contains(&id) {
                        token.cancel();
                    }
                }
            }
            Err(error) => {
                tracing::warn!(target: "flow::worker", "cannot renew leases: {error}");
            }
        }
    }
}
