//! The task queue of the shared store: attempts that the process running
//! a run hands over ([`Dispatcher`]) and that workers on any host claim,
//! run and report.
//!
//! A task is one attempt (table `flow_tasks`). Its life:
//!
//! - `ready`: inserted by the run's process (in batches), with a
//!   `flow_ready` notification that wakes idle workers;
//! - `claimed`: taken by a worker with `FOR UPDATE SKIP LOCKED`, in
//!   batches, under a lease (`lease_until`) and a fresh token from a
//!   sequence; the worker renews the leases of its tasks while it runs them;
//! - `done`: reported, only by the holder of the current token (fencing: a
//!   worker whose lease lapsed, or whose task was given to another, is
//!   refused); `flow_done` wakes the run's process, which reads the report
//!   and deletes the task. A report for a run of the reporting process
//!   itself skips this state: the task is deleted by the report's
//!   statement and the report handed over in memory;
//! - back to `ready`: a worker that stops gives back the tasks it claimed
//!   ahead and did not start;
//! - `lost`: the lease lapsed (its worker was killed, or lost the
//!   database); any process's reaper marks it, and the run's process
//!   records the attempt as lost and retries it under the node's policy;
//! - deleted: the run's process gave up waiting (the run was cancelled or
//!   taken over); a worker holding it stops at its next renewal, and its
//!   report finds nothing to complete.
//!
//! Notifications can be lost (a dropped listening connection), so every
//! waiter also polls, once a second.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::{Notify, mpsc, oneshot};

use super::bridge::{Bridge, OpError};
use crate::exec::{Dispatch, Dispatcher, WireReport};
use crate::runtime::{AttemptError, AttemptReport};
use crate::store::StoreError;

/// How often waiters look at the table without a notification.
const POLL: Duration = Duration::from_secs(1);

/// Tasks inserted, claimed or read in one statement at most.
const BATCH: usize = 512;

/// A task a worker claimed.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The task's id.
    pub id: i64,
    /// The token that fences the claim: a report with an older one is
    /// refused.
    pub token: i64,
    /// What to run.
    pub attempt: Dispatch,
}

/// What the run's process waits for.
type Waiter = oneshot::Sender<AttemptReport>;

/// A report on its way: task id, token, the report, and where to say
/// whether it was accepted.
type Report = (
    i64,
    i64,
    WireReport,
    oneshot::Sender<Result<bool, StoreError>>,
);

/// The queue, shared by the dispatching and the working sides of a process.
pub struct TaskQueue {
    bridge: Arc<Bridge>,
    lease: Duration,
    /// Sends attempts to the batching inserter.
    inserts: mpsc::UnboundedSender<(Dispatch, Waiter, Arc<AtomicI64>)>,
    /// Sends reports to the batching reporter.
    reports: mpsc::UnboundedSender<Report>,
    /// Reports awaited by this process, by task id.
    waiters: Mutex<HashMap<i64, Waiter>>,
    /// Woken by `flow_done` (and by the poll).
    done: Notify,
    /// `flow_done` notifications received so far.
    done_events: std::sync::atomic::AtomicU64,
    /// Woken by `flow_ready`: tasks may be waiting for a worker.
    ready: Notify,
    /// Filled by `flow_cancel`.
    cancels: super::Cancels,
}

impl std::fmt::Debug for TaskQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskQueue")
            .field("database", &self.bridge.shown)
            .finish_non_exhaustive()
    }
}

impl TaskQueue {
    /// The queue of the database behind `bridge`, with its background
    /// tasks (inserter, collector, reaper, listener) started.
    pub(super) fn start(
        bridge: Arc<Bridge>,
        url: String,
        lease: Duration,
        cancels: super::Cancels,
    ) -> Arc<Self> {
        let (inserts, received) = mpsc::unbounded_channel();
        let (reports, reported) = mpsc::unbounded_channel();
        let queue = Arc::new(Self {
            bridge: bridge.clone(),
            lease,
            inserts,
            reports,
            waiters: Mutex::new(HashMap::new()),
            done: Notify::new(),
            done_events: std::sync::atomic::AtomicU64::new(0),
            ready: Notify::new(),
            cancels,
        });
        let weak = Arc::downgrade(&queue);
        bridge.spawn(insert_batches(weak.clone(), received));
        bridge.spawn(report_batches(weak.clone(), reported));
        bridge.spawn(collect(weak.clone()));
        bridge.spawn(reap(weak.clone()));
        bridge.spawn(listen(weak, url));
        queue
    }

