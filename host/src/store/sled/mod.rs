//! The default store: an embedded sled database.
//!
//! Layout, all values JSON:
//!
//! - tree `runs`: run id -> run header;
//! - tree `definitions`: run id -> the workflow text;
//! - tree `sinks`: run id -> the ids of the nodes whose outputs are the
//!   workflow's (apart from the header, which every listing reads: a
//!   workflow of 10,000 independent nodes has 10,000 of them);
//! - tree `nodes`: `run id, 0, node id` -> the node's record with its
//!   attempts, `[record, attempts, spill]`; a node whose attempts grew
//!   heavy keeps those from number `spill` on in entries of their own,
//!   `run id, 0, node id, 0, attempt number (4 bytes, big-endian)` ->
//!   attempt record (see [`value`]). One tree, so a node and its attempts
//!   are written in one atomic batch;
//! - tree `outputs`: `run id, 0, node id` -> an output of at least
//!   [`SEPARATE_OUTPUT`] bytes, whose node record then holds none. sled
//!   rewrites a page whole as the records in it change, and a large output
//!   beside the records of running nodes would be rewritten with them. It
//!   is written before its record, and sled makes writes durable in order,
//!   so a record on disk has its output on disk;
//! - tree `active`: ids of the runs in progress;
//! - the default tree: `schema_version`.
//!
//! sled lets one process at a time open a database. So when `open` succeeds,
//! no other process runs anything in it: every run still listed as active
//! was left by a process that stopped, and is marked interrupted.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::{
    AttemptRecord, NodeHistory, NodeRecord, Records, RunRecord, StoreError, WorkflowStore,
};
use crate::report::{JsonText, NodeStatus, RunStatus, Timestamp};

mod history;
mod value;

/// Version of the layout above; bumped on incompatible changes. Version 6
/// keeps a node's attempts in its entry; version 5 keeps large outputs in
/// tree `outputs`; version 4 stores failures as `{kind, message}`.
/// Databases of versions 3 (failures as plain text) to 5 (each attempt in
/// an entry of its own) are read as they are and marked 6 on opening.
pub const SCHEMA_VERSION: u32 = 6;

/// Oldest schema version this flow reads.
const OLDEST_READABLE: u32 = 3;

/// Files and directories sled keeps in a database directory.
const SLED_FILES: &[&str] = &["conf", "db", "blobs", "snap"];

/// Where the run database is when nothing says otherwise:
/// `~/.local/share/flow/db` on Linux (the platform's local data directory).
pub fn default_path() -> Option<PathBuf> {
    dirs::data_local_dir().map(|dir| dir.join("flow").join("db"))
}

/// Outputs of at least this many bytes are kept in tree `outputs`.
pub const SEPARATE_OUTPUT: usize = 64 << 10;

/// Memory sled may use to cache pages.
const CACHE_BYTES: u64 = 64 << 20;

/// Name of the file, inside the database directory, that says which
/// process holds the database.
const OWNER_FILE: &str = "flow-owner";

/// Runs kept in a sled database on disk.
#[derive(Debug, Clone)]
pub struct SledStore {
    path: PathBuf,
    db: sled::Db,
    runs: sled::Tree,
    definitions: sled::Tree,
    sinks: sled::Tree,
    nodes: sled::Tree,
    outputs: sled::Tree,
    active: sled::Tree,
    /// The last fire of each schedule: its name, and the time in
    /// milliseconds (8 bytes, big endian).
    schedules: sled::Tree,
    /// Held by each write of node records, which reads the values it
    /// rewrites: two writers of one node would drop each other's attempts.
    writing: Arc<Mutex<()>>,
}

