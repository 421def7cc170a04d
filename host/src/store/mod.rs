//! Persistence of runs: the [`WorkflowStore`] trait and its implementations.
//!
//! The design's WorkflowStore saves and loads a whole workflow's data at
//! once. Here each run is a small header record and each node a record of
//! its own, so a node's state change writes one key whatever the size of the
//! workflow; the workflow file's text is stored once, when the run starts.
//!
//! [`SledStore`] keeps runs in an embedded sled database on disk;
//! [`PostgresStore`] keeps them in PostgreSQL, shared by several hosts;
//! [`MemoryStore`] keeps them in memory, for tests and library users who do
//! not need persistence.

mod error;
mod memory;
mod postgres;
mod records;
mod sled;
mod view;

pub use error::StoreError;
pub use memory::MemoryStore;
pub use postgres::{
    CancelRequest, Claimed, PostgresOptions, PostgresStore, TaskQueue, hide_password,
    is_postgres_url,
};
pub use records::{
    AttemptRecord, GuestLine, LineKind, NodeRecord, ParentLink, RunRecord, element_id,
};
pub use sled::SCHEMA_VERSION;
pub use sled::{SledStore, default_path};
pub use view::{NodeDocument, RunDocument};

/// Records read one at a time, so that a reader holds only what it shows.
/// A record that cannot be decoded is an `Err` among them; the others
/// still come.
pub type Records<'a, T> = Box<dyn Iterator<Item = Result<T, StoreError>> + 'a>;

/// A node's record with its attempts, in order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NodeHistory {
    /// The node's record.
    pub node: NodeRecord,
    /// Its attempts, by number.
    pub attempts: Vec<AttemptRecord>,
    /// For a `map` node, the history of each element that started, in
    /// list order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elements: Vec<NodeHistory>,
}

impl NodeHistory {
    /// A record and its attempts, without elements.
    pub fn new(node: NodeRecord, attempts: Vec<AttemptRecord>) -> Self {
        Self {
            node,
            attempts,
            elements: Vec::new(),
        }
    }
}

/// Sorts records into file order, each map node's elements after it in
/// list order.
pub(crate) fn sort_records<T>(records: &mut [T], node: impl Fn(&T) -> &NodeRecord) {
    let key = |record: &T| {
        let node = node(record);
        (node.index, node.element.map_or(0, |e| u64::from(e) + 1))
    };
    if records.is_sorted_by_key(key) {
        return;
    }
    // Sorted by position, then each record moved once, in place: records
    // are large, and a sort that moves them at each step (or copies them
    // into new vectors) costs a run of 100,000 nodes a tenth of `flow
    // status`.
    let mut order: Vec<((usize, u64), usize)> = records
        .iter()
        .enumerate()
        .map(|(at, record)| (key(record), at))
        .collect();
    order.sort_unstable();
    let mut from: Vec<usize> = order.into_iter().map(|(_, at)| at).collect();
    permute(records, &mut from);
}

/// Puts `items[from[i]]` at `i` for every `i`, one cycle of the
/// permutation `from` at a time; `from` is left as the identity.
fn permute<T>(items: &mut [T], from: &mut [usize]) {
    for start in 0..items.len() {
        let mut at = start;
        loop {
            let source = std::mem::replace(&mut from[at], at);
            if source == start {
                break;
            }
            items.swap(at, source);
            at = source;
        }
    }
}

/// Histories in file order with each element's moved under its map node.
pub(crate) fn nest(mut flat: Vec<NodeHistory>) -> Vec<NodeHistory> {
    sort_records(&mut flat, |history| &history.node);
    if flat.iter().all(|history| history.node.element.is_none()) {
        return flat;
    }
    let mut nested: Vec<NodeHistory> = Vec::with_capacity(flat.len());
    for history in flat {
        match nested.last_mut() {
            Some(parent)
                if history.node.element.is_some()
                    && parent.node.element.is_none()
                    && parent.node.node_id == history.node.map_node() =>
            {
                parent.elements.push(history);
            }
            // An element whose map node has no record: shown on its own.
            _ => nested.push(history),
        }
    }
    nested
}