    /// The lease of a claim.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Resolves when tasks may be ready (a notification), or after the
    /// poll interval.
    pub async fn wait_for_work(&self) {
        let _ = tokio::time::timeout(POLL, self.ready.notified()).await;
    }

    /// Claims up to `limit` ready tasks whose plugin this worker has (the
    /// same name and SHA-256), of run `only_run` when given; oldest first.
    pub async fn claim(
        &self,
        worker: &str,
        plugins: &[(String, String)],
        only_run: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Claimed>, StoreError> {
        let (names, digests): (Vec<String>, Vec<String>) = plugins.iter().cloned().unzip();
        let args = Arc::new((
            worker.to_string(),
            names,
            digests,
            only_run.map(str::to_string),
            limit.min(BATCH) as i64,
            self.lease.as_secs_f64(),
        ));
        self.on_queue(move |client| {
            let args = args.clone();
            async move {
                let (worker, names, digests, only_run, limit, lease) = &*args;
                let statement = client
                    .prepare_cached(
                        "UPDATE flow_tasks AS t SET state = 'claimed', worker = $1,
                             token = nextval('flow_task_tokens'),
                             lease_until = now() + make_interval(secs => $6)
                         WHERE t.id IN (
                             SELECT id FROM flow_tasks
                             WHERE state = 'ready'
                               AND ($4::text IS NULL OR run_id = $4)
                               AND (action, plugin_sha256) IN
                                   (SELECT * FROM unnest($2::text[], $3::text[]))
                             ORDER BY id LIMIT $5
                             FOR UPDATE SKIP LOCKED)
                         RETURNING t.id, t.token, t.run_id, t.node_id, t.attempt,
                                   t.action, t.plugin_sha256, t.input",
                    )
                    .await?;
                let rows = client
                    .query(
                        &statement,
                        &[worker, names, digests, only_run, limit, lease],
                    )
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|row| Claimed {
                        id: row.get(0),
                        token: row.get(1),
                        attempt: Dispatch {
                            run_id: row.get(2),
                            node_id: row.get(3),
                            attempt: row.get::<_, i32>(4) as u32,
                            action: row.get(5),
                            plugin_sha256: row.get(6),
                            input: row.get(7),
                        },
                    })
                    .collect::<Vec<_>>())
            }
        })
        .await
    }

    /// Reports a claimed task's outcome. `Ok(false)`: refused, because the
    /// claim is no longer this worker's (its lease lapsed and the task was
    /// marked lost, or it was cancelled or handed to another). Reports
    /// that arrive together go in one statement.
    pub async fn complete(
        &self,
        claimed: &Claimed,
        report: WireReport,
    ) -> Result<bool, StoreError> {
        let (sender, receiver) = oneshot::channel();
        self.reports
            .send((claimed.id, claimed.token, report, sender))
            .map_err(|_| StoreError::io_message("the PostgreSQL task queue stopped"))?;
        receiver
            .await
            .map_err(|_| StoreError::io_message("the PostgreSQL task queue stopped"))?
    }

    /// Gives claimed tasks that were not started back to the queue, for
    /// any worker to claim (with a new token: the old one is refused).
    pub async fn release(&self, claims: &[Claimed]) -> Result<(), StoreError> {
        let args = Arc::new((
            claims.iter().map(|c| c.id).collect::<Vec<i64>>(),
            claims.iter().map(|c| c.token).collect::<Vec<i64>>(),
        ));
        self.on_queue(move |client| {
            let args = args.clone();
            async move {
                client
                    .execute(
                        "WITH given AS (
                             UPDATE flow_tasks t SET state = 'ready', worker = NULL,
                                 token = NULL, lease_until = NULL
                             FROM unnest($1::int8[], $2::int8[]) AS r(id, token)
                             WHERE t.id = r.id AND t.token = r.token
                               AND t.state = 'claimed'
                             RETURNING t.id)
                         SELECT count(*), pg_notify('flow_ready', '') FROM given",
                        &[&args.0, &args.1],
                    )
                    .await?;
                Ok(())
            }
        })
        .await
    }

    /// Renews the leases of this worker's claimed tasks; returns the ids it
    /// still holds (a task missing from them was lost or cancelled: stop
    /// running it).
    pub async fn renew(&self, worker: &str) -> Result<Vec<i64>, StoreError> {
        let args = Arc::new((worker.to_string(), self.lease.as_secs_f64()));
        self.on_queue(move |client| {
            let args = args.clone();
            async move {
                let statement = client
                    .prepare_cached(
                        "UPDATE flow_tasks SET lease_until = now() + make_interval(secs => $2)
                         WHERE worker = $1 AND state = 'claimed' RETURNING id",
                    )
                    .await?;
                let rows = client.query(&statement, &[&args.0, &args.1]).await?;
                Ok(rows.into_iter().map(|row| row.get(0)).collect())
            }
        })
        .await
    }

    /// Says that `worker` lives and serves `plugins` (name, SHA-256), for
    /// the next lease; `None` says it stopped.
    pub async fn announce(
        &self,
        worker: &str,
        plugins: Option<&[(String, String)]>,
    ) -> Result<(), StoreError> {
        let (actions, digests): (Vec<String>, Vec<String>) =
            plugins.unwrap_or_default().iter().cloned().unzip();
        let args = Arc::new((
            worker.to_string(),
            plugins.is_some(),
            actions,
            digests,
            self.lease.as_secs_f64(),
        ));
        self.on_queue(move |client| {
            let args = args.clone();
            async move {
                let (worker, live, actions, digests, lease) = &*args;
                if !*live {
                    client
                        .execute("DELETE FROM flow_workers WHERE worker = $1", &[worker])
                        .await?;
                    return Ok(());
                }
                client
                    .execute(
                        "INSERT INTO flow_workers (worker, actions, digests, seen_until)
                         VALUES ($1, $2, $3, now() + make_interval(secs => $4))
                         ON CONFLICT (worker) DO UPDATE SET
                             actions = excluded.actions, digests = excluded.digests,
                             seen_until = excluded.seen_until",
                        &[worker, actions, digests, lease],
                    )
                    .await?;
                Ok(())
            }
        })
        .await
    }

    /// Runs `op` on a connection of the queue's pool, on the store's
    /// runtime where its connections live, as [`Bridge::attempt_queue`]
    /// does (again while the server cannot be reached).
    async fn on_queue<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(deadpool_postgres::Object) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, OpError>> + Send,
    {
        let bridge = self.bridge.clone();
        self.bridge
            .spawn(async move { bridge.attempt_queue(op).await })
            .await
            .map_err(|_| StoreError::io_message("the PostgreSQL store stopped"))?
    }

    /// The tasks this process waits for.
    fn waited(&self) -> Vec<i64> {
        self.waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect()
    }

    /// Tells the waiters of tasks that are no longer in the table (deleted
    /// by another process, or by a statement whose answer was lost) that
    /// their attempt was lost, so that no run waits for them forever.
    async fn give_up_vanished(&self) {
        let waited = self.waited();
        if waited.is_empty() {
            return;
        }
        let ids = Arc::new(waited);
        let present = self
            .bridge
            .attempt_queue(|client| {
                let ids = ids.clone();
                async move {
                    let rows = client
                        .query("SELECT id FROM flow_tasks WHERE id = ANY($1)", &[&*ids])
                        .await?;
                    Ok(first_ids(rows))
                }
            })
            .await;
        let Ok(present) = present else { return };
        let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        for id in ids.iter().filter(|id| !present.contains(id)) {
            if let Some(waiter) = waiters.remove(id) {
                let _ = waiter.send(lost(
                    "the task of this attempt is no longer in the shared store, so its outcome \
                     is unknown"
                        .into(),
                ));
            }
        }
    }

    /// Drops a task this process no longer waits for.
    fn abandon(self: &Arc<Self>, id: i64) {
        self.waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        let this = self.clone();
        self.bridge.spawn(async move {
            let cancelled = this
                .bridge
                .attempt_queue(|client| async move {
                    // A worker running it finds it gone at its next renewal.
                    client
                        .execute("DELETE FROM flow_tasks WHERE id = $1", &[&id])
                        .await?;
                    Ok(())
                })
                .await;
            if let Err(error) = cancelled {
                tracing::warn!("cannot cancel task {id}: {error}");
            }
        });
    }
}