impl SledStore {
    /// Opens (or creates) the database in directory `path`, and marks the
    /// runs that a stopped process left in progress as interrupted.
    ///
    /// A directory that holds other files than a database's is refused, so
    /// that a wrong `path` never fills, say, a home directory with database
    /// files. sled may panic on damaged files; the panic is caught and
    /// reported as [`StoreError::Open`], but the process's panic hook still
    /// sees it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        check_directory(path)?;
        let db = open_db(path)?;
        let tree = |name: &str| db.open_tree(name).map_err(|error| open_error(path, error));
        let store = Self {
            path: path.to_path_buf(),
            runs: tree("runs")?,
            definitions: tree("definitions")?,
            sinks: tree("sinks")?,
            nodes: tree("nodes")?,
            outputs: tree("outputs")?,
            active: tree("active")?,
            schedules: tree("schedules")?,
            writing: Arc::default(),
            db,
        };
        store.check_schema()?;
        store.mark_interrupted()?;
        // Best effort: only used to say who holds the database.
        let _ = std::fs::write(path.join(OWNER_FILE), owner_description());
        Ok(store)
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check_schema(&self) -> Result<(), StoreError> {
        let found = self.db.get("schema_version").map_err(io)?;
        let version = found
            .as_ref()
            .map(|bytes| std::str::from_utf8(bytes).ok()?.parse::<u32>().ok());
        match version {
            Some(Some(SCHEMA_VERSION)) => Ok(()),
            // A new database, or an older layout this flow reads as it is.
            None | Some(Some(OLDEST_READABLE..SCHEMA_VERSION)) => {
                self.db
                    .insert("schema_version", SCHEMA_VERSION.to_string().as_bytes())
                    .map_err(io)?;
                Ok(())
            }
            Some(_) => Err(StoreError::Schema {
                path: self.path.clone(),
                found: String::from_utf8_lossy(found.as_deref().unwrap_or_default()).into_owned(),
                expected: SCHEMA_VERSION,
            }),
        }
    }

    fn mark_interrupted(&self) -> Result<(), StoreError> {
        let mut marked = false;
        for key in self.active.iter().keys() {
            let key = key.map_err(io)?;
            let run_id = String::from_utf8_lossy(&key).into_owned();
            if let Some(mut run) = self.run(&run_id)?
                && run.status == RunStatus::Running
            {
                run.status = RunStatus::Interrupted;
                self.runs.insert(key.as_ref(), encode(&run)?).map_err(io)?;
            }
            self.active.remove(&key).map_err(io)?;
            marked = true;
        }
        if marked {
            self.flush()?;
        }
        Ok(())
    }
}

/// Refuses a path that is a file, or a directory with files a database
/// does not have.
fn check_directory(path: &Path) -> Result<(), StoreError> {
    let not_a_database = |why: String| StoreError::NotADatabase {
        path: path.to_path_buf(),
        why,
    };
    if path.is_file() {
        return Err(not_a_database(
            "it is a file; the run database is a directory".into(),
        ));
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        // Missing (sled creates it) or unreadable (sled says why).
        return Ok(());
    };
    let mut names: Vec<String> = entries
        .filter_map(|entry| Some(entry.ok()?.file_name().to_string_lossy().into_owned()))
        .collect();
    let ours =
        |name: &String| name == OWNER_FILE || SLED_FILES.iter().any(|file| name.starts_with(file));
    if names.is_empty() || names.iter().any(|name| name == "conf" || name == "db") {
        return Ok(());
    }
    names.retain(|name| !ours(name));
    names.sort();
    if names.is_empty() {
        return Ok(());
    }
    let shown: Vec<&str> = names.iter().take(3).map(String::as_str).collect();
    let more = match names.len() {
        n if n > 3 => format!(" and {} more", n - 3),
        _ => String::new(),
    };
    Err(not_a_database(format!(
        "the directory holds other files ({}{more}); give a new or empty directory",
        shown.join(", ")
    )))
}

/// Opens sled, turning its lock error and its panics on damaged files into
/// messages.
fn open_db(path: &Path) -> Result<sled::Db, StoreError> {
    let mut waited = Duration::ZERO;
    loop {
        let opened = std::panic::catch_unwind(|| {
            sled::Config::new()
                .path(path)
                // sled caches up to 1 GiB by default; records of a run are
                // written once and read rarely.
                .cache_capacity(CACHE_BYTES)
                // The engine flushes when its durability option says; sled's
                // own flusher thread would also keep the database (and its
                // lock) alive for up to its interval after the store is
                // dropped.
                .flush_every_ms(None)
                .open()
        });
        match opened {
            Ok(Err(error)) if waited < OWN_LOCK_WAIT && held_by_this_process(path, &error) => {
                // A store of this process on the same directory was dropped,
                // but sled's I/O threads may hold its file (and so its lock)
                // for a moment longer while they finish.
                std::thread::sleep(OWN_LOCK_POLL);
                waited += OWN_LOCK_POLL;
            }
            Ok(result) => return result.map_err(|error| open_error(path, error)),
            Err(_) => {
                return Err(StoreError::Open {
                    path: path.to_path_buf(),
                    message: DAMAGED.into(),
                    source: None,
                });
            }
        }
    }
}

