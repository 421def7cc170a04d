//! A store that keeps runs in memory, for tests and embedders that need no
//! persistence.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use super::{AttemptRecord, NodeRecord, Records, RunRecord, StoreError, WorkflowStore};

#[derive(Debug, Default)]
struct Runs {
    runs: BTreeMap<String, RunRecord>,
    definitions: BTreeMap<String, String>,
    nodes: BTreeMap<(String, String), NodeRecord>,
    attempts: BTreeMap<(String, String, u32), AttemptRecord>,
    fires: BTreeMap<String, crate::report::Timestamp>,
}

/// Runs kept in memory and lost when it is dropped.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Runs>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Runs> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl WorkflowStore for MemoryStore {
    fn create_run(&self, run: &RunRecord, definition: &str) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner.runs.insert(run.run_id.clone(), run.clone());
        inner
            .definitions
            .insert(run.run_id.clone(), definition.to_string());
        Ok(())
    }

    fn update_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let mut run = run.clone();
        if run.sinks.is_none() {
            run.sinks = inner
                .runs
                .get(&run.run_id)
                .and_then(|old| old.sinks.clone());
        }
        inner.runs.insert(run.run_id.clone(), run);
        Ok(())
    }

    fn put_batch(
        &self,
        run_id: &str,
        nodes: &[NodeRecord],
        attempts: &[(String, AttemptRecord)],
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        for (node_id, attempt) in attempts {
            let key = (run_id.to_string(), node_id.clone(), attempt.number);
            inner.attempts.insert(key, attempt.clone());
        }
        for node in nodes {
            inner
                .nodes
                .insert((run_id.to_string(), node.node_id.clone()), node.clone());
        }
        Ok(())
    }

    fn attempts(&self, run_id: &str, node_id: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        let (run, node) = (run_id.to_string(), node_id.to_string());
        Ok(self
            .lock()
            .attempts
            .range((run.clone(), node.clone(), 0)..=(run, node, u32::MAX))
            .map(|(_, attempt)| attempt.clone())
            .collect())
    }

    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        Ok(self.lock().runs.get(run_id).cloned())
    }

    fn definition(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.lock().definitions.get(run_id).cloned())
    }

    fn nodes(&self, run_id: &str) -> Result<Vec<NodeRecord>, StoreError> {
        let inner = self.lock();
        let mut nodes: Vec<NodeRecord> = inner
            .nodes
            .range((run_id.to_string(), String::new())..)
            .take_while(|((run, _), _)| run == run_id)
            .map(|(_, node)| node.clone())
            .collect();
        super::sort_records(&mut nodes, |node| node);
        Ok(nodes)
    }

    fn runs(&self) -> Records<'_, RunRecord> {
        let runs: Vec<RunRecord> = self.lock().runs.values().rev().cloned().collect();
        Box::new(runs.into_iter().map(Ok))
    }

    fn runs_with_prefix(&self, prefix: &str) -> Records<'_, RunRecord> {
        let runs: Vec<RunRecord> = self
            .lock()
            .runs
            .range(prefix.to_string()..)
            .take_while(|(id, _)| id.starts_with(prefix))
            .map(|(_, run)| run.clone())
            .collect();
        Box::new(runs.into_iter().rev().map(Ok))
    }

    fn delete_run(&self, run_id: &str) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        inner.definitions.remove(run_id);
        inner.nodes.retain(|(run, _), _| run != run_id);
        inner.attempts.retain(|(run, _, _), _| run != run_id);
        Ok(inner.runs.remove(run_id).is_some())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn last_fire(&self, name: &str) -> Result<Option<crate::report::Timestamp>, StoreError> {
        Ok(self.lock().fires.get(name).copied())
    }

    fn set_last_fire(&self, name: &str, due: crate::report::Timestamp) -> Result<(), StoreError> {
        self.lock().fires.insert(name.to_string(), due);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance;

    #[test]
    fn round_trip() {
        conformance::round_trip(&MemoryStore::new());
    }

    #[test]
    fn listing_and_prefixes() {
        conformance::listing_and_prefixes(&MemoryStore::new());
    }

    #[test]
    fn deletion() {
        conformance::deletion(&MemoryStore::new());
    }

    #[test]
    fn nodes_and_attempts_do_not_mix() {
        conformance::nodes_and_attempts_do_not_mix(&MemoryStore::new());
    }

    #[test]
    fn sinks_are_kept_with_the_run() {
        conformance::sinks_are_kept_with_the_run(&MemoryStore::new());
    }

    #[test]
    fn a_big_history_comes_in_file_order_with_its_attempts() {
        conformance::a_big_history_comes_in_file_order_with_its_attempts(&MemoryStore::new());
    }

    #[test]
    fn one_node_is_read_with_its_elements() {
        conformance::one_node_is_read_with_its_elements(&MemoryStore::new());
    }

    #[test]
    fn schedules_remember_their_last_fire() {
        conformance::schedules_remember_their_last_fire(&MemoryStore::new());
    }
}