/// The history of `node_id` among `mine` (its records and, for a map node,
/// its elements'), with the elements under it.
pub(crate) fn one(mine: Vec<NodeHistory>, node_id: &str) -> Option<NodeHistory> {
    let mut nested = nest(mine);
    let at = nested.iter().position(|h| h.node.node_id == node_id)?;
    Some(nested.swap_remove(at))
}

/// Where runs are kept: the design's WorkflowStore (save, load, list,
/// delete), with a record per node and per attempt.
///
/// Writes need not be durable until [`WorkflowStore::flush`] returns; the
/// engine calls it as the run's durability option says.
pub trait WorkflowStore: Send + Sync {
    /// Records a new run and the workflow text it runs.
    fn create_run(&self, run: &RunRecord, definition: &str) -> Result<(), StoreError>;

    /// Replaces a run's header (status, end time); one without
    /// [`RunRecord::sinks`] keeps those stored.
    fn update_run(&self, run: &RunRecord) -> Result<(), StoreError>;

    /// Writes node records and attempt records (each with its node's id) in
    /// one atomic write: after a crash, all of them or none are there. A
    /// record replaces the one of the same node, or of the same attempt.
    fn put_batch(
        &self,
        run_id: &str,
        nodes: &[NodeRecord],
        attempts: &[(String, AttemptRecord)],
    ) -> Result<(), StoreError>;

    /// Writes a node's record and, atomically with it, one of its attempts.
    fn put_node(
        &self,
        run_id: &str,
        node: &NodeRecord,
        attempt: Option<&AttemptRecord>,
    ) -> Result<(), StoreError> {
        let attempts: Vec<(String, AttemptRecord)> = attempt
            .map(|attempt| (node.node_id.clone(), attempt.clone()))
            .into_iter()
            .collect();
        self.put_batch(run_id, std::slice::from_ref(node), &attempts)
    }

    /// The run with this id.
    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError>;

    /// The sinks of a run (see [`RunRecord::sinks`]).
    fn sinks(&self, run_id: &str) -> Result<Option<Vec<String>>, StoreError> {
        Ok(self.run(run_id)?.and_then(|run| run.sinks))
    }

    /// The workflow text a run was started with.
    fn definition(&self, run_id: &str) -> Result<Option<String>, StoreError>;

    /// The node records of a run, in workflow file order, each map node's
    /// element records after it in list order. Nodes that never started
    /// have no record.
    fn nodes(&self, run_id: &str) -> Result<Vec<NodeRecord>, StoreError>;

    /// The attempts of a node, in order.
    fn attempts(&self, run_id: &str, node_id: &str) -> Result<Vec<AttemptRecord>, StoreError>;

    /// One node's record with its attempts and, for a map node, the
    /// history of each element that started; `node_id` may name an
    /// element (`node[3]`). Stores should read only that node's records.
    fn node(&self, run_id: &str, node_id: &str) -> Result<Option<NodeHistory>, StoreError> {
        let mut mine = Vec::new();
        for record in self.nodes(run_id)? {
            if record.node_id == node_id
                || (record.element.is_some() && record.map_node() == node_id)
            {
                let attempts = self.attempts(run_id, &record.node_id)?;
                mine.push(NodeHistory::new(record, attempts));
            }
        }
        Ok(one(mine, node_id))
    }

    /// Every node record of a run with its attempts, in workflow file
    /// order, the elements of a map node within its history. Stores should
    /// read them in one pass.
    fn history(&self, run_id: &str) -> Result<Vec<NodeHistory>, StoreError> {
        let flat = self
            .nodes(run_id)?
            .into_iter()
            .map(|node| {
                let attempts = self.attempts(run_id, &node.node_id)?;
                Ok(NodeHistory::new(node, attempts))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(nest(flat))
    }

    /// Every run, newest first, read as the iterator advances.
    fn runs(&self) -> Records<'_, RunRecord>;

    /// The runs older than run `before` (all with `None`), newest first:
    /// a page of runs after the last of the page before.
    fn runs_before(&self, before: Option<&str>) -> Records<'_, RunRecord> {
        match before {
            None => self.runs(),
            Some(before) => {
                let before = before.to_string();
                Box::new(
                    self.runs()
                        .filter(move |run| run.as_ref().map_or(true, |run| run.run_id < before)),
                )
            }
        }
    }

    /// The runs whose ids start with `prefix` (upper case), newest first.
    fn runs_with_prefix(&self, prefix: &str) -> Records<'_, RunRecord> {
        let prefix = prefix.to_string();
        Box::new(self.runs().filter(move |run| {
            run.as_ref()
                .map_or(true, |run| run.run_id.starts_with(&prefix))
        }))
    }