/// How long opening waits for a lock that this very process holds.
const OWN_LOCK_WAIT: Duration = Duration::from_secs(2);
const OWN_LOCK_POLL: Duration = Duration::from_millis(5);

/// Whether `error` is sled's lock error and the owner file names this
/// process.
fn held_by_this_process(path: &Path, error: &sled::Error) -> bool {
    if !error.to_string().contains("could not acquire lock") {
        return false;
    }
    let Ok(owner) = std::fs::read_to_string(path.join(OWNER_FILE)) else {
        return false;
    };
    owner
        .strip_prefix("process ")
        .and_then(|rest| rest.split(' ').next())
        == Some(std::process::id().to_string().as_str())
}

const DAMAGED: &str = "it is not a flow run database, or it is damaged; move it away and start \
     a new one (the runs in it are lost to flow)";

/// Which process this is, for the owner file.
fn owner_description() -> String {
    let command: Vec<String> = std::env::args().collect();
    format!(
        "process {} since {} ({})",
        std::process::id(),
        crate::report::Timestamp::now(),
        command.join(" ")
    )
}

fn node_key(run_id: &str, node_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(run_id.len() + node_id.len() + 6);
    key.extend_from_slice(run_id.as_bytes());
    key.push(0);
    key.extend_from_slice(node_id.as_bytes());
    key
}

fn run_prefix(run_id: &str) -> Vec<u8> {
    node_key(run_id, "")
}

fn attempt_prefix(run_id: &str, node_id: &str) -> Vec<u8> {
    let mut key = node_key(run_id, node_id);
    key.push(0);
    key
}

fn attempt_key(run_id: &str, node_id: &str, number: u32) -> Vec<u8> {
    let mut key = attempt_prefix(run_id, node_id);
    key.extend_from_slice(&number.to_be_bytes());
    key
}

fn io(error: sled::Error) -> StoreError {
    StoreError::io(error)
}

fn open_error(path: &Path, error: sled::Error) -> StoreError {
    let message = error.to_string();
    if message.contains("could not acquire lock") {
        let owner = std::fs::read_to_string(path.join(OWNER_FILE))
            .map(|owner| format!(" ({})", owner.trim()))
            .unwrap_or_default();
        return StoreError::Locked {
            path: path.to_path_buf(),
            owner,
        };
    }
    let message = match &error {
        // sled says "Unsupported" of files it cannot read, such as random
        // bytes ("created using a sled version earlier than 0.29").
        sled::Error::Corruption { .. }
        | sled::Error::Unsupported(_)
        | sled::Error::ReportableBug(_) => DAMAGED.to_string(),
        sled::Error::Io(error) => error.to_string(),
        _ => message,
    };
    StoreError::Open {
        path: path.to_path_buf(),
        message,
        source: Some(Box::new(error)),
    }
}

fn decode<T: serde::de::DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).replace('\0', "/"),
        source,
    })
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(StoreError::io)
}

/// Whether a node record may have its output kept in tree `outputs`.
fn output_may_be_apart(node: &NodeRecord) -> bool {
    node.output.is_none() && node.status == NodeStatus::Succeeded
}

impl SledStore {
    /// Puts back the output of a succeeded node kept in tree `outputs`.
    fn separate_output(&self, run_id: &str, node: &mut NodeRecord) -> Result<(), StoreError> {
        if !output_may_be_apart(node) {
            return Ok(());
        }
        let key = node_key(run_id, &node.node_id);
        if let Some(bytes) = self.outputs.get(&key).map_err(io)? {
            node.output = Some(decode(&key, &bytes)?);
        }
        Ok(())
    }

