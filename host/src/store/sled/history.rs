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

/// Decoded batches with their numbers, in the order they were done; or
/// the first error met, with its batch's number.
type Done<T> = Result<Vec<(usize, Part<T>)>, (usize, StoreError)>;

/// Batches handed from the reading thread to the decoding ones, numbered.
struct Queue {
    receiver: Mutex<mpsc::Receiver<(usize, Entries)>>,
    failed: AtomicBool,
}

impl Queue {
    /// The next batch, until the reader is done and none are left.
    fn next(&self) -> Option<(usize, Entries)> {
        self.receiver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv()
            .ok()
    }

    /// Decodes batches until none are left. After an error, or while a
    /// panic unwinds, it takes the rest without decoding them, so that the
    /// reader never waits on a full queue, and says so to the reader
    /// through `failed`.
    fn work<C: Collect>(&self, collect: &C, prefix: usize) -> Done<C::Item> {
        let _drain = Drain(self);
        let mut done = Vec::new();
        while let Some((index, batch)) = self.next() {
            match decode_batch(collect, prefix, batch) {
                Ok(part) => done.push((index, part)),
                Err(error) => {
                    self.failed.store(true, Ordering::Relaxed);
                    return Err((index, error));
                }
            }
        }
        Ok(done)
    }
}

/// Drains the queue when a decoding thread stops early.
struct Drain<'a>(&'a Queue);

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        self.0.failed.store(true, Ordering::Relaxed);
        while self.0.next().is_some() {}
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
    // Of two errors, the one earlier in key order.
    let mut parts = match (mine, theirs) {
        (Ok(mut mine), Ok(theirs)) => {
            mine.extend(theirs);
            mine
        }
        (Err((a, error)), Err((b, other))) => return Err(if a < b { error } else { other }),
        (Err((_, error)), _) | (_, Err((_, error))) => return Err(error),
    };
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

#[cfg(test)]
mod tests {
    use std::panic::AssertUnwindSafe;
    use std::time::Duration;

    use super::*;

    /// Fails at some keys, by a panic or an error naming the key.
    struct FailAt {
        keys: Vec<Vec<u8>>,
        panic: bool,
    }

    impl Collect for FailAt {
        type Item = ();

        fn node(&self, key: &[u8], _: &[u8]) -> Result<(), StoreError> {
            if !self.keys.iter().any(|bad| bad == key) {
                return Ok(());
            }
            let key = String::from_utf8_lossy(&key[2..]).into_owned();
            if self.panic {
                panic!("cannot decode {key}");
            }
            Err(StoreError::io_message(format!("cannot decode {key}")))
        }

        fn attempt(&self, _: &mut (), _: &[u8], _: &[u8]) -> Result<(), StoreError> {
            Ok(())
        }

        fn id<'a>(&self, _: &'a ()) -> &'a str {
            ""
        }
    }

    fn key(i: usize) -> Vec<u8> {
        format!("r\0n{i:06}").into_bytes()
    }

    /// A run of `batches` full batches of node entries.
    fn run(batches: usize) -> (tempfile::TempDir, sled::Tree) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let tree = db.open_tree("nodes").unwrap();
        let mut batch = sled::Batch::default();
        for i in 0..batches * HISTORY_BATCH {
            batch.insert(key(i), &b"{}"[..]);
        }
        tree.apply_batch(batch).unwrap();
        (dir, tree)
    }

    /// What `read` gives for `collect`, on a thread of its own: a hang
    /// fails the test instead of stopping it.
    fn read_to_end(
        tree: &sled::Tree,
        collect: FailAt,
    ) -> std::thread::Result<Result<Vec<()>, StoreError>> {
        let (sender, receiver) = mpsc::channel();
        let entries = tree.scan_prefix(b"r\0");
        std::thread::spawn(move || {
            let result =
                std::panic::catch_unwind(AssertUnwindSafe(|| read(entries, 2, &collect, || 0)));
            let _ = sender.send(result);
        });
        receiver
            .recv_timeout(Duration::from_secs(120))
            .expect("the read returns")
    }

    #[test]
    fn a_big_run_is_read_whole_in_order() {
        let (_dir, tree) = run(12);
        let collect = FailAt {
            keys: Vec::new(),
            panic: false,
        };
        let items = read_to_end(&tree, collect).unwrap().unwrap();
        assert_eq!(items.len(), 12 * HISTORY_BATCH);
    }

    #[test]
    fn a_panic_while_decoding_reaches_the_caller_instead_of_a_hang() {
        let (_dir, tree) = run(30);
        // In the first batch (the decoding thread's), and late.
        for at in [0, 25 * HISTORY_BATCH] {
            let collect = FailAt {
                keys: vec![key(at)],
                panic: true,
            };
            assert!(read_to_end(&tree, collect).is_err(), "the panic at {at}");
        }
    }

    #[test]
    fn of_two_errors_the_earlier_in_key_order_is_reported() {
        let (_dir, tree) = run(30);
        let collect = FailAt {
            keys: vec![key(3 * HISTORY_BATCH), key(25 * HISTORY_BATCH)],
            panic: false,
        };
        let error = read_to_end(&tree, collect).unwrap().unwrap_err();
        assert!(error.to_string().contains("n003072"), "{error}");
    }
}