    /// Deletes a run, its nodes and their attempts; false if there was no
    /// such run.
    fn delete_run(&self, run_id: &str) -> Result<bool, StoreError>;

    /// Makes every write so far durable.
    fn flush(&self) -> Result<(), StoreError>;

    /// When schedule `name` (a workflow's `cron`) last fired, if it did.
    fn last_fire(&self, name: &str) -> Result<Option<crate::report::Timestamp>, StoreError>;

    /// Records that schedule `name` fired for time `due`.
    fn set_last_fire(&self, name: &str, due: crate::report::Timestamp) -> Result<(), StoreError>;

    /// Why a queued or interrupted run waits, as sentences: on a shared
    /// store, that no live worker can take it up (none lives, or each lacks
    /// a plugin it uses). Empty when one can, and for stores of one process.
    fn waiting(&self, run: &RunRecord) -> Result<Vec<String>, StoreError> {
        let _ = run;
        Ok(Vec::new())
    }

    /// Finds a run by its id or an unambiguous prefix of it (in any case).
    fn find_run(&self, prefix: &str) -> Result<RunRecord, StoreError> {
        if prefix.is_empty() {
            return Err(StoreError::EmptyRunId);
        }
        if let Some(run) = self.run(prefix)? {
            return Ok(run);
        }
        let mut matches = self.runs_with_prefix(&prefix.to_ascii_uppercase());
        let Some(first) = matches.next().transpose()? else {
            return Err(StoreError::UnknownRun {
                id: prefix.to_string(),
            });
        };
        match matches.take(error::MOST_COUNTED - 1).count() {
            0 => Ok(first),
            more => Err(StoreError::AmbiguousRun {
                id: prefix.to_string(),
                count: more + 1,
            }),
        }
    }
}

#[cfg(test)]
pub(crate) mod conformance {
    //! Behaviour every store must have; run against each implementation.

    use super::*;
    use crate::report::{Failure, FailureKind, JsonText, NodeStatus, RunStatus, Timestamp};

    /// A run of thousands of records, more than a store reads at a time:
    /// every node once, in file order (not the order of its id), with its
    /// own attempts in order.
    pub(crate) fn a_big_history_comes_in_file_order_with_its_attempts(store: &dyn WorkflowStore) {
        store
            .create_run(&run_record("01BIG", RunStatus::Succeeded), "")
            .unwrap();
        let n = 3000;
        let tries = |i: usize| (1..=(i % 3) as u32).collect::<Vec<u32>>();
        let nodes: Vec<NodeRecord> = (0..n)
            .map(|i| node_record(&format!("n{i}"), i, NodeStatus::Succeeded))
            .collect();
        let attempts: Vec<(String, AttemptRecord)> = (0..n)
            .flat_map(|i| {
                tries(i)
                    .into_iter()
                    .map(move |k| (format!("n{i}"), attempt_record(k)))
            })
            .collect();
        store.put_batch("01BIG", &nodes, &attempts).unwrap();
        let history = store.history("01BIG").unwrap();
        assert_eq!(history.len(), n);
        for (i, node) in history.iter().enumerate() {
            assert_eq!(
                (node.node.index, node.node.node_id.as_str()),
                (i, format!("n{i}").as_str())
            );
            assert_eq!(numbers(&node.attempts), tries(i), "attempts of n{i}");
        }
        // The node records alone, in the same order.
        let records = store.nodes("01BIG").unwrap();
        assert_eq!(records.len(), n);
        assert!(records.iter().zip(&history).all(|(a, b)| *a == b.node));
    }

