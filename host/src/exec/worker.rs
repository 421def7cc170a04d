//! A worker: claims attempts from the shared store's task queue, runs them
//! with its own plugins under each node's limits and grants, and reports
//! them (see [`crate::store::TaskQueue`]).
//!
//! A worker needs no part of a run but the attempt: the process running
//! the run computed its input. It reads the run's workflow (stored with
//! the run) once per run for the node's limits and grants; secrets come
//! from the worker's own host, and their values are masked in what it
//! reports.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
    /// Attempts claimed ahead and given back unstarted when the worker
    /// stopped.
    pub given_back: u64,
}

/// By default a worker claims ahead of its free slots only while its
/// attempts take less than this on average (see
/// [`Worker::with_claim_ahead_below`]).
pub const CLAIM_AHEAD_BELOW: Duration = Duration::from_millis(100);

/// The durations of a worker's recent attempts.
#[derive(Debug, Default)]
struct Recent {
    finished: u64,
    average: Duration,
}

impl Recent {
    /// Counts a finished attempt's duration in a moving average over
    /// roughly the last 16 attempts.
    fn add(&mut self, took: Duration) {
        self.finished += 1;
        self.average = if self.finished == 1 {
            took
        } else {
            self.average.mul_f64(15.0 / 16.0) + took.mul_f64(1.0 / 16.0)
        };
    }