    /// Puts back the outputs of a run's succeeded nodes kept in tree
    /// `outputs`. `nodes` come in key order, as read, so one pass over the
    /// run's few outputs there, each read and dropped in turn, finds them:
    /// not a lookup per node (a succeeded node whose output is `null` has
    /// none in its record either).
    fn separate_outputs<'a>(
        &self,
        run_id: &str,
        nodes: impl Iterator<Item = &'a mut NodeRecord>,
    ) -> Result<(), StoreError> {
        let prefix = run_prefix(run_id);
        let mut apart = self.outputs.scan_prefix(&prefix);
        let prefix = prefix.len();
        let mut next = apart.next().transpose().map_err(io)?;
        for node in nodes {
            if next.is_none() {
                break;
            }
            if !output_may_be_apart(node) {
                continue;
            }
            let id = node.node_id.as_bytes();
            while let Some((key, _)) = &next
                && &key[prefix..] < id
            {
                next = apart.next().transpose().map_err(io)?;
            }
            if let Some((key, bytes)) = &next
                && &key[prefix..] == id
            {
                node.output = Some(decode(key, bytes)?);
            }
        }
        Ok(())
    }

    /// What `collect` makes of the run's entries, a big run's decoded on
    /// two threads.
    fn read_run<C: history::Collect>(
        &self,
        run_id: &str,
        collect: &C,
    ) -> Result<Vec<C::Item>, StoreError> {
        let prefix = run_prefix(run_id);
        // The header's count is only a hint: a damaged one must neither
        // fail the read nor reserve more than a very big run needs.
        let count = || {
            self.run(run_id)
                .ok()
                .flatten()
                .map_or(0, |run| run.nodes.min(1 << 20))
        };
        history::read(
            self.nodes.scan_prefix(&prefix),
            prefix.len(),
            collect,
            count,
        )
    }

    /// The attempts a node keeps in entries of its own, by number.
    fn spilled(&self, run_id: &str, node_id: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        self.nodes
            .scan_prefix(attempt_prefix(run_id, node_id))
            .map(|entry| {
                let (key, bytes) = entry.map_err(io)?;
                decode(&key, &bytes)
            })
            .collect()
    }

    /// All of a node's attempts, by number: those its value keeps
    /// (`inline`), and when it has a `spill`, those kept apart.
    fn all_attempts(
        &self,
        run_id: &str,
        node_id: &str,
        mut inline: Vec<AttemptRecord>,
        spill: value::Spill,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        if spill.is_some() {
            value::append(&mut inline, self.spilled(run_id, node_id)?);
        }
        Ok(inline)
    }

    /// Adds to `batch` the value of `node` (replacing its stored record),
    /// with `new` attempts (sorted by number) placed among those stored
    /// (see [`value`]). Returns the node's output when it is to be kept in
    /// tree `outputs`, with its key.
    fn put_node_value<'a>(
        &self,
        batch: &mut sled::Batch,
        run_id: &str,
        node: Option<&'a NodeRecord>,
        node_id: &str,
        new: &[&AttemptRecord],
    ) -> Result<Option<Apart<'a>>, StoreError> {
        let key = node_key(run_id, node_id);
        let stored = self.nodes.get(&key).map_err(io)?;
        let (node, inline, spill) = match (node, stored) {
            (Some(node), Some(bytes)) => {
                let (inline, spill) = value::attempts(&key, &bytes).unwrap_or_else(|error| {
                    // Its attempts cannot be read anyway: the record is
                    // replaced, and the attempts from now on kept apart.
                    tracing::warn!("replacing a damaged record: {error}");
                    (Vec::new(), Some(1))
                });
                (Some(Cow::Borrowed(node)), inline, spill)
            }
            (Some(node), None) => {
                // Attempts written before their node's first record were
                // kept apart: so are the rest.
                let prefix = attempt_prefix(run_id, node_id);
                let apart = self.nodes.get_gt(&prefix).map_err(io)?;
                let spill = apart
                    .is_some_and(|(key, _)| key.starts_with(&prefix))
                    .then_some(1);
                (Some(Cow::Borrowed(node)), Vec::new(), spill)
            }
            // Attempts without their node's record: kept apart when it has
            // no readable one, as all attempts were in version 5.
            (None, None) => (None, Vec::new(), Some(1)),
            (None, Some(bytes)) => match value::node_and_attempts(&key, &bytes) {
                Ok((node, inline, spill)) => (Some(Cow::Owned(node)), inline, spill),
                Err(error) => {
                    tracing::warn!("keeping attempts apart from a damaged record: {error}");
                    (None, Vec::new(), Some(1))
                }
            },
        };
        let (inline, spill, apart) = value::place(inline, spill, new);
        for attempt in apart {
            batch.insert(
                attempt_key(run_id, node_id, attempt.number),
                encode(attempt)?,
            );
        }
        let Some(node) = node else {
            return Ok(None);
        };
        let (record, output) = split_output(node);
        batch.insert(key.as_slice(), value::encode(&record, &inline, spill)?);
        Ok(output.map(|output| (key, output)))
    }
}