    /// The numbers of `attempts`, in their order.
    pub(crate) fn numbers(attempts: &[AttemptRecord]) -> Vec<u32> {
        attempts.iter().map(|attempt| attempt.number).collect()
    }

    pub(crate) fn run_record(id: &str, status: RunStatus) -> RunRecord {
        RunRecord {
            run_id: id.to_string(),
            workflow_id: "wf".into(),
            workflow_path: "wf.toml".into(),
            status,
            created_at: Timestamp(1_000),
            finished_at: None,
            nodes: 2,
            sinks: None,
            error: None,
            failed_nodes: 0,
            workflow_sha256: "ab".repeat(32),
            plugins_dirs: vec!["plugins".into()],
            plugins: [("echo".to_string(), "cd".repeat(32))].into(),
            overrides: Default::default(),
            secrets: Vec::new(),
            resumes: 0,
            params: Default::default(),
            retry_of: None,
            scheduled_for: None,
            parent: None,
        }
    }

    pub(crate) fn node_record(id: &str, index: usize, status: NodeStatus) -> NodeRecord {
        NodeRecord {
            node_id: id.to_string(),
            index,
            action: "echo".into(),
            status,
            attempts: 1,
            started_at: Some(Timestamp(1_001)),
            finished_at: None,
            elapsed_us: None,
            output: None,
            error: None,
            fuel_used: None,
            reused_from: None,
            element: None,
            child_run: None,
        }
    }

    pub(crate) fn attempt_record(number: u32) -> AttemptRecord {
        AttemptRecord {
            number,
            started_at: Timestamp(2_000),
            elapsed_us: Some(5),
            error: None,
            fuel_used: Some(10),
            retry_delay_ms: None,
            logs: vec![GuestLine {
                kind: LineKind::Info,
                text: format!("attempt {number}"),
            }],
            http: None,
        }
    }

