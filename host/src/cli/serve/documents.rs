//! Run documents (`GET /api/v1/runs/{id}`) of runs that ended, kept
//! serialised: an ended run does not change until it is resumed, and a
//! run of 10,000 nodes takes tens of milliseconds to read and write out.
//! An entry is used only while the run's header still says what it said
//! when the entry was made (status, end, resumes); at most 256 MiB are
//! kept, the least recently used go first.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;
use flow_host::store::RunRecord;

const MAX_BYTES: usize = 256 << 20;

/// What an entry was made from.
pub(super) type Version = (String, Option<u64>, u32);

pub(super) fn version(run: &RunRecord) -> Version {
    (
        run.status.to_string(),
        run.finished_at.map(|t| t.0),
        run.resumes,
    )
}

/// The cache.
#[derive(Default)]
pub struct Documents {
    inner: Mutex<Inner>,
    /// Held while an ended run's document is made, so that many requests
    /// for one big run make it once.
    pub making: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, (Version, Bytes)>,
    order: VecDeque<String>,
    bytes: usize,
}

impl Documents {
    /// The document of `run` if it is kept and current.
    pub fn get(&self, run: &RunRecord) -> Option<Bytes> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (kept, body) = inner.entries.get(&run.run_id)?;
        if *kept != version(run) {
            return None;
        }
        let body = body.clone();
        if let Some(at) = inner.order.iter().position(|id| *id == run.run_id) {
            let id = inner.order.remove(at).unwrap_or_default();
            inner.order.push_back(id);
        }
        Some(body)
    }

    /// Keeps the document of an ended run.
    pub fn put(&self, run: &RunRecord, body: Bytes) {
        if body.len() > MAX_BYTES / 4 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, old)) = inner.entries.remove(&run.run_id) {
            inner.bytes -= old.len();
            inner.order.retain(|id| *id != run.run_id);
        }
        inner.bytes += body.len();
        inner.order.push_back(run.run_id.clone());
        inner
            .entries
            .insert(run.run_id.clone(), (version(run), body));
        while inner.bytes > MAX_BYTES {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some((_, old)) = inner.entries.remove(&oldest) {
                inner.bytes -= old.len();
            }
        }
    }
}