/// A node's output to keep in tree `outputs`, with its key.
type Apart<'a> = (Vec<u8>, Cow<'a, JsonText>);

/// `node` without its output when that is to be kept in tree `outputs`,
/// and that output.
fn split_output(node: Cow<'_, NodeRecord>) -> (Cow<'_, NodeRecord>, Option<Cow<'_, JsonText>>) {
    let large = |output: &JsonText| output.len() >= SEPARATE_OUTPUT;
    match node {
        Cow::Borrowed(node) => match &node.output {
            Some(output) if large(output) => (
                Cow::Owned(node.without_output()),
                Some(Cow::Borrowed(output)),
            ),
            _ => (Cow::Borrowed(node), None),
        },
        Cow::Owned(mut node) => {
            let output = node.output.take_if(|output| large(output));
            (Cow::Owned(node), output.map(Cow::Owned))
        }
    }
}

impl WorkflowStore for SledStore {
    fn create_run(&self, run: &RunRecord, definition: &str) -> Result<(), StoreError> {
        self.definitions
            .insert(run.run_id.as_bytes(), definition.as_bytes())
            .map_err(io)?;
        self.update_run(run)
    }

    fn update_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        let key = run.run_id.as_bytes();
        if run.status == RunStatus::Running {
            self.active.insert(key, &[]).map_err(io)?;
        }
        match &run.sinks {
            Some(sinks) => {
                self.sinks.insert(key, encode(sinks)?).map_err(io)?;
                let header = RunRecord {
                    sinks: None,
                    ..run.clone()
                };
                self.runs.insert(key, encode(&header)?).map_err(io)?;
            }
            None => {
                self.runs.insert(key, encode(run)?).map_err(io)?;
            }
        }
        if run.status != RunStatus::Running {
            self.active.remove(key).map_err(io)?;
        }
        Ok(())
    }

    fn put_batch(
        &self,
        run_id: &str,
        nodes: &[NodeRecord],
        attempts: &[(String, AttemptRecord)],
    ) -> Result<(), StoreError> {
        // Each node once, with all of its attempts in this batch: a later
        // record of the same node replaces an earlier one.
        let mut writes: BTreeMap<&str, (Option<&NodeRecord>, Vec<&AttemptRecord>)> =
            BTreeMap::new();
        for node in nodes {
            writes.entry(&node.node_id).or_default().0 = Some(node);
        }
        for (node_id, attempt) in attempts {
            writes.entry(node_id).or_default().1.push(attempt);
        }
        let _writing = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        let mut batch = sled::Batch::default();
        let mut outputs = Vec::new();
        for (node_id, (node, mut new)) in writes {
            new.sort_by_key(|attempt| attempt.number);
            outputs.extend(self.put_node_value(&mut batch, run_id, node, node_id, &new)?);
        }
        // Before the records that lead to them: sled makes writes durable
        // in order, so a record on disk has its output on disk.
        for (key, output) in outputs {
            self.outputs.insert(key, output.as_bytes()).map_err(io)?;
        }
        self.nodes.apply_batch(batch).map_err(io)
    }

    fn attempts(&self, run_id: &str, node_id: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        let key = node_key(run_id, node_id);
        let (inline, spill) = match self.nodes.get(&key).map_err(io)? {
            Some(bytes) => value::attempts(&key, &bytes)?,
            None => (Vec::new(), Some(1)),
        };
        self.all_attempts(run_id, node_id, inline, spill)
    }

    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.runs
            .get(run_id.as_bytes())
            .map_err(io)?
            .map(|bytes| decode(run_id.as_bytes(), &bytes))
            .transpose()
    }

    fn definition(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .definitions
            .get(run_id.as_bytes())
            .map_err(io)?
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }

    fn nodes(&self, run_id: &str) -> Result<Vec<NodeRecord>, StoreError> {
        let mut nodes = self.read_run(run_id, &history::Nodes)?;
        self.separate_outputs(run_id, nodes.iter_mut())?;
        super::sort_records(&mut nodes, |node| node);
        Ok(nodes)
    }

    fn node(&self, run_id: &str, node_id: &str) -> Result<Option<NodeHistory>, StoreError> {
        let read = |key: &[u8], id: &str| -> Result<Option<NodeHistory>, StoreError> {
            let Some(bytes) = self.nodes.get(key).map_err(io)? else {
                return Ok(None);
            };
            let (mut node, inline, spill) = value::node_and_attempts(key, &bytes)?;
            self.separate_output(run_id, &mut node)?;
            let attempts = self.all_attempts(run_id, id, inline, spill)?;
            Ok(Some(NodeHistory::new(node, attempts)))
        };
        let mut mine: Vec<NodeHistory> = read(&node_key(run_id, node_id), node_id)?
            .into_iter()
            .collect();
        // A map node's elements are `node[0]`, `node[1]`, ...
        if !node_id.contains('[') {
            let prefix = node_key(run_id, &format!("{node_id}["));
            for key in self.nodes.scan_prefix(&prefix).keys() {
                let key = key.map_err(io)?;
                if key[prefix.len()..].contains(&0) {
                    continue;
                }
                let id = String::from_utf8_lossy(&key[run_prefix(run_id).len()..]).into_owned();
                mine.extend(read(&key, &id)?);
            }
        }
        Ok(super::one(mine, node_id))
    }

    fn history(&self, run_id: &str) -> Result<Vec<NodeHistory>, StoreError> {
        let mut nodes = self.read_run(run_id, &history::Grouped)?;
        self.separate_outputs(run_id, nodes.iter_mut().map(|history| &mut history.node))?;
        Ok(super::nest(nodes))
    }

    fn runs(&self) -> Records<'_, RunRecord> {
        Box::new(self.runs.iter().rev().map(|entry| {
            let (key, bytes) = entry.map_err(io)?;
            decode(&key, &bytes)
        }))
    }

    fn runs_before(&self, before: Option<&str>) -> Records<'_, RunRecord> {
        let Some(before) = before else {
            return self.runs();
        };
        Box::new(self.runs.range(..before.as_bytes()).rev().map(|entry| {
            let (key, bytes) = entry.map_err(io)?;
            decode(&key, &bytes)
        }))
    }

    fn runs_with_prefix(&self, prefix: &str) -> Records<'_, RunRecord> {
        Box::new(self.runs.scan_prefix(prefix.as_bytes()).rev().map(|entry| {
            let (key, bytes) = entry.map_err(io)?;
            decode(&key, &bytes)
        }))
    }

    fn sinks(&self, run_id: &str) -> Result<Option<Vec<String>>, StoreError> {
        match self.sinks.get(run_id.as_bytes()).map_err(io)? {
            Some(bytes) => decode(run_id.as_bytes(), &bytes),
            // Runs of older versions keep them in the header.
            None => Ok(self.run(run_id)?.and_then(|run| run.sinks)),
        }
    }

    fn delete_run(&self, run_id: &str) -> Result<bool, StoreError> {
        let existed = self.runs.remove(run_id.as_bytes()).map_err(io)?.is_some();
        self.definitions.remove(run_id.as_bytes()).map_err(io)?;
        self.sinks.remove(run_id.as_bytes()).map_err(io)?;
        self.active.remove(run_id.as_bytes()).map_err(io)?;
        for tree in [&self.nodes, &self.outputs] {
            let mut batch = sled::Batch::default();
            for key in tree.scan_prefix(run_prefix(run_id)).keys() {
                batch.remove(key.map_err(io)?);
            }
            tree.apply_batch(batch).map_err(io)?;
        }
        Ok(existed)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(io)?;
        Ok(())
    }

    fn last_fire(&self, name: &str) -> Result<Option<Timestamp>, StoreError> {
        let found = self.schedules.get(name.as_bytes()).map_err(io)?;
        Ok(found.and_then(|bytes| {
            let bytes: [u8; 8] = bytes.as_ref().try_into().ok()?;
            Some(Timestamp(u64::from_be_bytes(bytes)))
        }))
    }

    fn set_last_fire(&self, name: &str, due: Timestamp) -> Result<(), StoreError> {
        self.schedules
            .insert(name.as_bytes(), &due.0.to_be_bytes())
            .map_err(io)?;
        self.schedules.flush().map_err(io)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
