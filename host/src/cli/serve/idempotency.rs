//! Idempotency keys of run starts: a client that sends the same
//! `Idempotency-Key` again (after a timeout, say) gets the run its first
//! request started, not a second one.
//!
//! Keys are kept in memory for a day, at most 100,000 of them (the oldest
//! go first), each with the SHA-256 digest of its request rather than the
//! request (up to the 2 MB a body may have), so a server left running for
//! months stays small; a restart forgets them.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How long a key is remembered.
pub const KEEP: Duration = Duration::from_secs(24 * 3600);
const MAX_KEYS: usize = 100_000;

/// The keys seen, with what each started.
#[derive(Debug, Default)]
pub struct Keys {
    runs: HashMap<String, Started>,
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
    /// What `key` started, if it was seen within a day.
    pub fn get(&mut self, key: &str) -> Option<&Started> {
        self.expire(Instant::now());
        self.runs.get(key)
    }

    /// Remembers what `key` started.
    pub fn insert(&mut self, key: String, started: Started) {
        let now = Instant::now();
        self.expire(now);
        while self.runs.len() >= MAX_KEYS {
            match self.order.pop_front() {
                Some((_, old)) => self.runs.remove(&old),
                None => break,
            };
        }
        self.order.push_back((now, key.clone()));
        self.runs.insert(key, started);
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

    fn started(run_id: &str) -> Started {
        Started {
            request: digest("r"),
            run_id: run_id.into(),
        }
    }

    #[test]
    fn keys_are_remembered_and_bounded() {
        let mut keys = Keys::default();
        keys.insert("a".into(), started("1"));
        assert_eq!(keys.get("a").map(|s| s.run_id.as_str()), Some("1"));
        assert!(keys.get("b").is_none());
        for i in 0..MAX_KEYS {
            keys.insert(format!("k{i}"), started("2"));
        }
        assert_eq!(keys.runs.len(), MAX_KEYS);
        assert!(keys.get("a").is_none(), "the oldest goes first");
        assert!(keys.get(&format!("k{}", MAX_KEYS - 1)).is_some());
    }

    #[test]
    fn keys_expire_after_a_day() {
        let mut keys = Keys::default();
        keys.insert("a".into(), started("1"));
        let later = Instant::now() + KEEP + Duration::from_secs(1);
        keys.expire(later);
        assert!(keys.runs.is_empty() && keys.order.is_empty());
    }
}
