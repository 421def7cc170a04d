//! When writes reach the disk: group commit for strict durability, a
//! periodic flush for batched durability.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::options::Durability;
use crate::store::{StoreError, WorkflowStore};

/// Flushes the store as the run's durability asks.
pub(super) struct Persistence {
    store: Arc<dyn WorkflowStore>,
    durability: Durability,
    state: Mutex<Commits>,
    flushed: Notify,
    flushes: AtomicU64,
}

/// Group commit bookkeeping: tickets are handed out in order; a flush
/// covers every ticket handed out before it started.
#[derive(Default)]
struct Commits {
    requested: u64,
    completed: u64,
    flushing: bool,
    failed: Option<String>,
}

impl Persistence {
    pub(super) fn new(store: Arc<dyn WorkflowStore>, durability: Durability) -> Self {
        Self {
            store,
            durability,
            state: Mutex::new(Commits::default()),
            flushed: Notify::new(),
            flushes: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Commits> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Flushes done so far.
    pub(super) fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    /// With strict durability, returns once everything written before the
    /// call is on disk. Callers that arrive while a flush runs wait for the
    /// next one, which covers them all: one flush per group, not per node.
    pub(super) async fn commit(&self) -> Result<(), StoreError> {
        if self.durability != Durability::Strict {
            return Ok(());
        }
        let ticket = {
            let mut state = self.lock();
            state.requested += 1;
            state.requested
        };
        loop {
            let notified = self.flushed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let target = {
                let mut state = self.lock();
                if let Some(message) = &state.failed {
                    return Err(StoreError::Io {
                        message: message.clone(),
                    });
                }
                if state.completed >= ticket {
                    return Ok(());
                }
                if state.flushing {
                    None
                } else {
                    state.flushing = true;
                    Some(state.requested)
                }
            };
            if let Some(target) = target {
                let result = self.flush().await;
                let mut state = self.lock();
                state.flushing = false;
                match &result {
                    Ok(()) => state.completed = state.completed.max(target),
                    Err(error) => state.failed = Some(error.to_string()),
                }
                drop(state);
                self.flushed.notify_waiters();
                continue;
            }
            notified.await;
        }
    }

    /// Flushes now, off the async workers (a flush waits for the disk).
    pub(super) async fn flush(&self) -> Result<(), StoreError> {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.flush())
            .await
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()))
    }

    /// With batched durability, flushes every `interval` until `stop`.
    pub(super) fn start_interval(self: &Arc<Self>, interval: Duration, stop: CancellationToken) {
        if self.durability != Durability::Batched {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = ticker.tick() => {
                        if let Err(error) = this.flush().await {
                            tracing::warn!("periodic flush of the run database failed: {error}");
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
    use crate::store::MemoryStore;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_commits_share_flushes() {
        let persistence = Arc::new(Persistence::new(
            Arc::new(MemoryStore::new()),
            Durability::Strict,
        ));
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
        let persistence = Persistence::new(Arc::new(MemoryStore::new()), Durability::Strict);
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
        let persistence = Persistence::new(Arc::new(MemoryStore::new()), Durability::Batched);
        persistence.commit().await.unwrap();
        assert_eq!(persistence.flushes(), 0);
    }
}
