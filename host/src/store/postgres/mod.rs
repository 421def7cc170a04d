//! The shared store: runs kept in PostgreSQL, where several hosts read and
//! run them (see `schema.rs` for the layout).
//!
//! Writes have sled's semantics: each [`WorkflowStore::put_batch`] is one
//! transaction, committed when it returns, so a flush has nothing left to
//! do. While the server cannot be reached an operation is tried again,
//! with backoff, for [`PostgresOptions::retry_for`]; every write is safe
//! to repeat.
//!
//! A run in progress is held by the process running it: the store renews
//! the run's lease while the process lives. A run whose lease lapsed was
//! left by a process that stopped, and reads as interrupted (sled finds
//! the same when it opens, since one process at a time opens it); another
//! process may then take it over (`flow resume`), and no process can while
//! the lease is held.

mod bridge;
mod queue;
mod schema;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bridge::Bridge;
pub use bridge::hide_password;
pub use queue::{Claimed, TaskQueue};

use super::{
    AttemptRecord, NodeHistory, NodeRecord, Records, RunRecord, StoreError, WorkflowStore,
};
use crate::report::{RunStatus, Timestamp};

/// How a [`PostgresStore`] connects and holds runs.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Connections the store opens at most.
    pub connections: usize,
    /// How long an operation keeps trying while the server cannot be
    /// reached, before it fails.
    pub retry_for: Duration,
    /// How long a run stays held by its process without a renewal; renewed
    /// every third of it.
    pub lease: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            connections: 8,
            retry_for: Duration::from_secs(60),
            lease: Duration::from_secs(30),
        }
    }
}

/// Runs kept in a PostgreSQL database, shared by every host that opens it.
pub struct PostgresStore {
    bridge: Arc<Bridge>,
    /// This process, as it is recorded as a run's holder.
    owner: Arc<str>,
    lease: Duration,
    heartbeat: tokio::task::JoinHandle<()>,
    /// The address as given (with its password), for the listening
    /// connection of the task queue.
    url: String,
    queue: std::sync::OnceLock<Arc<TaskQueue>>,
    /// Runs held here whose cancellation was asked for, from any host.
    cancels: Cancels,
}

/// Runs whose cancellation was asked for, as this process learnt it (a
/// notification, or the lease renewal's answer).
pub(super) type Cancels = Arc<Mutex<HashSet<String>>>;

/// What [`PostgresStore::request_cancel`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelRequest {
    /// The run's process was asked to stop it.
    Asked,
    /// The run was queued: it is now cancelled.
    Dequeued,
    /// The run was not running (its status).
    NotRunning(RunStatus),
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("database", &self.bridge.shown)
            .field("owner", &self.owner)
            .finish()
    }
}

