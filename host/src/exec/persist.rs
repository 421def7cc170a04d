//! When state changes reach the store and the disk.
//!
//! Node tasks hand their records to [`Persistence::put`], which queues
//! them in memory (at the flush, a later record of the same node or attempt
//! replaces an earlier one). A flush hands everything pending to the store as one
//! atomic batch and makes it durable. With strict durability a node's
//! completion waits for a flush ([`Persistence::commit`]); completions that
//! arrive together share it (group commit). With batched durability a timer
//! flushes every `persistence_interval`, and the run's end flushes the rest.
//! Either way a state change costs the engine a map insert, and the store
//! sees one batch per flush instead of a write per change.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::options::Durability;
use crate::store::{AttemptRecord, NodeRecord, RunRecord, StoreError, WorkflowStore};

/// A node's record, and maybe one of its attempts, on their way to the
/// store.
type Write = (NodeRecord, Option<AttemptRecord>);

/// The records of a run on their way to the store.
///
/// Node tasks hand records over through a channel and count commits with
/// atomics: none of them takes a lock. Only a flush takes the receiving
/// end, which also keeps flushes in order.
pub(super) struct Persistence {
    store: Arc<dyn WorkflowStore>,
    run_id: String,
    durability: Durability,
    queue: mpsc::UnboundedSender<Write>,
    received: tokio::sync::Mutex<mpsc::UnboundedReceiver<Write>>,
    /// Group commit: tickets are handed out in order; a flush covers every
    /// ticket handed out before it started.
    requested: AtomicU64,
    completed: AtomicU64,
    flushing: AtomicBool,
    /// Set once a flush failed: the run must stop rather than lose state.
    failed: OnceLock<String>,
    flushed: Notify,
    flushes: AtomicU64,
}

/// Records not yet handed to the store: the latest of each node and of
/// each attempt.
#[derive(Default)]
struct Pending {
    nodes: HashMap<String, NodeRecord>,
    attempts: HashMap<(String, u32), AttemptRecord>,
}

impl Persistence {
    pub(super) fn new(
        store: Arc<dyn WorkflowStore>,
        run_id: String,
        durability: Durability,
    ) -> Self {
        let (queue, received) = mpsc::unbounded_channel();
        Self {
            store,
            run_id,
            durability,
            queue,
            received: tokio::sync::Mutex::new(received),
            requested: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            flushing: AtomicBool::new(false),
            failed: OnceLock::new(),
            flushed: Notify::new(),
            flushes: AtomicU64::new(0),
        }
    }

    /// Flushes done so far.
    pub(super) fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    fn failure(&self) -> Result<(), StoreError> {
        match self.failed.get() {
            Some(message) => Err(StoreError::io_message(message.clone())),
            None => Ok(()),
        }
    }

    /// Queues a node's record, and one of its attempts, for the next flush:
    /// they reach the store together, in one atomic batch. A later record of
    /// the same node (or attempt) replaces this one. Fails once a flush has
    /// failed: the run must stop rather than lose state.
    pub(super) fn put(
        &self,
        node: NodeRecord,
        attempt: Option<AttemptRecord>,
    ) -> Result<(), StoreError> {
        self.failure()?;
        // The receiver lives as long as `self`.
        let _ = self.queue.send((node, attempt));
        Ok(())
    }

