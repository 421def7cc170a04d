//! Where a run stands, by id: live from the engine while it runs here, from
//! the store otherwise (the design's GetStatus).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use toml::de::{DeTable, DeValue};

use super::handle::{Progress, RunSnapshot};
use crate::report::{NodeStatus, RunStatus};
use crate::store::{NodeRecord, StoreError, WorkflowStore};

/// The runs this engine runs now, by id. Locked when a run starts and when
/// a status is asked for, never by node tasks.
#[derive(Debug, Default)]
pub(super) struct LiveRuns(Mutex<HashMap<String, Weak<Progress>>>);

impl LiveRuns {
    /// Notes a run that starts; forgets those whose handles and tasks are
    /// gone.
    pub(super) fn insert(&self, run_id: &str, progress: &Arc<Progress>) {
        let mut runs = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        runs.retain(|_, progress| progress.strong_count() > 0);
        runs.insert(run_id.to_string(), Arc::downgrade(progress));
    }

    fn get(&self, run_id: &str) -> Option<Arc<Progress>> {
        let runs = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        runs.get(run_id)?.upgrade()
    }
}

/// The status of run `run_id` (or an unambiguous prefix of its id): the
/// live states while this engine runs it, else what the store holds.
pub(super) fn status(
    live: &LiveRuns,
    store: &dyn WorkflowStore,
    run_id: &str,
) -> Result<RunSnapshot, StoreError> {
    // A run is recorded as running before it starts, and as ended once it
    // has: the store says whether to ask the engine.
    let record = store.find_run(run_id)?;
    if record.status == RunStatus::Running
        && let Some(progress) = live.get(&record.run_id)
    {
        return Ok(progress.snapshot(&record.run_id));
    }
    let mut records: HashMap<String, NodeRecord> = store
        .nodes(&record.run_id)?
        .into_iter()
        .filter(|node| node.element.is_none())
        .map(|node| (node.node_id.clone(), node))
        .collect();
    let definition = store.definition(&record.run_id)?.unwrap_or_default();
    let mut nodes: Vec<(String, NodeStatus, u32)> = node_ids(&definition)
        .into_iter()
        .map(|id| match records.remove(&id) {
            Some(node) => (id, node.status, node.attempts),
            None => (id, NodeStatus::Pending, 0),
        })
        .collect();
    // Records of nodes the stored file does not name (it could not be
    // read), in the order of the file they ran from.
    let mut rest: Vec<NodeRecord> = records.into_values().collect();
    rest.sort_by_key(|node| node.index);
    nodes.extend(
        rest.into_iter()
            .map(|node| (node.node_id, node.status, node.attempts)),
    );
    Ok(RunSnapshot {
        run_id: record.run_id,
        status: record.status,
        nodes,
    })
}

/// The node ids of a stored workflow file, in file order; none when the
/// text is not TOML.
fn node_ids(definition: &str) -> Vec<String> {
    let Ok(document) = DeTable::parse(definition) else {
        return Vec::new();
    };
    let Some(DeValue::Table(nodes)) = document.get_ref().get("nodes").map(|n| n.get_ref()) else {
        return Vec::new();
    };
    let mut ids: Vec<_> = nodes
        .iter()
        .map(|(id, _)| (id.span().start, id.get_ref().to_string()))
        .collect();
    ids.sort();
    ids.into_iter().map(|(_, id)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_come_in_file_order() {
        let text =
            "[workflow]\nid = \"w\"\n[nodes.zeta]\naction = \"a\"\n[nodes.alpha]\naction = \"a\"\n";
        assert_eq!(node_ids(text), ["zeta", "alpha"]);
        assert!(node_ids("not toml [").is_empty());
    }
}
