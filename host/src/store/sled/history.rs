//! Reading a run's records back: a node's key is followed by those of its
//! attempts, so one pass over the run's keys groups them. A big run's
//! records are decoded on a second thread while the store reads on.

use super::{decode, io};
use crate::store::{AttemptRecord, NodeHistory, NodeRecord, StoreError};

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

/// What a pass over a run's entries collects, in key order.
pub(super) trait Collect: Send {
    /// What the pass returns.
    type Records: Send;

    /// Makes room for about `nodes` nodes.
    fn reserve(&mut self, nodes: usize);

    /// Takes the entry at `key`, whose first `prefix` bytes are the run's.
    fn add(&mut self, prefix: usize, key: &[u8], bytes: &[u8]) -> Result<(), StoreError>;

    /// What was collected.
    fn finish(self) -> Self::Records;
}

/// Whether `key`, past the run's `prefix`, is an attempt's (its node id is
/// followed by a separator), and where its node id ends.
fn node_id_end(prefix: usize, key: &[u8]) -> Option<usize> {
    key[prefix..].iter().position(|&b| b == 0)
}

/// Node records with their attempts: a node's key is followed by those of
/// its attempts.
#[derive(Default)]
pub(super) struct Grouped {
    nodes: Vec<NodeHistory>,
    attempts: Vec<AttemptRecord>,
    current: Option<Vec<u8>>,
}

impl Collect for Grouped {
    type Records = Vec<NodeHistory>;

    fn reserve(&mut self, nodes: usize) {
        self.nodes.reserve(nodes);
    }

    fn add(&mut self, prefix: usize, key: &[u8], bytes: &[u8]) -> Result<(), StoreError> {
        let rest = &key[prefix..];
        match node_id_end(prefix, key) {
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

/// Node records only; attempts are passed over.
#[derive(Default)]
pub(super) struct Nodes(Vec<NodeRecord>);

impl Collect for Nodes {
    type Records = Vec<NodeRecord>;

    fn reserve(&mut self, nodes: usize) {
        self.0.reserve(nodes);
    }

    fn add(&mut self, prefix: usize, key: &[u8], bytes: &[u8]) -> Result<(), StoreError> {
        if node_id_end(prefix, key).is_none() {
            self.0.push(decode(key, bytes)?);
        }
        Ok(())
    }

    fn finish(self) -> Vec<NodeRecord> {
        self.0
    }
}

/// What `collect` gathers from `entries` (the run's keys, whose first
/// `prefix` bytes are the run's), in key order. `nodes` tells, when the
/// run turns out to be big, about how many nodes it has.
pub(super) fn read<C: Collect>(
    mut entries: sled::Iter,
    prefix: usize,
    mut collect: C,
    nodes: impl FnOnce() -> usize,
) -> Result<C::Records, StoreError> {
    let first = next_batch(&mut entries)?;
    if first.len() < HISTORY_BATCH {
        for (key, bytes) in &first {
            collect.add(prefix, key, bytes)?;
        }
        return Ok(collect.finish());
    }
    // Room for every node at once: a big run's records are not moved
    // again and again while they are read.
    collect.reserve(nodes());
    // A big run: its records are decoded on a thread of their own
    // while this one reads on (the two take about as long).
    std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Entries>(8);
        let decoding = scope.spawn(move || {
            for batch in receiver {
                for (key, bytes) in &batch {
                    collect.add(prefix, key, bytes)?;
                }
            }
            Ok::<_, StoreError>(collect)
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
        let collected = decoding
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        read?;
        Ok(collected.finish())
    })
}