    /// With strict durability, returns once everything queued before the
    /// call is on disk. Callers that arrive while a flush runs wait for the
    /// next one, which covers them all: one flush per group, not per node.
    pub(super) async fn commit(&self) -> Result<(), StoreError> {
        if self.durability != Durability::Strict {
            return Ok(());
        }
        let ticket = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        loop {
            let notified = self.flushed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.failure()?;
            if self.completed.load(Ordering::SeqCst) >= ticket {
                return Ok(());
            }
            if self
                .flushing
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                // Every record queued before a ticket up to `target` was
                // queued before that ticket was taken, so this flush sees it.
                let target = self.requested.load(Ordering::SeqCst);
                let result = self.flush().await;
                if result.is_ok() {
                    self.completed.fetch_max(target, Ordering::SeqCst);
                }
                self.flushing.store(false, Ordering::SeqCst);
                self.flushed.notify_waiters();
                continue;
            }
            notified.await;
        }
    }

    /// Hands everything queued to the store and makes it durable, off the
    /// async workers (a flush waits for the disk).
    pub(super) async fn flush(&self) -> Result<(), StoreError> {
        self.flush_then(None).await
    }

    /// Writes what is queued, then the run's final header, and makes both
    /// durable in one flush: a reader never sees a run that ended with
    /// node records still missing, even after a crash.
    pub(super) async fn conclude(&self, run: RunRecord) -> Result<(), StoreError> {
        self.flush_then(Some(run)).await
    }

    async fn flush_then(&self, run: Option<RunRecord>) -> Result<(), StoreError> {
        let mut received = self.received.lock().await;
        let mut pending = Pending::default();
        while let Ok((node, attempt)) = received.try_recv() {
            if let Some(attempt) = attempt {
                pending
                    .attempts
                    .insert((node.node_id.clone(), attempt.number), attempt);
            }
            pending.nodes.insert(node.node_id.clone(), node);
        }
        self.flushes.fetch_add(1, Ordering::Relaxed);
        let (store, run_id) = (self.store.clone(), self.run_id.clone());
        let result = tokio::task::spawn_blocking(move || {
            let nodes: Vec<NodeRecord> = pending.nodes.into_values().collect();
            let attempts: Vec<(String, AttemptRecord)> = pending
                .attempts
                .into_iter()
                .map(|((node, _), attempt)| (node, attempt))
                .collect();
            if !nodes.is_empty() || !attempts.is_empty() {
                store.put_batch(&run_id, &nodes, &attempts)?;
            }
            if let Some(run) = &run {
                store.update_run(run)?;
            }
            store.flush()
        })
        .await
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()));
        drop(received);
        if let Err(error) = &result {
            let _ = self.failed.set(error.to_string());
        }
        result
    }

    /// With batched durability, flushes every `interval` until `stop`.
    pub(super) fn start_interval(self: &Arc<Self>, interval: Duration, stop: CancellationToken) {
        if self.durability != Durability::Batched {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            // A library caller's interval may be longer than a clock counts.
            let mut ticker = tokio::time::interval(interval.min(crate::options::MAX_DURATION));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = ticker.tick() => {
                        if let Err(error) = this.flush().await {
                            tracing::warn!(run = %this.run_id, "flushing the run database failed: {error}");
                        }
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Failure, FailureKind, NodeStatus, RunStatus};
    use crate::store::MemoryStore;
    use crate::store::conformance::{attempt_record, node_record, run_record};

    fn persistence(durability: Durability) -> (Arc<MemoryStore>, Arc<Persistence>) {
        let store = Arc::new(MemoryStore::new());
        store
            .create_run(&run_record("01A", RunStatus::Running), "")
            .unwrap();
        let persistence = Arc::new(Persistence::new(store.clone(), "01A".into(), durability));
        (store, persistence)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_commits_share_flushes() {
        let (_, persistence) = persistence(Durability::Strict);
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let persistence = persistence.clone();
            tasks.push(tokio::spawn(async move { persistence.commit().await }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let flushes = persistence.flushes();
        assert!((1..=64).contains(&flushes), "{flushes}");
    }

    #[tokio::test]
    async fn every_commit_is_covered_by_a_flush_that_started_after_it() {
        let (_, persistence) = persistence(Durability::Strict);
        persistence.commit().await.unwrap();
        persistence.commit().await.unwrap();
        assert_eq!(
            persistence.flushes(),
            2,
            "sequential commits each need their own flush"
        );
    }

    #[tokio::test]
    async fn batched_commits_do_not_flush() {
        let (_, persistence) = persistence(Durability::Batched);
        persistence.commit().await.unwrap();
        assert_eq!(persistence.flushes(), 0);
    }

    #[tokio::test]
    async fn writes_reach_the_store_at_the_flush_latest_first() {
        let (store, persistence) = persistence(Durability::Batched);
        let running = node_record("n", 0, NodeStatus::Running);
        persistence.put(running, Some(attempt_record(1))).unwrap();
        let mut failed = attempt_record(1);
        failed.error = Some(Failure::new(FailureKind::Retryable, "busy"));
        persistence
            .put(node_record("n", 0, NodeStatus::Running), Some(failed))
            .unwrap();
        persistence
            .put(
                node_record("n", 0, NodeStatus::Running),
                Some(attempt_record(2)),
            )
            .unwrap();
        persistence
            .put(node_record("n", 0, NodeStatus::Succeeded), None)
            .unwrap();
        assert!(
            store.nodes("01A").unwrap().is_empty(),
            "nothing before the flush"
        );

        persistence.flush().await.unwrap();
        let nodes = store.nodes("01A").unwrap();
        assert_eq!(nodes.len(), 1);
        assert_eq!(
            nodes[0].status,
            NodeStatus::Succeeded,
            "the latest record wins"
        );
        let attempts = store.attempts("01A", "n").unwrap();
        assert_eq!(attempts.len(), 2, "every attempt is kept");
        assert_eq!(attempts[0].error.as_ref().unwrap().message, "busy");
    }
}
