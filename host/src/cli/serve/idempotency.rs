//! Idempotency keys of run starts: a client that sends the same
//! `Idempotency-Key` again (after a timeout, say) gets the run its first
//! request started, not a second one.
//!
//! Keys are kept in memory for a day, at most 100,000 of them (the oldest
//! go first), each with the SHA-256 digest of its request rather than the
//! request (up to the 2 MB a body may have), so a server left running for
//! months stays small; a restart forgets them.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a key is remembered.
pub const KEEP: Duration = Duration::from_secs(24 * 3600);
const MAX_KEYS: usize = 100_000;

/// What one key started: empty until its first request's run started
/// (or after that start failed). Held while a run starts, so that a second
/// request with the same key waits for the first and gets its run, while
/// requests with other keys go on.
pub type Slot = Arc<tokio::sync::Mutex<Option<Started>>>;

/// The keys seen, with what each started.
#[derive(Debug, Default)]
pub struct Keys {
    runs: HashMap<String, Slot>,
    order: VecDeque<(Instant, String)>,
}

/// What a key's first request asked for and started.
#[derive(Debug, Clone)]
pub struct Started {
    /// The digest of the request: workflow and parameters, as text.
    pub request: [u8; 32],
    /// The run it started.
    pub run_id: String,
}

/// The digest a request is remembered by.
pub fn digest(request: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(request.as_bytes()).into()
}

impl Keys {
    /// The slot of `key`: the one of a request within a day, or a new one.
    pub fn slot(&mut self, key: &str) -> Slot {
        let now = Instant::now();
        self.expire(now);
        if let Some(slot) = self.runs.get(key) {
            return slot.clone();
        }
        while self.runs.len() >= MAX_KEYS {
            match self.order.pop_front() {
                Some((_, old)) => self.runs.remove(&old),
                None => break,
            };
        }
        let slot = Slot::default();
        self.order.push_back((now, key.to_string()));
        self.runs.insert(key.to_string(), slot.clone());
        slot
    }

    /// Forgets `key` if `slot` is still its slot and holds nothing: its
    /// run did not start, so the key neither counts against the bound nor
    /// stays a day.
    pub fn forget_unused(&mut self, key: &str, slot: &Slot) {
        let unused = self.runs.get(key).is_some_and(|held| {
            Arc::ptr_eq(held, slot) && held.try_lock().is_ok_and(|entry| entry.is_none())
        });
        if unused {
            self.runs.remove(key);
            self.order.retain(|(_, old)| old != key);
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) < KEEP {
                break;
            }
            if let Some((_, key)) = self.order.pop_front() {
                self.runs.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_remembered_and_bounded() {
        let mut keys = Keys::default();
        let slot = keys.slot("a");
        assert!(
            Arc::ptr_eq(&slot, &keys.slot("a")),
            "the same key, the same slot"
        );
        assert!(!Arc::ptr_eq(&slot, &keys.slot("b")));
        for i in 0..MAX_KEYS {
            keys.slot(&format!("k{i}"));
        }
        assert_eq!(keys.runs.len(), MAX_KEYS);
        assert!(!keys.runs.contains_key("a"), "the oldest goes first");
        assert!(keys.runs.contains_key(&format!("k{}", MAX_KEYS - 1)));
    }

    #[test]
    fn keys_expire_after_a_day() {
        let mut keys = Keys::default();
        keys.slot("a");
        let later = Instant::now() + KEEP + Duration::from_secs(1);
        keys.expire(later);
        assert!(keys.runs.is_empty() && keys.order.is_empty());
    }

    #[tokio::test]
    async fn a_key_waits_only_for_its_own_start() {
        let mut keys = Keys::default();
        let first = keys.slot("a");
        let held = first.lock().await;
        // Another key's slot is free while the first start goes on.
        assert!(keys.slot("b").try_lock().is_ok());
        assert!(keys.slot("a").try_lock().is_err(), "the same key waits");
        drop(held);
        *keys.slot("a").lock().await = Some(Started {
            request: digest("r"),
            run_id: "1".into(),
        });
        assert_eq!(
            keys.slot("a")
                .lock()
                .await
                .as_ref()
                .map(|s| s.run_id.as_str()),
            Some("1")
        );
        // A key whose start failed is forgotten; one that started is kept.
        let failed = keys.slot("c");
        keys.forget_unused("c", &failed);
        assert!(!keys.runs.contains_key("c") && keys.order.iter().all(|(_, k)| k != "c"));
        let started = keys.slot("a");
        keys.forget_unused("a", &started);
        assert!(keys.runs.contains_key("a"));
    }
}
