//! Reading a run's entries back: a node's entry holds its record and its
//! first attempts, and the attempts it spilled follow it in key order (see
//! [`super::value`]). A big run's entries are decoded on two threads: one
//! decodes while the other reads on, then joins the decoding.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError, mpsc};

use super::{decode, io, value};
use crate::store::{NodeHistory, NodeRecord, StoreError};

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

/// What is made of a run's entries.
pub(super) trait Collect: Sync {
    /// What is made of a node's entry and the attempts after it.
    type Item: Send;

    /// Decodes a node's entry.
    fn node(&self, key: &[u8], bytes: &[u8]) -> Result<Self::Item, StoreError>;

    /// Takes an attempt that `item`'s node keeps in an entry of its own.
    fn attempt(&self, item: &mut Self::Item, key: &[u8], bytes: &[u8]) -> Result<(), StoreError>;

    /// The id of `item`'s node.
    fn id<'a>(&self, item: &'a Self::Item) -> &'a str;
}

/// Node records with all their attempts.
pub(super) struct Grouped;

impl Collect for Grouped {
    type Item = NodeHistory;

    fn node(&self, key: &[u8], bytes: &[u8]) -> Result<NodeHistory, StoreError> {
        let (node, attempts, _) = value::node_and_attempts(key, bytes)?;
        Ok(NodeHistory::new(node, attempts))
    }

    fn attempt(&self, item: &mut NodeHistory, key: &[u8], bytes: &[u8]) -> Result<(), StoreError> {
        value::append(&mut item.attempts, [decode(key, bytes)?]);
        Ok(())
    }

    fn id<'a>(&self, item: &'a NodeHistory) -> &'a str {
        &item.node.node_id
    }
}

/// Node records only; attempts are passed over.
pub(super) struct Nodes;

impl Collect for Nodes {
    type Item = NodeRecord;

    fn node(&self, key: &[u8], bytes: &[u8]) -> Result<NodeRecord, StoreError> {
        value::node(key, bytes)
    }

    fn attempt(&self, _: &mut NodeRecord, _: &[u8], _: &[u8]) -> Result<(), StoreError> {
        Ok(())
    }

    fn id<'a>(&self, item: &'a NodeRecord) -> &'a str {
        &item.node_id
    }
}

/// Where the node id of an attempt's `key` ends, past the run's `prefix`;
/// `None` for a node's key.
fn node_id_end(prefix: usize, key: &[u8]) -> Option<usize> {
    key[prefix..].iter().position(|&b| b == 0)
}

/// A batch of entries, decoded: attempts at its start belong to a node of
/// an earlier batch.
struct Part<T> {
    leading: Entries,
    items: Vec<T>,
}

fn decode_batch<C: Collect>(
    collect: &C,
    prefix: usize,
    batch: Entries,
) -> Result<Part<C::Item>, StoreError> {
    let mut part = Part {
        leading: Vec::new(),
        items: Vec::with_capacity(batch.len()),
    };
    for (key, bytes) in batch {
        match (node_id_end(prefix, &key), part.items.last_mut()) {
            (None, _) => part.items.push(collect.node(&key, &bytes)?),
            (Some(_), None) => part.leading.push((key, bytes)),
            (Some(end), Some(last)) => {
                // Attempts of a node without a record are not shown.
                if collect.id(last).as_bytes() == &key[prefix..prefix + end] {
                    collect.attempt(last, &key, &bytes)?;
                }
            }
        }
    }
    Ok(part)
}

/// Appends decoded batches, in order, to `into`.
fn join<C: Collect>(
    collect: &C,
    prefix: usize,
    parts: impl IntoIterator<Item = Part<C::Item>>,
    into: &mut Vec<C::Item>,
) -> Result<(), StoreError> {
    for part in parts {
        for (key, bytes) in &part.leading {
            let end = node_id_end(prefix, key).unwrap_or(key.len() - prefix);
            if let Some(last) = into.last_mut()
                && collect.id(last).as_bytes() == &key[prefix..prefix + end]
            {
                collect.attempt(last, key, bytes)?;
            }
        }
        into.extend(part.items);
    }
    Ok(())
}

/// Decoded batches with their numbers, in the order they were done.
type Done<T> = Vec<(usize, Part<T>)>;

/// Batches handed from the reading thread to the decoding ones, numbered.
struct Queue {
    receiver: Mutex<mpsc::Receiver<(usize, Entries)>>,
    failed: AtomicBool,
}

impl Queue {
    /// Decodes batches until none are left. After an error it takes the
    /// rest without decoding them, so that the reader never waits on a
    /// full queue, and says so to the reader through `failed`.
    fn work<C: Collect>(&self, collect: &C, prefix: usize) -> Result<Done<C::Item>, StoreError> {
        let mut done = Vec::new();
        let mut error = None;
        loop {
            let next = self
                .receiver
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .recv();
            let Ok((index, batch)) = next else { break };
            if error.is_some() {
                continue;
            }
            match decode_batch(collect, prefix, batch) {
                Ok(part) => done.push((index, part)),
                Err(failure) => {
                    error = Some(failure);
                    self.failed.store(true, Ordering::Relaxed);
                }
            }
        }
        error.map_or(Ok(done), Err)
    }
}

/// What `collect` makes of `entries` (the run's keys, whose first `prefix`
/// bytes are the run's), in key order. `nodes` tells, when the run turns
/// out to be big, about how many nodes it has.
pub(super) fn read<C: Collect>(
    mut entries: sled::Iter,
    prefix: usize,
    collect: &C,
    nodes: impl FnOnce() -> usize,
) -> Result<Vec<C::Item>, StoreError> {
    let first = next_batch(&mut entries)?;
    if first.len() < HISTORY_BATCH {
        let mut items = Vec::new();
        join(
            collect,
            prefix,
            [decode_batch(collect, prefix, first)?],
            &mut items,
        )?;
        return Ok(items);
    }
    // Room for every node at once: a big run's records are not moved
    // again and again while they are read.
    let mut items = Vec::with_capacity(nodes());
    let (sender, receiver) = mpsc::sync_channel(8);
    let queue = Queue {
        receiver: Mutex::new(receiver),
        failed: AtomicBool::new(false),
    };
    let (mine, theirs, read) = std::thread::scope(|scope| {
        let decoding = scope.spawn(|| queue.work(collect, prefix));
        let mut read = Ok(());
        let mut batch = first;
        for index in 0.. {
            let full = batch.len() == HISTORY_BATCH;
            if sender.send((index, batch)).is_err() || !full || queue.failed.load(Ordering::Relaxed)
            {
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
        // Done reading: this thread decodes what is left, too.
        let mine = queue.work(collect, prefix);
        let theirs = decoding
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (mine, theirs, read)
    });
    let mut parts = mine?;
    parts.extend(theirs?);
    read?;
    parts.sort_unstable_by_key(|(index, _)| *index);
    join(
        collect,
        prefix,
        parts.into_iter().map(|(_, part)| part),
        &mut items,
    )?;
    Ok(items)
}
