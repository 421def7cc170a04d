//! A bound on the attempts running at once across every run of an engine,
//! shared fairly between the runs that wait.
//!
//! Each run already bounds its own nodes (`max_concurrency`); a process
//! that runs many workflows at once (`flow serve`) also needs a bound for
//! all of them together, or a few wide runs take every core. Slots are
//! handed out round robin over the runs that wait, one at a time, so a run
//! with one node waiting gets its turn as often as a run with a thousand.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

/// At most `n` attempts at once, fair between runs: see
/// [`WorkflowEngine::with_attempt_slots`](super::WorkflowEngine::with_attempt_slots).
#[derive(Debug)]
pub struct AttemptSlots {
    state: Mutex<State>,
    total: usize,
}

#[derive(Debug, Default)]
struct State {
    free: usize,
    /// Waiters by run; a run's queue is removed when it empties.
    waiting: BTreeMap<Arc<str>, VecDeque<oneshot::Sender<()>>>,
    /// The run that got the last slot handed over.
    last: Option<Arc<str>>,
}

impl AttemptSlots {
    /// Room for `total` attempts at once (at least one).
    pub fn new(total: usize) -> Arc<Self> {
        let total = total.max(1);
        Arc::new(Self {
            state: Mutex::new(State {
                free: total,
                ..State::default()
            }),
            total,
        })
    }

    /// How many attempts may run at once.
    pub fn total(&self) -> usize {
        self.total
    }

    /// How many attempts run now.
    pub fn in_use(&self) -> usize {
        self.total - self.lock().free
    }

    /// How many attempts wait for a slot.
    pub fn waiting(&self) -> usize {
        self.lock().waiting.values().map(VecDeque::len).sum()
    }

    /// Waits for a slot for an attempt of run `run_id`; the slot is free
    /// again when the returned guard drops. Dropping the future before it
    /// is ready gives up the place in the queue (and a slot handed over
    /// meanwhile).
    pub async fn acquire(self: &Arc<Self>, run_id: &str) -> Slot {
        let receiver = {
            let mut state = self.lock();
            if state.free > 0 && state.waiting.is_empty() {
                state.free -= 1;
                return Slot(self.clone());
            }
            let (sender, receiver) = oneshot::channel();
            state
                .waiting
                .entry(Arc::from(run_id))
                .or_default()
                .push_back(sender);
            receiver
        };
        let mut waiter = Waiter {
            slots: self.clone(),
            receiver: Some(receiver),
        };
        let received = match waiter.receiver.as_mut() {
            Some(receiver) => receiver.await.is_ok(),
            None => false,
        };
        waiter.receiver = None;
        if !received {
            // Senders are only dropped once handed a slot or with the
            // slots themselves, which this future holds: not reached.
            tracing::error!("an attempt slot's sender was dropped; the attempt runs without one");
        }
        Slot(self.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot came free: hand it to the next run in turn, or keep it.
    fn release(&self) {
        let mut state = self.lock();
        loop {
            let next = {
                let after = state.last.clone();
                let later = after.as_ref().and_then(|last| {
                    state
                        .waiting
                        .range::<Arc<str>, _>((
                            std::ops::Bound::Excluded(last.clone()),
                            std::ops::Bound::Unbounded,
                        ))
                        .next()
                        .map(|(run, _)| run.clone())
                });
                later.or_else(|| state.waiting.keys().next().cloned())
            };
            let Some(run) = next else {
                state.free += 1;
                return;
            };
            let (sender, emptied) = match state.waiting.get_mut(&run) {
                Some(queue) => (queue.pop_front(), queue.is_empty()),
                None => (None, true),
            };
            if emptied {
                state.waiting.remove(&run);
            }
            state.last = Some(run);
            // A waiter that went away takes no slot: try the next.
            if let Some(sender) = sender
                && sender.send(()).is_ok()
            {
                return;
            }
        }
    }
}

/// A running attempt's slot; freed on drop.
#[derive(Debug)]
pub struct Slot(Arc<AttemptSlots>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// A place in the queue; gives back a slot handed over after its attempt
/// stopped waiting.
struct Waiter {
    slots: Arc<AttemptSlots>,
    receiver: Option<oneshot::Receiver<()>>,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if let Some(mut receiver) = self.receiver.take() {
            receiver.close();
            if receiver.try_recv().is_ok() {
                self.slots.release();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_bound_and_are_shared_round_robin_between_runs() {
        let slots = AttemptSlots::new(1);
        let first = slots.acquire("a").await;
        assert_eq!(slots.in_use(), 1);
        // Run `a` queues three attempts, then `b` one: `b` does not wait
        // behind all of `a`'s.
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (run, n) in [("a", 1), ("a", 2), ("a", 3), ("b", 1)] {
            let (shared, order) = (slots.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _slot = shared.acquire(run).await;
                order.lock().unwrap().push(format!("{run}{n}"));
            }));
            while slots.waiting() < tasks.len() {
                tokio::task::yield_now().await;
            }
        }
        drop(first);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["a1", "b1", "a2", "a3"]);
        assert_eq!(slots.in_use(), 0);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_takes_no_slot() {
        let slots = AttemptSlots::new(1);
        let held = slots.acquire("a").await;
        let waiting = {
            let slots = slots.clone();
            tokio::spawn(async move {
                let _slot = slots.acquire("b").await;
            })
        };
        while slots.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        waiting.abort();
        let _ = waiting.await;
        drop(held);
        assert_eq!(slots.in_use(), 0, "the abandoned place holds nothing");
        let _again = slots.acquire("c").await;
        assert_eq!(slots.in_use(), 1);
    }
}