/// Stops the task where it runs when the run's process stops waiting.
struct AbandonOnDrop {
    queue: Arc<TaskQueue>,
    id: Arc<AtomicI64>,
    finished: bool,
}

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        let id = self.id.load(Ordering::Acquire);
        if !self.finished && id > 0 {
            self.queue.abandon(id);
        }
    }
}

impl Dispatcher for Arc<TaskQueue> {
    fn resumed(&self, run_id: &str) {
        let id = run_id.to_string();
        let dropped = self.bridge.call(move |client| {
            let id = id.clone();
            async move {
                Ok(client
                    .execute(
                        "DELETE FROM flow_tasks
                         WHERE run_id = $1 AND state IN ('ready', 'claimed')",
                        &[&id],
                    )
                    .await?)
            }
        });
        if let Err(error) = dropped {
            tracing::warn!("cannot drop the earlier attempts of run {run_id}: {error}");
        }
    }

    fn dispatch(&self, attempt: Dispatch) -> BoxFuture<'static, AttemptReport> {
        let (sender, receiver) = oneshot::channel();
        let id = Arc::new(AtomicI64::new(0));
        let sent = self.inserts.send((attempt, sender, id.clone()));
        let guard = AbandonOnDrop {
            queue: self.clone(),
            id,
            finished: false,
        };
        Box::pin(async move {
            // The whole guard lives in the future, not just its flag.
            let mut guard = guard;
            if sent.is_err() {
                guard.finished = true;
                return lost("the PostgreSQL task queue stopped".into());
            }
            let report = receiver.await;
            guard.finished = true;
            report.unwrap_or_else(|_| lost("the PostgreSQL task queue stopped".into()))
        })
    }
}