/// True when `text` names a PostgreSQL database rather than a directory.
pub fn is_postgres_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`)
    /// and applies the migrations it lacks.
    pub fn open(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let bridge = Bridge::new(url, options.connections, options.retry_for)?;
        let shown = bridge.shown.clone();
        bridge.call(move |mut client| {
            let shown = shown.clone();
            async move { schema::migrate(&mut client, &shown).await }
        })?;
        let owner: Arc<str> = format!(
            "{}:{}:{:08x}",
            hostname(),
            std::process::id(),
            fastrand::u32(..)
        )
        .into();
        let cancels = Cancels::default();
        let heartbeat = bridge.spawn(renew(
            bridge.clone(),
            owner.clone(),
            options.lease,
            cancels.clone(),
        ));
        Ok(Self {
            bridge,
            owner,
            lease: options.lease,
            heartbeat,
            url: url.to_string(),
            queue: std::sync::OnceLock::new(),
            cancels,
        })
    }

    /// Asks whichever process runs run `run_id` to cancel it (a queued run
    /// is cancelled here and now).
    pub fn request_cancel(&self, run_id: &str) -> Result<CancelRequest, StoreError> {
        let Some(mut run) = self.run(run_id)? else {
            return Err(StoreError::UnknownRun { id: run_id.into() });
        };
        match run.status {
            RunStatus::Queued => {
                run.status = RunStatus::Cancelled;
                run.finished_at = Some(Timestamp::now());
                self.update_run(&run)?;
                Ok(CancelRequest::Dequeued)
            }
            RunStatus::Running => {
                let id = run_id.to_string();
                self.bridge.call(move |client| {
                    let id = id.clone();
                    async move {
                        client
                            .execute(
                                "UPDATE flow_runs SET cancel_requested = true WHERE run_id = $1",
                                &[&id],
                            )
                            .await?;
                        client
                            .execute("SELECT pg_notify('flow_cancel', $1)", &[&id])
                            .await?;
                        Ok(())
                    }
                })?;
                Ok(CancelRequest::Asked)
            }
            status => Ok(CancelRequest::NotRunning(status)),
        }
    }

    /// Whether a cancellation of run `run_id` was asked for (and reached
    /// this process: at once when it listens to the task queue, else at the
    /// next lease renewal).
    pub fn cancel_requested(&self, run_id: &str) -> bool {
        self.cancels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(run_id)
    }

    /// The task queue through which runs hand attempts to workers (see
    /// [`TaskQueue`]); started on first use.
    pub fn queue(&self) -> Arc<TaskQueue> {
        self.queue
            .get_or_init(|| {
                TaskQueue::start(
                    self.bridge.clone(),
                    self.url.clone(),
                    self.lease,
                    self.cancels.clone(),
                )
            })
            .clone()
    }

    /// How long a run or a claim stays held without a renewal.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// The database's address, without its password.
    pub fn address(&self) -> &str {
        &self.bridge.shown
    }

    /// Runs a worker may take up, oldest first: those queued
    /// (`flow run --submit`) and those whose process stopped (their lease
    /// lapsed).
    pub fn adoptable_runs(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        let limit = limit as i64;
        self.bridge.call(move |client| async move {
            let statement = client
                .prepare_cached(
                    "SELECT run_id FROM flow_runs
                     WHERE status = 'queued'
                        OR (status = 'running' AND (lease_until IS NULL OR lease_until < now()))
                     ORDER BY run_id LIMIT $1",
                )
                .await?;
            let rows = client.query(&statement, &[&limit]).await?;
            Ok(rows.into_iter().map(|row| row.get(0)).collect())
        })
    }

    /// This process, as the store records it as a run's holder
    /// (`host:pid:random`).
    pub fn owner(&self) -> &str {
        &self.owner
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// Renews the leases of the runs this process holds, every third of the
/// lease, until the store is dropped.
async fn renew(bridge: Arc<Bridge>, owner: Arc<str>, lease: Duration, cancels: Cancels) {
    // Nothing is held when the store opens (a run's lease is set when it
    // is created): the first renewal is due a third of a lease later.
    let period = lease / 3;
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let owner = owner.clone();
        let renewed = bridge
            .attempt(|client| {
                let owner = owner.clone();
                async move {
                    let statement = client
                        .prepare_cached(
                            "UPDATE flow_runs SET lease_until = now() + make_interval(secs => $2)
                             WHERE owner = $1 AND status = 'running'
                             RETURNING run_id, cancel_requested",
                        )
                        .await?;
                    let rows = client
                        .query(&statement, &[&&*owner, &lease.as_secs_f64()])
                        .await?;
                    Ok(rows
                        .into_iter()
                        .filter(|row| row.get::<_, bool>(1))
                        .map(|row| row.get::<_, String>(0))
                        .collect::<Vec<_>>())
                }
            })
            .await;
        match renewed {
            Ok(cancelled) => cancels
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(cancelled),
            Err(error) => {
                tracing::warn!("cannot renew the leases of this process's runs: {error}")
            }
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|source| StoreError::Corrupt {
        key: key.to_string(),
        source,
    })
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(StoreError::io)
}

/// A run's header as read: a running run whose lease lapsed was left by a
/// process that stopped.
fn header(run_id: &str, text: &str, lapsed: bool) -> Result<RunRecord, StoreError> {
    let mut run: RunRecord = decode(run_id, text)?;
    if lapsed && run.status == RunStatus::Running {
        run.status = RunStatus::Interrupted;
    }
    Ok(run)
}

/// The columns [`header`] reads.
const HEADER: &str =
    "run_id, header, (status = 'running' AND lease_until IS NOT NULL AND lease_until < now())";

/// Escapes `%`, `_` and `\` for LIKE.
fn like_prefix(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Runs newest first, read a page at a time as the iterator advances.
struct RunPages<'a> {
    store: &'a PostgresStore,
    /// Only runs older than this one (the last one read).
    before: Option<String>,
    /// Only runs whose ids match this LIKE pattern.
    pattern: Option<String>,
    buffer: VecDeque<Result<RunRecord, StoreError>>,
    done: bool,
}

/// Runs read per page.
const RUN_PAGE: i64 = 200;

impl RunPages<'_> {
    fn fill(&mut self) -> Result<(), StoreError> {
        let before = self.before.clone();
        let pattern = self.pattern.clone();
        let rows: Vec<(String, String, bool)> = self.store.bridge.call(move |client| {
            let (before, pattern) = (before.clone(), pattern.clone());
            async move {
                let statement = client
                    .prepare_cached(&format!(
                        "SELECT {HEADER} FROM flow_runs
                         WHERE ($1::text IS NULL OR run_id < $1)
                           AND ($2::text IS NULL OR run_id LIKE $2)
                         ORDER BY run_id DESC LIMIT $3"
                    ))
                    .await?;
                let rows = client
                    .query(&statement, &[&before, &pattern, &RUN_PAGE])
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|row| (row.get(0), row.get(1), row.get(2)))
                    .collect())
            }
        })?;
        self.done = (rows.len() as i64) < RUN_PAGE;
        if let Some((last, _, _)) = rows.last() {
            self.before = Some(last.clone());
        }
        self.buffer.extend(
            rows.into_iter()
                .map(|(id, text, lapsed)| header(&id, &text, lapsed)),
        );
        Ok(())
    }
}

impl Iterator for RunPages<'_> {
    type Item = Result<RunRecord, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buffer.is_empty()
            && !self.done
            && let Err(error) = self.fill()
        {
            self.done = true;
            return Some(Err(error));
        }
        self.buffer.pop_front()
    }
}

impl PostgresStore {
    fn pages(&self, before: Option<&str>, pattern: Option<String>) -> Records<'_, RunRecord> {
        Box::new(RunPages {
            store: self,
            before: before.map(str::to_string),
            pattern,
            buffer: VecDeque::new(),
            done: false,
        })
    }

    /// Writes a run's header; with `definition`, its workflow text too.
    /// Refused while another live process holds the run.
    fn write_run(&self, run: &RunRecord, definition: Option<&str>) -> Result<(), StoreError> {
        let sinks = run.sinks.as_ref().map(encode).transpose()?;
        let header = encode(&RunRecord {
            sinks: None,
            ..run.clone()
        })?;
        let row = Arc::new((
            run.run_id.clone(),
            run.status.to_string(),
            header,
            definition.map(str::to_string),
            sinks,
        ));
        let owner = self.owner.clone();
        let lease = self.lease.as_secs_f64();
        let written = self.bridge.call(move |client| {
            let (row, owner) = (row.clone(), owner.clone());
            async move {
                let statement = client
                    .prepare_cached(
                        "INSERT INTO flow_runs AS r
                             (run_id, status, header, definition, sinks, owner, lease_until)
                         VALUES ($1, $2, $3, $4, $5, $6,
                                 CASE WHEN $2 = 'running' THEN now() + make_interval(secs => $7) END)
                         ON CONFLICT (run_id) DO UPDATE SET
                             status = excluded.status,
                             header = excluded.header,
                             definition = coalesce(excluded.definition, r.definition),
                             sinks = coalesce(excluded.sinks, r.sinks),
                             owner = excluded.owner,
                             lease_until = excluded.lease_until
                         WHERE r.owner IS NOT DISTINCT FROM excluded.owner
                            OR r.status <> 'running'
                            OR r.lease_until IS NULL
                            OR r.lease_until < now()",
                    )
                    .await?;
                let (run_id, status, header, definition, sinks) = &*row;
                Ok(client
                    .execute(
                        &statement,
                        &[run_id, status, header, definition, sinks, &&*owner, &lease],
                    )
                    .await?)
            }
        })?;
        if written == 0 {
            return Err(StoreError::Held {
                run_id: run.run_id.clone(),
                owner: self.holder(&run.run_id)?.unwrap_or_default(),
            });
        }
        Ok(())
    }

    /// The process holding a run, if one does.
    fn holder(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        let run_id = run_id.to_string();
        self.bridge.call(move |client| {
            let run_id = run_id.clone();
            async move {
                let row = client
                    .query_opt(
                        "SELECT owner FROM flow_runs WHERE run_id = $1 AND status = 'running'",
                        &[&run_id],
                    )
                    .await?;
                Ok(row.and_then(|row| row.get(0)))
            }
        })
    }

    /// Histories of the nodes of a run with `where_node` true (SQL on the
    /// node id `$2`), with their attempts.
    fn histories(&self, run_id: &str, node: Option<&str>) -> Result<Vec<NodeHistory>, StoreError> {
        let run_id = run_id.to_string();
        let node = node.map(|node| (node.to_string(), like_prefix(&format!("{node}["))));
        let (nodes, attempts): (Pairs, Pairs) = self.bridge.call(move |mut client| {
            let (run_id, node) = (run_id.clone(), node.clone());
            async move {
                // One snapshot for both reads.
                let transaction = client
                    .build_transaction()
                    .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
                    .await?;
                let (id, pattern) = match &node {
                    Some((id, pattern)) => (Some(id.as_str()), Some(pattern.as_str())),
                    None => (None, None),
                };
                let filter = "($2::text IS NULL OR node_id = $2 OR node_id LIKE $3)";
                let nodes = transaction
                    .query(
                        &format!(
                            "SELECT node_id, record FROM flow_nodes
                                 WHERE run_id = $1 AND {filter}
                                 ORDER BY position, element NULLS FIRST"
                        ),
                        &[&run_id, &id, &pattern],
                    )
                    .await?;
                let attempts = transaction
                    .query(
                        &format!(
                            "SELECT node_id, record FROM flow_attempts
                                 WHERE run_id = $1 AND {filter}
                                 ORDER BY node_id, number"
                        ),
                        &[&run_id, &id, &pattern],
                    )
                    .await?;
                transaction.commit().await?;
                let pairs = |rows: Vec<tokio_postgres::Row>| -> Vec<(String, String)> {
                    rows.into_iter()
                        .map(|row| (row.get(0), row.get(1)))
                        .collect()
                };
                Ok((pairs(nodes), pairs(attempts)))
            }
        })?;
        let mut by_node: HashMap<String, Vec<AttemptRecord>> = HashMap::new();
        for (node_id, text) in attempts {
            let attempt = decode(&format!("{node_id} attempt"), &text)?;
            by_node.entry(node_id).or_default().push(attempt);
        }
        nodes
            .into_iter()
            .map(|(node_id, text)| {
                let record: NodeRecord = decode(&node_id, &text)?;
                let attempts = by_node.remove(&node_id).unwrap_or_default();
                Ok(NodeHistory::new(record, attempts))
            })
            .collect()
    }
}

impl WorkflowStore for PostgresStore {
    fn create_run(&self, run: &RunRecord, definition: &str) -> Result<(), StoreError> {
        self.write_run(run, Some(definition))
    }

    fn update_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        self.write_run(run, None)
    }

    fn put_batch(
        &self,
        run_id: &str,
        nodes: &[NodeRecord],
        attempts: &[(String, AttemptRecord)],
    ) -> Result<(), StoreError> {
        // The last record of a node (or attempt) wins, as in one write
        // after another; one statement cannot write a row twice.
        let mut node_rows: HashMap<&str, (i64, Option<i64>, String)> = HashMap::new();
        for node in nodes {
            node_rows.insert(
                &node.node_id,
                (
                    node.index as i64,
                    node.element.map(i64::from),
                    encode(node)?,
                ),
            );
        }
        let mut attempt_rows: HashMap<(&str, u32), String> = HashMap::new();
        for (node_id, attempt) in attempts {
            attempt_rows.insert((node_id, attempt.number), encode(attempt)?);
        }
        let mut columns = NodeColumns::default();
        for (id, (position, element, record)) in node_rows {
            columns.ids.push(id.to_string());
            columns.positions.push(position);
            columns.elements.push(element);
            columns.records.push(record);
        }
        let mut attempt_columns = AttemptColumns::default();
        for ((id, number), record) in attempt_rows {
            attempt_columns.ids.push(id.to_string());
            attempt_columns.numbers.push(number as i32);
            attempt_columns.records.push(record);
        }
        let batch = Arc::new((run_id.to_string(), columns, attempt_columns));
        self.bridge.call(move |mut client| {
            let batch = batch.clone();
            async move {
                let (run_id, nodes, attempts) = &*batch;
                let transaction = client.transaction().await?;
                if !attempts.ids.is_empty() {
                    let statement = transaction
                        .prepare_cached(
                            "INSERT INTO flow_attempts (run_id, node_id, number, record)
                             SELECT $1, * FROM unnest($2::text[], $3::int4[], $4::text[])
                             ON CONFLICT (run_id, node_id, number)
                             DO UPDATE SET record = excluded.record",
                        )
                        .await?;
                    transaction
                        .execute(
                            &statement,
                            &[run_id, &attempts.ids, &attempts.numbers, &attempts.records],
                        )
                        .await?;
                }
                if !nodes.ids.is_empty() {
                    let statement = transaction
                        .prepare_cached(
                            "INSERT INTO flow_nodes (run_id, node_id, position, element, record)
                             SELECT $1, * FROM unnest($2::text[], $3::int8[], $4::int8[], $5::text[])
                             ON CONFLICT (run_id, node_id) DO UPDATE SET
                                 position = excluded.position,
                                 element = excluded.element,
                                 record = excluded.record",
                        )
                        .await?;
                    transaction
                        .execute(
                            &statement,
                            &[
                                run_id,
                                &nodes.ids,
                                &nodes.positions,
                                &nodes.elements,
                                &nodes.records,
                            ],
                        )
                        .await?;
                }
                transaction.commit().await?;
                Ok(())
            }
        })
    }

    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let id = run_id.to_string();
        let row: Option<(String, String, bool)> = self.bridge.call(move |client| {
            let id = id.clone();
            async move {
                let statement = client
                    .prepare_cached(&format!("SELECT {HEADER} FROM flow_runs WHERE run_id = $1"))
                    .await?;
                let row = client.query_opt(&statement, &[&id]).await?;
                Ok(row.map(|row| (row.get(0), row.get(1), row.get(2))))
            }
        })?;
        row.map(|(id, text, lapsed)| header(&id, &text, lapsed))
            .transpose()
    }

    fn sinks(&self, run_id: &str) -> Result<Option<Vec<String>>, StoreError> {
        let id = run_id.to_string();
        let text: Option<String> = self.bridge.call(move |client| {
            let id = id.clone();
            async move {
                let row = client
                    .query_opt("SELECT sinks FROM flow_runs WHERE run_id = $1", &[&id])
                    .await?;
                Ok(row.and_then(|row| row.get(0)))
            }
        })?;
        text.map(|text| decode(&format!("{run_id} sinks"), &text))
            .transpose()
    }

    fn definition(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        let id = run_id.to_string();
        self.bridge.call(move |client| {
            let id = id.clone();
            async move {
                let row = client
                    .query_opt("SELECT definition FROM flow_runs WHERE run_id = $1", &[&id])
                    .await?;
                Ok(row.and_then(|row| row.get(0)))
            }
        })
    }

    fn nodes(&self, run_id: &str) -> Result<Vec<NodeRecord>, StoreError> {
        let id = run_id.to_string();
        let rows: Vec<(String, String)> = self.bridge.call(move |client| {
            let id = id.clone();
            async move {
                let statement = client
                    .prepare_cached(
                        "SELECT node_id, record FROM flow_nodes WHERE run_id = $1
                         ORDER BY position, element NULLS FIRST",
                    )
                    .await?;
                let rows = client.query(&statement, &[&id]).await?;
                Ok(rows
                    .into_iter()
                    .map(|row| (row.get(0), row.get(1)))
                    .collect())
            }
        })?;
        let mut nodes = rows
            .iter()
            .map(|(id, text)| decode(id, text))
            .collect::<Result<Vec<NodeRecord>, _>>()?;
        super::sort_records(&mut nodes, |node| node);
        Ok(nodes)
    }

    fn attempts(&self, run_id: &str, node_id: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        let ids = Arc::new((run_id.to_string(), node_id.to_string()));
        let rows: Vec<String> = self.bridge.call(move |client| {
            let ids = ids.clone();
            async move {
                let statement = client
                    .prepare_cached(
                        "SELECT record FROM flow_attempts WHERE run_id = $1 AND node_id = $2
                         ORDER BY number",
                    )
                    .await?;
                let rows = client.query(&statement, &[&ids.0, &ids.1]).await?;
                Ok(rows.into_iter().map(|row| row.get(0)).collect())
            }
        })?;
        rows.iter()
            .map(|text| decode(&format!("{node_id} attempt"), text))
            .collect()
    }

    fn node(&self, run_id: &str, node_id: &str) -> Result<Option<NodeHistory>, StoreError> {
        Ok(super::one(self.histories(run_id, Some(node_id))?, node_id))
    }

    fn history(&self, run_id: &str) -> Result<Vec<NodeHistory>, StoreError> {
        Ok(super::nest(self.histories(run_id, None)?))
    }

    fn runs(&self) -> Records<'_, RunRecord> {
        self.pages(None, None)
    }

    fn runs_before(&self, before: Option<&str>) -> Records<'_, RunRecord> {
        self.pages(before, None)
    }

    fn runs_with_prefix(&self, prefix: &str) -> Records<'_, RunRecord> {
        self.pages(None, Some(like_prefix(prefix)))
    }

    fn delete_run(&self, run_id: &str) -> Result<bool, StoreError> {
        let id = run_id.to_string();
        self.bridge.call(move |mut client| {
            let id = id.clone();
            async move {
                let transaction = client.transaction().await?;
                for table in ["flow_attempts", "flow_nodes"] {
                    transaction
                        .execute(&format!("DELETE FROM {table} WHERE run_id = $1"), &[&id])
                        .await?;
                }
                let deleted = transaction
                    .execute("DELETE FROM flow_runs WHERE run_id = $1", &[&id])
                    .await?;
                transaction.commit().await?;
                Ok(deleted > 0)
            }
        })
    }

    fn flush(&self) -> Result<(), StoreError> {
        // Every write was committed before it returned.
        Ok(())
    }

    fn waiting(&self, run: &RunRecord) -> Result<Vec<String>, StoreError> {
        if !matches!(run.status, RunStatus::Queued | RunStatus::Interrupted) {
            return Ok(Vec::new());
        }
        // A worker takes a run up only with every plugin it uses, byte for
        // byte; native actions live in the program that registered them.
        let needed: Vec<(&String, &String)> = run
            .plugins
            .iter()
            .filter(|(_, digest)| !digest.starts_with("native:"))
            .collect();
        let workers: Vec<(String, Vec<String>, Vec<String>)> =
            self.bridge.call(|client| async move {
                let rows = client
                    .query(
                        "SELECT worker, actions, digests FROM flow_workers
                     WHERE seen_until > now() ORDER BY worker",
                        &[],
                    )
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|row| (row.get(0), row.get(1), row.get(2)))
                    .collect())
            })?;
        if workers.is_empty() {
            return Ok(vec![
                "no `flow worker` of this store is live to take the run up".into(),
            ]);
        }
        let mut said = Vec::new();
        for (worker, actions, digests) in &workers {
            let missing: Vec<String> = needed
                .iter()
                .filter(|(name, digest)| {
                    !actions
                        .iter()
                        .zip(digests)
                        .any(|(action, served)| action == *name && served == *digest)
                })
                .map(|(name, digest)| format!("{name} ({}…)", &digest[..digest.len().min(12)]))
                .collect();
            if missing.is_empty() {
                // That worker will take it up.
                return Ok(Vec::new());
            }
            said.push(format!(
                "worker {worker} cannot take the run up: it lacks {} (name and SHA-256 as the run \
                 recorded them)",
                missing.join(", ")
            ));
        }
        Ok(said)
    }

    fn last_fire(&self, name: &str) -> Result<Option<Timestamp>, StoreError> {
        let name = name.to_string();
        let fire: Option<i64> = self.bridge.call(move |client| {
            let name = name.clone();
            async move {
                let row = client
                    .query_opt(
                        "SELECT last_fire FROM flow_schedules WHERE name = $1",
                        &[&name],
                    )
                    .await?;
                Ok(row.map(|row| row.get(0)))
            }
        })?;
        Ok(fire.map(|ms| Timestamp(ms.max(0) as u64)))
    }

    fn set_last_fire(&self, name: &str, due: Timestamp) -> Result<(), StoreError> {
        let name = name.to_string();
        let due = i64::try_from(due.0).unwrap_or(i64::MAX);
        self.bridge.call(move |client| {
            let name = name.clone();
            async move {
                client
                    .execute(
                        "INSERT INTO flow_schedules (name, last_fire) VALUES ($1, $2)
                         ON CONFLICT (name) DO UPDATE SET last_fire = excluded.last_fire",
                        &[&name, &due],
                    )
                    .await?;
                Ok(())
            }
        })
    }
}

/// Rows of (node id, record).
type Pairs = Vec<(String, String)>;

/// Node records as the columns of one insert.
#[derive(Default)]
struct NodeColumns {
    ids: Vec<String>,
    positions: Vec<i64>,
    elements: Vec<Option<i64>>,
    records: Vec<String>,
}

/// Attempt records as the columns of one insert.
#[derive(Default)]
struct AttemptColumns {
    ids: Vec<String>,
    numbers: Vec<i32>,
    records: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::NodeStatus;
    use crate::store::conformance;

    fn store() -> PostgresStore {
        let url = flow_test_artifacts::postgres::server().database();
        PostgresStore::open(&url, PostgresOptions::default()).unwrap()
    }

    #[test]
    fn round_trip() {
        conformance::round_trip(&store());
    }

    #[test]
    fn listing_and_prefixes() {
        conformance::listing_and_prefixes(&store());
    }

    #[test]
    fn deletion() {
        conformance::deletion(&store());
    }

    #[test]
    fn schedules_remember_their_last_fire() {
        conformance::schedules_remember_their_last_fire(&store());
    }

    #[test]
    fn nodes_and_attempts_do_not_mix() {
        conformance::nodes_and_attempts_do_not_mix(&store());
    }

    #[test]
    fn a_big_history_comes_in_file_order_with_its_attempts() {
        conformance::a_big_history_comes_in_file_order_with_its_attempts(&store());
    }

    #[test]
    fn sinks_are_kept_with_the_run() {
        conformance::sinks_are_kept_with_the_run(&store());
    }

    #[test]
    fn one_node_is_read_with_its_elements() {
        conformance::one_node_is_read_with_its_elements(&store());
    }

    /// Runs SQL on the store's database.
    fn sql(store: &PostgresStore, sql: &'static str) {
        store
            .bridge
            .call(move |client| async move { Ok(client.batch_execute(sql).await?) })
            .unwrap();
    }

    #[test]
    fn a_run_held_by_a_live_process_is_refused_to_another_until_its_lease_lapses() {
        let url = flow_test_artifacts::postgres::server().database();
        let first = PostgresStore::open(&url, PostgresOptions::default()).unwrap();
        let second = PostgresStore::open(&url, PostgresOptions::default()).unwrap();
        assert_ne!(first.owner(), second.owner());
        let run = conformance::run_record("01A", RunStatus::Running);
        first.create_run(&run, "").unwrap();
        let error = second.update_run(&run).unwrap_err();
        assert!(
            matches!(&error, StoreError::Held { owner, .. } if owner == first.owner()),
            "{error}"
        );
        assert!(error.to_string().contains("is being run by"), "{error}");
        assert_eq!(
            second.run("01A").unwrap().unwrap().status,
            RunStatus::Running
        );

        // The first process stops renewing: the run reads as interrupted,
        // and another process may take it over.
        sql(
            &first,
            "UPDATE flow_runs SET lease_until = now() - interval '1 second'",
        );
        assert_eq!(
            second.run("01A").unwrap().unwrap().status,
            RunStatus::Interrupted
        );
        let listed: Vec<RunStatus> = second.runs().map(|r| r.unwrap().status).collect();
        assert_eq!(listed, [RunStatus::Interrupted]);
        second.update_run(&run).unwrap();
        assert_eq!(
            second.holder("01A").unwrap().as_deref(),
            Some(second.owner())
        );
        assert!(matches!(
            first.update_run(&run),
            Err(StoreError::Held { .. })
        ));
        // An ended run may be written by anyone.
        let ended = conformance::run_record("01A", RunStatus::Succeeded);
        second.update_run(&ended).unwrap();
        first.update_run(&ended).unwrap();
    }

    #[test]
    fn leases_are_renewed_while_the_process_lives() {
        let url = flow_test_artifacts::postgres::server().database();
        let options = PostgresOptions {
            lease: Duration::from_millis(300),
            ..PostgresOptions::default()
        };
        let store = PostgresStore::open(&url, options).unwrap();
        store
            .create_run(&conformance::run_record("01A", RunStatus::Running), "")
            .unwrap();
        sql(
            &store,
            "UPDATE flow_runs SET lease_until = now() - interval '1 second'",
        );
        // The next renewal (every 100 ms) holds it again.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while store.run("01A").unwrap().unwrap().status != RunStatus::Running {
            assert!(std::time::Instant::now() < deadline, "never renewed");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_database_of_a_newer_flow_is_refused() {
        let url = flow_test_artifacts::postgres::server().database();
        let store = PostgresStore::open(&url, PostgresOptions::default()).unwrap();
        sql(
            &store,
            "INSERT INTO flow_schema (version, description) VALUES (999, 'from the future')",
        );
        let error = PostgresStore::open(&url, PostgresOptions::default()).unwrap_err();
        assert!(matches!(error, StoreError::Schema { .. }), "{error}");
        assert!(error.to_string().contains("schema version 999"), "{error}");
    }

    #[test]
    fn an_unreachable_server_is_an_error_that_names_it_without_its_password() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let options = PostgresOptions {
            retry_for: Duration::from_millis(300),
            ..PostgresOptions::default()
        };
        let url = format!("postgres://flow:hunter2@127.0.0.1:{port}/runs");
        let error = PostgresStore::open(&url, options).unwrap_err().to_string();
        assert!(
            error.contains(&format!(
                "PostgreSQL at postgres://flow@127.0.0.1:{port}/runs"
            )),
            "{error}"
        );
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn operations_wait_for_a_restarted_server() {
        // Tests running meanwhile on the same server wait for it too.
        let store = store();
        store
            .create_run(&conformance::run_record("01A", RunStatus::Running), "")
            .unwrap();
        let server = flow_test_artifacts::postgres::server();
        server.restart();
        store
            .put_node(
                "01A",
                &conformance::node_record("m", 1, NodeStatus::Running),
                None,
            )
            .unwrap();
        // Down while a write is tried: it waits for the server's return.
        server.stop();
        let starter = std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            flow_test_artifacts::postgres::server().start();
        });
        store
            .put_node(
                "01A",
                &conformance::node_record("n", 0, NodeStatus::Succeeded),
                None,
            )
            .unwrap();
        starter.join().unwrap();
        assert_eq!(store.nodes("01A").unwrap().len(), 2);
    }

    #[test]
    fn like_patterns_match_only_the_prefix() {
        assert_eq!(like_prefix("01A"), "01A%");
        assert_eq!(like_prefix("a_b%c\\"), "a\\_b\\%c\\\\%");
    }
}
