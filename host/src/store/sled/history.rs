//! Reading a run's records back: a node's key is followed by those of its
//! attempts, so one pass over the run's keys groups them. A big run's
//! records are decoded on a second thread while the store reads on.

use super::{decode, io};
use crate::store::{AttemptRecord, NodeHistory, StoreError};

/// Entries of the nodes tree, as read.
type Entries = Vec<(sled::IVec, sled::IVec)>;

/// Entries read from the nodes tree at a time by [`read`].
const HISTORY_BATCH: usize = 1024;

/// The next entries of `entries`, up to [`HISTORY_BATCH`].
fn next_batch(entries: &mut sled::Iter) -> Result<Entries, StoreError> {
    entries
        .by_ref()
        .take(HISTORY_BATCH)
        .collect::<Result<_, _>>()
        .map_err(io)
}

/// Node records with their attempts, from a run's entries in key order: a
/// node's key is followed by those of its attempts.
struct Grouped {
    prefix: usize,
    nodes: Vec<NodeHistory>,
    attempts: Vec<AttemptRecord>,
    current: Option<Vec<u8>>,
}

impl Grouped {
    fn new(prefix: usize) -> Self {
        Self {
            prefix,
            nodes: Vec::new(),
            attempts: Vec::new(),
            current: None,
        }
    }

    fn add(&mut self, key: &[u8], bytes: &[u8]) -> Result<(), StoreError> {
        let rest = &key[self.prefix..];
        match rest.iter().position(|&b| b == 0) {
            Some(end) if self.current.as_deref() == Some(&rest[..end]) => {
                self.attempts.push(decode(key, bytes)?);
            }
            // Attempts of a node without a record: not shown.
            Some(_) => {}
            None => {
                if let Some(last) = self.nodes.last_mut() {
                    last.attempts = std::mem::take(&mut self.attempts);
                }
                self.current = Some(rest.to_vec());
                self.nodes
                    .push(NodeHistory::new(decode(key, bytes)?, Vec::new()));
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Vec<NodeHistory> {
        if let Some(last) = self.nodes.last_mut() {
            last.attempts = self.attempts;
        }
        self.nodes
    }
}

/// The nodes of a run, each with its attempts, in key order, from
/// `entries` (the run's keys, whose first `prefix` bytes are the run's).
/// `nodes` tells, when the run turns out to be big, about how many nodes
/// it has.
pub(super) fn read(
    mut entries: sled::Iter,
    prefix: usize,
    nodes: impl FnOnce() -> usize,
) -> Result<Vec<NodeHistory>, StoreError> {
    let mut grouped = Grouped::new(prefix);
    let first = next_batch(&mut entries)?;
    if first.len() < HISTORY_BATCH {
        for (key, bytes) in &first {
            grouped.add(key, bytes)?;
        }
        return Ok(grouped.finish());
    }
    // Room for every node at once: a big run's records are not moved
    // again and again while they are read.
    grouped.nodes.reserve(nodes());
    // A big run: its records are decoded on a thread of their own
    // while this one reads on (the two take about as long).
    std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Entries>(8);
        let decoding = scope.spawn(move || {
            for batch in receiver {
                for (key, bytes) in &batch {
                    grouped.add(key, bytes)?;
                }
            }
            Ok::<_, StoreError>(grouped)
        });
        let mut read = Ok(());
        let mut batch = first;
        loop {
            let full = batch.len() == HISTORY_BATCH;
            // A send fails when the decoder stopped at an error.
            if sender.send(batch).is_err() || !full {
                break;
            }
            match next_batch(&mut entries) {
                Ok(next) => batch = next,
                Err(error) => {
                    read = Err(error);
                    break;
                }
            }
        }
        drop(sender);
        let grouped = decoding
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        read?;
        Ok(grouped.finish())
    })
}