/// The ids in the first column of `rows`.
fn first_ids(rows: Vec<tokio_postgres::Row>) -> std::collections::HashSet<i64> {
    rows.into_iter().map(|row| row.get::<_, i64>(0)).collect()
}

fn lost(message: String) -> AttemptReport {
    AttemptReport::new(Err(AttemptError::Lost { message }))
}

/// Inserts the attempts handed over, many per statement.
async fn insert_batches(
    queue: std::sync::Weak<TaskQueue>,
    mut received: mpsc::UnboundedReceiver<(Dispatch, Waiter, Arc<AtomicI64>)>,
) {
    let mut batch = Vec::new();
    while received.recv_many(&mut batch, BATCH).await > 0 {
        let Some(queue) = queue.upgrade() else { return };
        let events = queue.done_events.load(Ordering::Acquire);
        let rows = Arc::new(
            batch
                .iter()
                .map(|(attempt, _, _)| attempt.clone())
                .collect::<Vec<_>>(),
        );
        let inserted = queue
            .bridge
            .attempt_queue(|client| {
                let rows = rows.clone();
                async move {
                    let column =
                        |f: fn(&Dispatch) -> String| rows.iter().map(f).collect::<Vec<_>>();
                    let numbers: Vec<i32> = rows.iter().map(|r| r.attempt as i32).collect();
                    let statement = client
                        .prepare_cached(
                            "WITH added AS (
                                 INSERT INTO flow_tasks
                                     (run_id, node_id, attempt, action, plugin_sha256, input)
                                 SELECT * FROM unnest($1::text[], $2::text[], $3::int4[],
                                                      $4::text[], $5::text[], $6::text[])
                                 ON CONFLICT (run_id, node_id, attempt) DO UPDATE SET
                                     state = 'ready', input = excluded.input,
                                     action = excluded.action,
                                     plugin_sha256 = excluded.plugin_sha256,
                                     worker = NULL, token = NULL, lease_until = NULL,
                                     report = NULL
                                 RETURNING id, run_id, node_id, attempt)
                             SELECT added.*, pg_notify('flow_ready', '') FROM added",
                        )
                        .await?;
                    let found = client
                        .query(
                            &statement,
                            &[
                                &column(|r| r.run_id.clone()),
                                &column(|r| r.node_id.clone()),
                                &numbers,
                                &column(|r| r.action.clone()),
                                &column(|r| r.plugin_sha256.clone()),
                                &column(|r| r.input.clone()),
                            ],
                        )
                        .await?;
                    let ids: HashMap<(String, String, i32), i64> = found
                        .into_iter()
                        .map(|row| ((row.get(1), row.get(2), row.get(3)), row.get(0)))
                        .collect();
                    Ok::<_, OpError>(ids)
                }
            })
            .await;
        let mut waiters = queue.waiters.lock().unwrap_or_else(|e| e.into_inner());
        for (attempt, waiter, slot) in batch.drain(..) {
            let key = (attempt.run_id, attempt.node_id, attempt.attempt as i32);
            match inserted.as_ref().map(|ids| ids.get(&key)) {
                Ok(Some(&id)) => {
                    slot.store(id, Ordering::Release);
                    waiters.insert(id, waiter);
                }
                Ok(None) => {
                    let _ = waiter.send(lost("the task was not recorded".into()));
                }
                Err(error) => {
                    let _ = waiter.send(lost(format!("the task could not be recorded: {error}")));
                }
            }
        }
        drop(waiters);
        // Another process may have reported one before it was registered:
        // the collector looks again if anything was reported meanwhile.
        if queue.done_events.load(Ordering::Acquire) != events {
            queue.done.notify_one();
        }
    }
}