    pub(crate) fn round_trip(store: &dyn WorkflowStore) {
        let mut run = run_record("01A", RunStatus::Running);
        store.create_run(&run, "[workflow]\nid = \"wf\"\n").unwrap();
        let running = node_record("zeta", 0, NodeStatus::Running);
        store.put_node("01A", &running, None).unwrap();
        let mut done = node_record("alpha", 1, NodeStatus::Succeeded);
        done.output = Some(JsonText::parse("{\"x\":1}", 100).unwrap());
        store.put_node("01A", &done, None).unwrap();
        // A second write of a node replaces the first.
        let mut zeta = node_record("zeta", 0, NodeStatus::Failed);
        zeta.error = Some(Failure::new(FailureKind::Fatal, "boom"));
        for number in [2, 1, 10] {
            store
                .put_node("01A", &zeta, Some(&attempt_record(number)))
                .unwrap();
        }
        let mut first = attempt_record(1);
        first.error = Some(Failure::new(FailureKind::Retryable, "busy"));
        store.put_node("01A", &zeta, Some(&first)).unwrap();
        run.status = RunStatus::Failed;
        run.resumes = 2;
        store.update_run(&run).unwrap();
        store.flush().unwrap();

        assert_eq!(store.run("01A").unwrap().unwrap(), run);
        assert_eq!(
            store.definition("01A").unwrap().unwrap(),
            "[workflow]\nid = \"wf\"\n"
        );
        let nodes = store.nodes("01A").unwrap();
        let ids: Vec<&str> = nodes.iter().map(|n| n.node_id.as_str()).collect();
        assert_eq!(ids, ["zeta", "alpha"], "file order, not key order");
        assert_eq!(nodes[0].error.as_ref().unwrap().message, "boom");
        assert_eq!(nodes[0].error.as_ref().unwrap().kind, FailureKind::Fatal);
        assert_eq!(nodes[1].output.as_deref(), Some("{\"x\":1}"));
        assert!(store.run("01B").unwrap().is_none());
        assert!(store.nodes("01B").unwrap().is_empty());
        let attempts = store.attempts("01A", "zeta").unwrap();
        assert_eq!(numbers(&attempts), [1, 2, 10], "numeric order");
        assert_eq!(
            attempts[0].error.as_ref().map(|e| e.message.as_str()),
            Some("busy"),
            "a rewrite replaces"
        );
        assert!(store.attempts("01A", "alpha").unwrap().is_empty());
        let history = store.history("01A").unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[0].node, nodes[0]);
        assert_eq!(history[0].attempts, attempts);
        assert!(history[1].attempts.is_empty());
    }

    pub(crate) fn listing_and_prefixes(store: &dyn WorkflowStore) {
        for id in ["01AAA", "01AAB", "01BBB"] {
            store
                .create_run(&run_record(id, RunStatus::Succeeded), "")
                .unwrap();
        }
        let ids: Vec<String> = store.runs().map(|r| r.unwrap().run_id).collect();
        assert_eq!(ids, ["01BBB", "01AAB", "01AAA"], "newest first");
        let ids: Vec<String> = store
            .runs_with_prefix("01AA")
            .map(|r| r.unwrap().run_id)
            .collect();
        assert_eq!(ids, ["01AAB", "01AAA"]);
        assert_eq!(store.find_run("01b").unwrap().run_id, "01BBB");
        assert!(matches!(
            store.find_run("01AA"),
            Err(StoreError::AmbiguousRun { count: 2, .. })
        ));
        assert!(matches!(
            store.find_run("02"),
            Err(StoreError::UnknownRun { .. })
        ));
        let ids: Vec<String> = store
            .runs_before(Some("01BBB"))
            .map(|r| r.unwrap().run_id)
            .collect();
        assert_eq!(ids, ["01AAB", "01AAA"], "a page after 01BBB");
        let ids: Vec<String> = store
            .runs_before(Some("01AAAZ"))
            .map(|r| r.unwrap().run_id)
            .collect();
        assert_eq!(ids, ["01AAA"], "a bound that is no run's id");
        assert_eq!(store.runs_before(None).count(), 3);
        assert!(
            matches!(store.find_run(""), Err(StoreError::EmptyRunId)),
            "an empty id is not a prefix of every run"
        );
    }

    pub(crate) fn deletion(store: &dyn WorkflowStore) {
        store
            .create_run(&run_record("01A", RunStatus::Succeeded), "x")
            .unwrap();
        store
            .create_run(&run_record("01AB", RunStatus::Succeeded), "y")
            .unwrap();
        let done = node_record("n", 0, NodeStatus::Succeeded);
        store
            .put_node("01A", &done, Some(&attempt_record(1)))
            .unwrap();
        store
            .put_node("01AB", &done, Some(&attempt_record(1)))
            .unwrap();
        assert!(store.delete_run("01A").unwrap());
        assert!(!store.delete_run("01A").unwrap());
        assert!(store.run("01A").unwrap().is_none());
        assert!(store.definition("01A").unwrap().is_none());
        assert!(store.nodes("01A").unwrap().is_empty());
        assert!(store.attempts("01A", "n").unwrap().is_empty());
        assert_eq!(
            store.nodes("01AB").unwrap().len(),
            1,
            "a run whose id extends another's is kept"
        );
        assert_eq!(store.attempts("01AB", "n").unwrap().len(), 1);
    }

    pub(crate) fn schedules_remember_their_last_fire(store: &dyn WorkflowStore) {
        assert_eq!(store.last_fire("nightly").unwrap(), None);
        store.set_last_fire("nightly", Timestamp(5_000)).unwrap();
        store.set_last_fire("hourly", Timestamp(7_000)).unwrap();
        store.set_last_fire("nightly", Timestamp(9_000)).unwrap();
        assert_eq!(store.last_fire("nightly").unwrap(), Some(Timestamp(9_000)));
        assert_eq!(store.last_fire("hourly").unwrap(), Some(Timestamp(7_000)));
    }

    pub(crate) fn nodes_and_attempts_do_not_mix(store: &dyn WorkflowStore) {
        store
            .create_run(&run_record("01A", RunStatus::Running), "")
            .unwrap();
        let node = node_record("n", 0, NodeStatus::Running);
        for number in 1..=300 {
            store
                .put_node("01A", &node, Some(&attempt_record(number)))
                .unwrap();
        }
        assert_eq!(store.nodes("01A").unwrap().len(), 1);
        assert_eq!(store.attempts("01A", "n").unwrap().len(), 300);
        // Attempts written before their node's first record are kept.
        store
            .put_batch("01A", &[], &[("early".into(), attempt_record(1))])
            .unwrap();
        let early = node_record("early", 1, NodeStatus::Running);
        store
            .put_node("01A", &early, Some(&attempt_record(2)))
            .unwrap();
        assert_eq!(numbers(&store.attempts("01A", "early").unwrap()), [1, 2]);
        let history = store.history("01A").unwrap();
        assert_eq!(history[1].attempts, store.attempts("01A", "early").unwrap());
    }

    pub(crate) fn sinks_are_kept_with_the_run(store: &dyn WorkflowStore) {
        let mut run = run_record("01A", RunStatus::Running);
        run.sinks = Some(vec!["a".into(), "b".into()]);
        store.create_run(&run, "").unwrap();
        assert_eq!(
            store.sinks("01A").unwrap(),
            Some(vec!["a".into(), "b".into()])
        );
        // A header written again without them keeps the stored ones.
        let mut header = store.run("01A").unwrap().unwrap();
        header.sinks = None;
        header.status = RunStatus::Succeeded;
        store.update_run(&header).unwrap();
        assert_eq!(store.sinks("01A").unwrap().unwrap().len(), 2);
        // Changed (a resume of an edited workflow): the new ones.
        header.sinks = Some(vec!["c".into()]);
        store.update_run(&header).unwrap();
        assert_eq!(store.sinks("01A").unwrap(), Some(vec!["c".into()]));
        assert_eq!(store.sinks("01B").unwrap(), None);
        store.delete_run("01A").unwrap();
        assert_eq!(store.sinks("01A").unwrap(), None);
    }

    pub(crate) fn one_node_is_read_with_its_elements(store: &dyn WorkflowStore) {
        store
            .create_run(&run_record("01A", RunStatus::Running), "")
            .unwrap();
        let map = node_record("m", 1, NodeStatus::Running);
        store.put_node("01A", &map, None).unwrap();
        for element in [10u32, 0, 1] {
            let mut record = node_record(&format!("m[{element}]"), 1, NodeStatus::Succeeded);
            record.element = Some(element);
            store
                .put_node("01A", &record, Some(&attempt_record(1)))
                .unwrap();
        }
        store
            .put_node("01A", &node_record("mx", 2, NodeStatus::Succeeded), None)
            .unwrap();
        let m = store.node("01A", "m").unwrap().unwrap();
        assert_eq!(m.node.node_id, "m");
        let ids: Vec<&str> = m.elements.iter().map(|e| e.node.node_id.as_str()).collect();
        assert_eq!(ids, ["m[0]", "m[1]", "m[10]"]);
        assert_eq!(m.elements[2].attempts.len(), 1);
        let element = store.node("01A", "m[10]").unwrap().unwrap();
        assert_eq!(element.node.element, Some(10));
        assert!(element.elements.is_empty());
        assert_eq!(element.attempts.len(), 1);
        assert!(
            store
                .node("01A", "mx")
                .unwrap()
                .unwrap()
                .elements
                .is_empty()
        );
        assert!(store.node("01A", "ghost").unwrap().is_none());
        assert!(store.node("01B", "m").unwrap().is_none());
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::permute;

    proptest! {
        #[test]
        fn permute_puts_each_item_where_the_order_says(
            order in (0..80usize).prop_flat_map(|n| Just((0..n).collect::<Vec<_>>()).prop_shuffle())
        ) {
            let mut items: Vec<String> = (0..order.len()).map(|i| format!("item {i}")).collect();
            let mut from = order.clone();
            permute(&mut items, &mut from);
            let wanted: Vec<String> = order.iter().map(|i| format!("item {i}")).collect();
            prop_assert_eq!(items, wanted);
            prop_assert!(from.iter().enumerate().all(|(i, &at)| i == at));
        }
    }
}