    /// Whether a worker of `capacity` slots has seen enough attempts, and
    /// short enough, to claim ahead.
    fn short(&self, capacity: usize, below: Duration) -> bool {
        self.finished >= capacity as u64 && self.average < below
    }
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
    claim_ahead_below: Duration,
    specs: Mutex<HashMap<String, Arc<WorkflowSpec>>>,
    stats: Mutex<WorkerStats>,
    recent: Mutex<Recent>,
    /// Reports on their way.
    reporting: TaskTracker,
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
        describe();
        Self {
            id: id.into(),
            queue,
            store,
            runtime,
            plugins,
            redactor: secrets.redactor(),
            secrets: Arc::new(secrets),
            capacity: capacity.max(1),
            claim_ahead_below: CLAIM_AHEAD_BELOW,
            specs: Mutex::new(HashMap::new()),
            stats: Mutex::new(WorkerStats::default()),
            recent: Mutex::new(Recent::default()),
            reporting: TaskTracker::new(),
        }
    }

    /// Claims ahead of free slots only while attempts take less than
    /// `below` on average ([`CLAIM_AHEAD_BELOW`] unless set); zero never
    /// claims ahead.
    pub fn with_claim_ahead_below(mut self, below: Duration) -> Self {
        self.claim_ahead_below = below;
        self
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
        let announced = self.queue.announce(&self.id, Some(&self.serves())).await;
        let outcome = if announced.is_ok() {
            "renewed"
        } else {
            "failed"
        };
        metrics::counter!("flow_worker_heartbeats_total", "outcome" => outcome).increment(1);
        announced
    }

    /// What the worker did so far.
    pub fn stats(&self) -> WorkerStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count(&self, change: impl FnOnce(&mut WorkerStats)) {
        change(&mut self.stats.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Claims and runs attempts until `stop` is cancelled, then lets those
    /// it runs finish and gives back those it claimed ahead.
    ///
    /// While its attempts are short (see [`Worker::with_claim_ahead_below`]) a worker
    /// claims up to its capacity more than it runs, so that the next
    /// attempts are at hand when slots free up and claims go in batches;
    /// with long attempts it claims only for free slots, so that no
    /// attempt waits on one worker while another is idle.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let serves = self.serves();
        let held: Arc<Mutex<HashMap<i64, CancellationToken>>> = Arc::default();
        let renewing = CancellationToken::new();
        tokio::spawn(renew(self.clone(), held.clone(), renewing.clone()));
        let mut running = JoinSet::new();
        let mut ahead: VecDeque<(Claimed, CancellationToken)> = VecDeque::new();
        let mut backoff = Duration::from_millis(100);
        let mut drained = false;
        while !stop.is_cancelled() {
            while running.len() < self.capacity
                && let Some((claim, token)) = ahead.pop_front()
            {
                self.start(&mut running, &held, claim, token);
            }
            let extra = if self.short_attempts() {
                self.capacity
            } else {
                0
            };
            let wanted = (self.capacity + extra).saturating_sub(running.len() + ahead.len());
            // Claims once half of what is claimed ahead is used up, so
            // that they go in batches.
            let due = wanted > 0 && (running.len() < self.capacity || ahead.len() <= extra / 2);
            if due && !drained && !serves.is_empty() {
                // A claim waits out an unreachable database; a stop waits
                // for it only briefly (what it claimed is then given back).
                let claim = self.queue.claim(&self.id, &serves, None, wanted);
                tokio::pin!(claim);
                let claimed = tokio::select! {
                    claimed = &mut claim => claimed,
                    () = stop.cancelled() => {
                        match tokio::time::timeout(Duration::from_secs(5), claim).await {
                            Ok(claimed) => claimed,
                            Err(_) => break,
                        }
                    }
                };
                match claimed {
                    Ok(claims) => {
                        backoff = Duration::from_millis(100);
                        drained = claims.len() < wanted;
                        for claim in claims {
                            self.count(|s| s.claimed += 1);
                            metrics::counter!("flow_worker_claims_total").increment(1);
                            let token = CancellationToken::new();
                            held.lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .insert(claim.id, token.clone());
                            ahead.push_back((claim, token));
                        }
                        if !ahead.is_empty() && running.len() < self.capacity {
                            continue;
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
            metrics::gauge!("flow_worker_claimed_ahead").set(ahead.len() as f64);
            let idle = running.len() + ahead.len() < self.capacity + extra;
            tokio::select! {
                () = stop.cancelled() => break,
                () = self.queue.wait_for_work(), if idle => drained = false,
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
            // Claims for every slot freed meanwhile go in one statement.
            while running.try_join_next().is_some() {}
        }
        // Attempts claimed ahead and not started go back to the queue.
        let unstarted: Vec<Claimed> = ahead.into_iter().map(|(claim, _)| claim).collect();
        if !unstarted.is_empty() {
            let given =
                tokio::time::timeout(Duration::from_secs(5), self.queue.release(&unstarted));
            match given.await {
                Ok(Ok(())) => {
                    self.count(|s| s.given_back += unstarted.len() as u64);
                    let mut held = held.lock().unwrap_or_else(|e| e.into_inner());
                    for claim in &unstarted {
                        held.remove(&claim.id);
                    }
                }
                Ok(Err(error)) => tracing::warn!(
                    target: "flow::worker",
                    "cannot give back {} attempts claimed ahead (their leases lapse): {error}",
                    unstarted.len()
                ),
                Err(_) => tracing::warn!(
                    target: "flow::worker",
                    "cannot give back {} attempts claimed ahead in time (their leases lapse)",
                    unstarted.len()
                ),
            }
        }
        while running.join_next().await.is_some() {}
        self.reporting.close();
        self.reporting.wait().await;
        renewing.cancel();
        // Best effort: the announcement lapses by itself.
        let retired =
            tokio::time::timeout(Duration::from_secs(5), self.queue.announce(&self.id, None));
        if let Ok(Err(error)) = retired.await {
            tracing::debug!(target: "flow::worker", "cannot retire this worker: {error}");
        }
    }

    /// Starts a claimed attempt, unless its claim was lost while it waited.
    fn start(
        self: &Arc<Self>,
        running: &mut JoinSet<()>,
        held: &Arc<Mutex<HashMap<i64, CancellationToken>>>,
        claim: Claimed,
        token: CancellationToken,
    ) {
        if token.is_cancelled() {
            held.lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&claim.id);
            self.count(|s| s.abandoned += 1);
            metrics::counter!("flow_worker_leases_lost_total").increment(1);
            tracing::warn!(
                target: "flow::worker",
                run = %claim.attempt.run_id,
                node = %claim.attempt.node_id,
                attempt = claim.attempt.attempt,
                "not started: the claim on this attempt was lost or cancelled while it waited"
            );
            return;
        }
        metrics::gauge!("flow_worker_attempts_running").increment(1.0);
        let (this, held) = (self.clone(), held.clone());
        running.spawn(async move {
            let report = this.execute(&claim, token).await;
            // The slot is free once the attempt ran; its report goes on
            // meanwhile (reports sent together share a statement).
            let reporter = this.clone();
            this.reporting.spawn(async move {
                if let Some(report) = report {
                    reporter.report(&claim, report).await;
                }
                held.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&claim.id);
            });
        });
    }

    /// Whether this worker's recent attempts were short enough to claim
    /// ahead: some finished, and they took less than the threshold of
    /// [`Worker::with_claim_ahead_below`] on average.
    fn short_attempts(&self) -> bool {
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .short(self.capacity, self.claim_ahead_below)
    }

    /// Counts a finished attempt's duration in the recent average.
    fn finished(&self, took: Duration) {
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(took);
    }

    /// Runs one claimed attempt; its report, unless the claim was lost
    /// meanwhile.
    async fn execute(&self, claim: &Claimed, lost: CancellationToken) -> Option<AttemptReport> {
        let attempt = &claim.attempt;
        tracing::debug!(
            target: "flow::worker",
            run = %attempt.run_id,
            node = %attempt.node_id,
            attempt = attempt.attempt,
            "claimed"
        );
        let started = std::time::Instant::now();
        let report = tokio::select! {
            biased;
            () = lost.cancelled() => None,
            report = self.attempt(claim) => Some(report),
        };
        let took = started.elapsed();
        self.finished(took);
        metrics::gauge!("flow_worker_attempts_running").decrement(1.0);
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
            return None;
        };
        let outcome = if report.result.is_ok() {
            "succeeded"
        } else {
            "failed"
        };
        let action = attempt.action.clone();
        metrics::histogram!(
            "flow_worker_attempt_duration_seconds",
            "action" => action,
            "outcome" => outcome
        )
        .record(took.as_secs_f64());
        Some(report)
    }

    /// Reports an attempt that ran.
    async fn report(&self, claim: &Claimed, report: AttemptReport) {
        let attempt = &claim.attempt;
        match self.queue.complete(claim, WireReport::from(report)).await {
            Ok(true) => {
                self.count(|s| s.completed += 1);
                metrics::counter!("flow_worker_reports_total", "outcome" => "accepted")
                    .increment(1);
            }
            Ok(false) => {
                self.count(|s| s.refused += 1);
                metrics::counter!("flow_worker_reports_total", "outcome" => "refused").increment(1);
                tracing::warn!(
                    target: "flow::worker",
                    run = %attempt.run_id,
                    node = %attempt.node_id,
                    attempt = attempt.attempt,
                    "report refused: the claim is no longer this worker's (its lease lapsed)"
                );
            }
            Err(error) => {
                metrics::counter!("flow_worker_reports_total", "outcome" => "failed").increment(1);
                tracing::warn!(
                    target: "flow::worker",
                    run = %attempt.run_id,
                    node = %attempt.node_id,
                    "cannot report the attempt: {error}"
                );
            }
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
            dependencies: &[],
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

/// Describes a worker's series to the installed metrics recorder:
///
/// | Series | Kind | Labels |
/// |---|---|---|
/// | `flow_worker_claims_total` | counter | |
/// | `flow_worker_reports_total` | counter | `outcome`: accepted, refused (the claim was lost), failed |
/// | `flow_worker_heartbeats_total` | counter | `outcome`: renewed, failed |
/// | `flow_worker_leases_lost_total` | counter | |
/// | `flow_worker_attempts_running` | gauge | |
/// | `flow_worker_claimed_ahead` | gauge | |
/// | `flow_worker_attempt_duration_seconds` | histogram | `action`, `outcome` |
/// | `flow_worker_runs_taken_up_total` | counter | |
/// | `flow_tasks_lost_total` | counter | (attempts whose worker's lease lapsed, seen by this process) |
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!("flow_worker_claims_total", "Attempts this worker claimed");
    describe_counter!(
        "flow_worker_reports_total",
        "Attempt reports by outcome: accepted, refused (the claim was no longer this worker's) or failed (the database could not be reached)"
    );
    describe_counter!(
        "flow_worker_heartbeats_total",
        "Renewals of this worker's announcement and leases, by outcome"
    );
    describe_counter!(
        "flow_worker_leases_lost_total",
        "Attempts stopped because their claim was lost or cancelled"
    );
    describe_gauge!("flow_worker_attempts_running", "Attempts running now");
    describe_gauge!(
        "flow_worker_claimed_ahead",
        "Attempts claimed and waiting for a free slot"
    );
    describe_histogram!(
        "flow_worker_attempt_duration_seconds",
        Unit::Seconds,
        "How long this worker's attempts ran"
    );
    describe_counter!(
        "flow_worker_runs_taken_up_total",
        "Runs this worker took up (queued, or left by a process that stopped)"
    );
    describe_counter!(
        "flow_tasks_lost_total",
        "Attempts whose worker's lease lapsed, marked lost by this process"
    );
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
        if let Err(error) = worker.announce().await {
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
                tracing::debug!(
                    target: "flow::worker",
                    "heartbeat: renewed the leases of {} claimed attempts",
                    still.len()
                );
                let still: std::collections::HashSet<i64> = still.into_iter().collect();
                for (id, token) in before {
                    if !still.contains(&id) {
                        tracing::debug!(
                            target: "flow::worker",
                            "lost the claim on task {id} (its lease lapsed, or its run stopped waiting for it)"
                        );
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

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_worker_claims_ahead_once_its_slots_ran_short_attempts() {
        let mut recent = Recent::default();
        assert!(!recent.short(2, CLAIM_AHEAD_BELOW), "nothing ran yet");
        recent.add(20 * MS);
        assert!(!recent.short(2, CLAIM_AHEAD_BELOW), "one of two slots ran");
        recent.add(20 * MS);
        assert!(recent.short(2, CLAIM_AHEAD_BELOW));
        assert!(!recent.short(2, 20 * MS), "not under a lower threshold");
        assert!(!recent.short(2, Duration::ZERO), "zero never claims ahead");
    }

    #[test]
    fn the_average_follows_the_recent_attempts() {
        let mut recent = Recent::default();
        recent.add(20 * MS);
        for _ in 0..64 {
            recent.add(500 * MS);
        }
        assert!(!recent.short(1, CLAIM_AHEAD_BELOW), "{:?}", recent.average);
        assert!(recent.short(1, Duration::from_secs(3600)));
        for _ in 0..64 {
            recent.add(10 * MS);
        }
        assert!(recent.short(1, CLAIM_AHEAD_BELOW), "{:?}", recent.average);
    }
}