/// Writes the reports handed over, many per statement; each is accepted
/// only with its claim's current token. The report of a task this process
/// waits for itself (its run runs here) goes straight to its waiter, and
/// the task is deleted in the same statement; the others are stored for
/// their run's process, which `flow_done` wakes.
async fn report_batches(
    queue: std::sync::Weak<TaskQueue>,
    mut received: mpsc::UnboundedReceiver<Report>,
) {
    let mut batch: Vec<Report> = Vec::new();
    while received.recv_many(&mut batch, BATCH).await > 0 {
        let Some(queue) = queue.upgrade() else { return };
        // Taken out while the statement runs, so that the collector never
        // judges them; put back unless their report is accepted.
        let mut taken: HashMap<i64, Waiter> = {
            let mut waiters = queue.waiters.lock().unwrap_or_else(|e| e.into_inner());
            batch
                .iter()
                .filter_map(|r| waiters.remove(&r.0).map(|waiter| (r.0, waiter)))
                .collect()
        };
        let here: Vec<bool> = batch.iter().map(|r| taken.contains_key(&r.0)).collect();
        let texts = batch
            .iter()
            .zip(&here)
            .map(|(r, &here)| {
                if here {
                    Ok(None)
                } else {
                    serde_json::to_string(&r.2).map(Some)
                }
            })
            .collect::<Result<Vec<Option<String>>, _>>();
        let texts = match texts {
            Ok(texts) => texts,
            Err(error) => {
                queue
                    .waiters
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(taken);
                for (_, _, _, answer) in batch.drain(..) {
                    let _ = answer.send(Err(StoreError::io_message(format!(
                        "cannot encode a report: {error}"
                    ))));
                }
                continue;
            }
        };
        let columns = Arc::new((
            batch.iter().map(|r| r.0).collect::<Vec<i64>>(),
            batch.iter().map(|r| r.1).collect::<Vec<i64>>(),
            texts,
            here,
        ));
        let accepted = queue
            .bridge
            .attempt_queue(|client| {
                let columns = columns.clone();
                async move {
                    let statement = client
                        .prepare_cached(
                            "WITH reported AS (
                                 SELECT * FROM unnest($1::int8[], $2::int8[], $3::text[], $4::bool[])
                                     AS r(id, token, report, here)),
                             consumed AS (
                                 DELETE FROM flow_tasks t USING reported r
                                 WHERE t.id = r.id AND t.token = r.token AND t.state = 'claimed'
                                   AND r.here
                                 RETURNING t.id),
                             done AS (
                                 UPDATE flow_tasks t SET state = 'done', report = r.report,
                                     lease_until = NULL
                                 FROM reported r
                                 WHERE t.id = r.id AND t.token = r.token AND t.state = 'claimed'
                                   AND NOT r.here
                                 RETURNING t.id)
                             SELECT id FROM consumed
                             UNION ALL
                             SELECT id FROM (SELECT id, pg_notify('flow_done', '') FROM done) d",
                        )
                        .await?;
                    let rows = client
                        .query(
                            &statement,
                            &[&columns.0, &columns.1, &columns.2, &columns.3],
                        )
                        .await?;
                    Ok(first_ids(rows))
                }
            })
            .await;
        for (id, _, report, answer) in batch.drain(..) {
            let took = matches!(&accepted, Ok(ids) if ids.contains(&id));
            let _ = answer.send(match &accepted {
                Ok(_) => Ok(took),
                Err(error) => Err(StoreError::io_message(error.to_string())),
            });
            if took && let Some(waiter) = taken.remove(&id) {
                let _ = waiter.send(AttemptReport::from(report));
            }
        }
        // Refused (the task was lost or is gone) or not written: the
        // collector tells their waiters.
        if !taken.is_empty() {
            queue
                .waiters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(taken);
            queue.done.notify_one();
        }
    }
}

/// Hands finished tasks' reports to their waiters and deletes the tasks.
async fn collect(queue: std::sync::Weak<TaskQueue>) {
    loop {
        let Some(this) = queue.upgrade() else { return };
        let notified = this.done.notified();
        let waited = this.waited();
        if !waited.is_empty() {
            let ids = Arc::new(waited);
            let found = this
                .bridge
                .attempt_queue(|client| {
                    let ids = ids.clone();
                    async move {
                        let statement = client
                            .prepare_cached(
                                "DELETE FROM flow_tasks
                                 WHERE id = ANY($1) AND state IN ('done', 'lost')
                                 RETURNING id, state, report, worker",
                            )
                            .await?;
                        let rows = client.query(&statement, &[&*ids]).await?;
                        Ok(rows
                            .into_iter()
                            .map(|row| {
                                let state: String = row.get(1);
                                let report: Option<String> = row.get(2);
                                let worker: Option<String> = row.get(3);
                                (row.get::<_, i64>(0), state, report, worker)
                            })
                            .collect::<Vec<_>>())
                    }
                })
                .await;
            match found {
                Ok(found) => {
                    let mut waiters = this.waiters.lock().unwrap_or_else(|e| e.into_inner());
                    for (id, state, report, worker) in found {
                        let Some(waiter) = waiters.remove(&id) else {
                            continue;
                        };
                        let worker = worker.unwrap_or_else(|| "a worker".into());
                        let report = match (state.as_str(), report) {
                            ("done", Some(text)) => match serde_json::from_str::<WireReport>(&text)
                            {
                                Ok(wire) => AttemptReport::from(wire),
                                Err(error) => lost(format!(
                                    "{worker} sent a report this flow cannot read ({error})"
                                )),
                            },
                            _ => lost(format!(
                                "{worker}, which ran this attempt, stopped renewing its lease \
                                 (it was killed, or lost the database), so its outcome is unknown"
                            )),
                        };
                        let _ = waiter.send(report);
                    }
                }
                Err(error) => tracing::warn!("cannot read finished tasks: {error}"),
            }
        }
        // Holds the queue for at most the poll interval.
        let polled = tokio::time::timeout(POLL, notified).await.is_err();
        if polled && let Some(this) = queue.upgrade() {
            this.give_up_vanished().await;
        }
    }
}

/// Marks the tasks whose lease lapsed as lost, every half lease.
async fn reap(queue: std::sync::Weak<TaskQueue>) {
    let every = match queue.upgrade() {
        Some(queue) => queue.lease / 2,
        None => return,
    };
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(this) = queue.upgrade() else { return };
        let reaped = this
            .bridge
            .attempt_queue(|client| async move {
                let statement = client
                    .prepare_cached(
                        "WITH lost AS (
                             UPDATE flow_tasks SET state = 'lost'
                             WHERE state = 'claimed' AND lease_until < now()
                             RETURNING id, worker, run_id, node_id, attempt)
                         SELECT id, worker, run_id, node_id, attempt,
                                pg_notify('flow_done', '') FROM lost",
                    )
                    .await?;
                Ok(client.query(&statement, &[]).await?)
            })
            .await;
        match reaped {
            Ok(rows) => {
                for row in rows {
                    let worker: Option<String> = row.get(1);
                    tracing::warn!(
                        target: "flow::worker",
                        run = %row.get::<_, String>(2),
                        node = %row.get::<_, String>(3),
                        attempt = row.get::<_, i32>(4),
                        "the lease of {} on this attempt lapsed: the attempt is lost",
                        worker.as_deref().unwrap_or("a worker")
                    );
                    metrics::counter!("flow_tasks_lost_total").increment(1);
                }
            }
            Err(error) => tracing::debug!("cannot reap lapsed tasks: {error}"),
        }
        // Tasks nobody will read: left by a process that stopped waiting.
        let _ = this
            .bridge
            .attempt_queue(|client| async move {
                Ok(client
                    .execute(
                        "DELETE FROM flow_tasks
                         WHERE state IN ('done', 'lost')
                           AND created_at < now() - interval '10 minutes'",
                        &[],
                    )
                    .await?)
            })
            .await;
    }
}

/// Listens for `flow_ready` and `flow_done` on a connection of its own,
/// again after it drops.
async fn listen(queue: std::sync::Weak<TaskQueue>, url: String) {
    let mut delay = Duration::from_millis(100);
    loop {
        if queue.strong_count() == 0 {
            return;
        }
        match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
            Ok((client, mut connection)) => {
                delay = Duration::from_millis(100);
                let (sender, mut messages) = mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    let mut stream =
                        futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    use futures_util::StreamExt as _;
                    while let Some(Ok(message)) = stream.next().await {
                        if sender.send(message).is_err() {
                            break;
                        }
                    }
                });
                if client
                    .batch_execute("LISTEN flow_ready; LISTEN flow_done; LISTEN flow_cancel")
                    .await
                    .is_ok()
                {
                    while let Some(message) = messages.recv().await {
                        let Some(queue) = queue.upgrade() else {
                            driver.abort();
                            return;
                        };
                        if let tokio_postgres::AsyncMessage::Notification(note) = message {
                            match note.channel() {
                                "flow_ready" => queue.ready.notify_one(),
                                "flow_cancel" => {
                                    queue
                                        .cancels
                                        .lock()
                                        .unwrap_or_else(|e| e.into_inner())
                                        .insert(note.payload().to_string());
                                }
                                _ => {
                                    queue.done_events.fetch_add(1, Ordering::AcqRel);
                                    queue.done.notify_one();
                                }
                            }
                        }
                    }
                }
                driver.abort();
            }
            Err(error) => {
                tracing::debug!("cannot listen for task notifications: {error}");
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{PostgresOptions, PostgresStore};

    fn store(lease_ms: u64) -> PostgresStore {
        store_at(
            &flow_test_artifacts::postgres::server().database(),
            lease_ms,
        )
    }

    fn store_at(url: &str, lease_ms: u64) -> PostgresStore {
        let options = PostgresOptions {
            lease: Duration::from_millis(lease_ms),
            ..PostgresOptions::default()
        };
        PostgresStore::open(url, options).unwrap()
    }

    fn tasks(url: &str) -> String {
        flow_test_artifacts::postgres::server().query(url, "SELECT count(*) FROM flow_tasks")
    }

    fn attempt(node: &str, digest: &str) -> Dispatch {
        Dispatch {
            run_id: "01RUN".into(),
            node_id: node.into(),
            attempt: 1,
            action: "echo".into(),
            plugin_sha256: digest.into(),
            input: "{}".into(),
        }
    }

    fn echo(digest: &str) -> Vec<(String, String)> {
        vec![("echo".to_string(), digest.to_string())]
    }

    /// Claims until `n` tasks were claimed in all.
    async fn claim_all(
        queue: &Arc<TaskQueue>,
        worker: &str,
        digest: &str,
        n: usize,
    ) -> Vec<Claimed> {
        let mut claimed = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while claimed.len() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "only {} claimed",
                claimed.len()
            );
            let batch = queue
                .claim(worker, &echo(digest), None, n - claimed.len())
                .await
                .unwrap();
            if batch.is_empty() {
                queue.wait_for_work().await;
            }
            claimed.extend(batch);
        }
        claimed
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_workers_never_claim_one_task_and_only_with_the_same_plugin() {
        let store = store(30_000);
        let queue = store.queue();
        let waits: Vec<_> = (0..60)
            .map(|i| queue.dispatch(attempt(&format!("n{i}"), "aa")))
            .collect();
        let other = queue.dispatch(attempt("other", "bb"));
        let (first, second) = tokio::join!(
            claim_all(&queue, "w1", "aa", 30),
            claim_all(&queue, "w2", "aa", 30)
        );
        let mut ids: Vec<i64> = first.iter().chain(&second).map(|c| c.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 60, "no task claimed twice");
        assert!(
            queue
                .claim("w1", &echo("aa"), None, 10)
                .await
                .unwrap()
                .is_empty(),
            "the task of another plugin version is not claimed"
        );
        let nodes: std::collections::HashSet<String> = first
            .iter()
            .chain(&second)
            .map(|c| c.attempt.node_id.clone())
            .collect();
        assert!(!nodes.contains("other"));
        drop((waits, other));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_report_reaches_the_waiting_run_and_a_stale_one_is_refused() {
        let store = store(400);
        let queue = store.queue();
        let waiting = queue.dispatch(attempt("a", "aa"));
        let claim = claim_all(&queue, "w1", "aa", 1).await.remove(0);
        assert_eq!(claim.attempt, attempt("a", "aa"));
        let report = WireReport::from(AttemptReport::new(Ok("{\"x\":1}".into())));
        assert!(queue.complete(&claim, report.clone()).await.unwrap());
        assert_eq!(waiting.await.result.unwrap(), "{\"x\":1}");
        assert!(
            !queue.complete(&claim, report.clone()).await.unwrap(),
            "a task is reported once"
        );

        // A worker that stops renewing loses the attempt; its late report
        // is refused.
        let waiting = queue.dispatch(attempt("b", "aa"));
        let claim = claim_all(&queue, "w2", "aa", 1).await.remove(0);
        let lost = waiting.await;
        let error = lost.result.unwrap_err();
        assert!(
            matches!(&error, AttemptError::Lost { message } if message.contains("w2")),
            "{error}"
        );
        assert!(!queue.complete(&claim, report).await.unwrap(), "fenced");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn renewals_keep_a_claim_and_a_cancelled_task_is_given_up() {
        let store = store(300);
        let queue = store.queue();
        let waiting = queue.dispatch(attempt("a", "aa"));
        let claim = claim_all(&queue, "w1", "aa", 1).await.remove(0);
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(
                queue.renew("w1").await.unwrap(),
                [claim.id],
                "renewed, not lost"
            );
        }
        // The run stops waiting (cancelled): the claim is gone at the
        // next renewal, and a report is refused.
        drop(waiting);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !queue.renew("w1").await.unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let report = WireReport::from(AttemptReport::new(Ok("{}".into())));
        assert!(!queue.complete(&claim, report).await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_report_for_this_process_goes_straight_to_its_waiter_and_others_through_the_table() {
        let url = flow_test_artifacts::postgres::server().database();
        let (here, there) = (store_at(&url, 30_000), store_at(&url, 30_000));
        let (ours, theirs) = (here.queue(), there.queue());
        let report = WireReport::from(AttemptReport::new(Ok("{\"x\":1}".into())));

        // Run and claimed by one process: the accepted report reaches the
        // run, and the task is gone by then.
        let waiting = ours.dispatch(attempt("a", "aa"));
        let claim = claim_all(&ours, "w1", "aa", 1).await.remove(0);
        assert!(ours.complete(&claim, report.clone()).await.unwrap());
        assert_eq!(waiting.await.result.unwrap(), "{\"x\":1}");
        assert_eq!(tasks(&url), "0", "deleted in the report's statement");

        // Claimed by another process: stored as done until the run's
        // process reads it.
        let waiting = ours.dispatch(attempt("b", "aa"));
        let claim = claim_all(&theirs, "w2", "aa", 1).await.remove(0);
        assert!(theirs.complete(&claim, report.clone()).await.unwrap());
        assert_eq!(waiting.await.result.unwrap(), "{\"x\":1}");
        assert!(
            !theirs.complete(&claim, report).await.unwrap(),
            "a task is reported once"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_task_given_back_is_claimed_again_and_the_old_claim_is_refused() {
        let store = store(30_000);
        let queue = store.queue();
        let waiting = queue.dispatch(attempt("a", "aa"));
        let first = claim_all(&queue, "w1", "aa", 1).await.remove(0);
        queue.release(std::slice::from_ref(&first)).await.unwrap();
        let second = claim_all(&queue, "w2", "aa", 1).await.remove(0);
        assert_eq!(second.id, first.id);
        assert_ne!(second.token, first.token, "a new claim, a new token");
        let report = WireReport::from(AttemptReport::new(Ok("{}".into())));
        assert!(!queue.complete(&first, report.clone()).await.unwrap());
        assert!(queue.complete(&second, report).await.unwrap());
        assert_eq!(waiting.await.result.unwrap(), "{}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_task_deleted_elsewhere_ends_its_wait_as_lost() {
        let url = flow_test_artifacts::postgres::server().database();
        let store = store_at(&url, 30_000);
        let waiting = store.queue().dispatch(attempt("a", "aa"));
        // Wait until it is stored, then delete it as another process
        // could.
        while tasks(&url) != "1" {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        flow_test_artifacts::postgres::server().query(&url, "DELETE FROM flow_tasks");
        let error = waiting.await.result.unwrap_err();
        assert!(
            matches!(&error, AttemptError::Lost { message } if message.contains("no longer in the shared store")),
            "{error}"
        );
    }
}
