//! What the node views of the API keep between requests: each run's graph
//! (parsed once from the workflow stored with it) and the node states of
//! runs that ended (read once from the store). A run of 10,000 nodes takes
//! tens of milliseconds to parse and read; a page of it, a few.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock};

use flow_host::WorkflowSpec;
use flow_host::store::RunRecord;

use super::documents::{Version, version};
use super::nodes::NodeState;

/// Runs whose graphs and states are kept: the dashboard's open pages.
const KEPT: usize = 32;

/// Every node's state in file order.
#[derive(Debug, Default)]
pub struct RunStates {
    pub nodes: Vec<NodeState>,
    /// For a run that ended: the page of all its nodes, the one the
    /// dashboard reads, made once and shared by every request for it.
    pub whole: OnceLock<bytes::Bytes>,
}

/// A run's graph: each node's place, and what the workflow writes of it.
#[derive(Debug)]
pub struct RunGraph {
    /// Dependency levels.
    pub levels: usize,
    /// Nodes in file order.
    pub nodes: Vec<GraphEntry>,
    /// Positions by id.
    pub index: HashMap<String, usize>,
}

/// A node of a [`RunGraph`].
#[derive(Debug)]
pub struct GraphEntry {
    pub index: usize,
    pub id: String,
    pub action: String,
    pub level: usize,
    /// Positions of the nodes it depends on.
    pub deps: Vec<usize>,
    /// Their ids.
    pub depends_on: Vec<String>,
    pub map: bool,
    pub conditional: bool,
    /// Its `input` as JSON text.
    pub input: Arc<str>,
}

impl RunGraph {
    pub fn new(spec: &WorkflowSpec) -> Self {
        let nodes: Vec<GraphEntry> = spec
            .nodes
            .iter()
            .enumerate()
            .map(|(index, node)| GraphEntry {
                index,
                id: node.id.clone(),
                action: node.action.clone(),
                level: spec.dag.level_of(index),
                deps: spec.dag.dependencies(index).to_vec(),
                depends_on: node.depends_on.clone(),
                map: node.exprs.map.is_some(),
                conditional: node.exprs.when.is_some(),
                input: node.input.clone(),
            })
            .collect();
        Self {
            levels: spec.dag.levels().len(),
            index: nodes.iter().map(|n| (n.id.clone(), n.index)).collect(),
            nodes,
        }
    }
}

/// A run's graph by run and resume; `None` when it has no readable
/// workflow.
type Graphs = Kept<(String, u32), Option<Arc<RunGraph>>>;

/// An ended run's node states, with the header they were read under.
type States = Kept<String, (Version, Arc<RunStates>)>;

/// The kept graphs and states.
#[derive(Default)]
pub struct NodeCache {
    /// By run and resume (a resume may run an edited workflow); `None`
    /// when the run has no readable workflow.
    graphs: Mutex<Graphs>,
    /// By run, for runs that ended, with the header they were read under.
    states: Mutex<States>,
    /// Held while an ended run's states are read, so that many requests
    /// for one big run read it once.
    pub making: tokio::sync::Mutex<()>,
}

impl NodeCache {
    pub fn graph(&self, run: &RunRecord) -> Option<Option<Arc<RunGraph>>> {
        lock(&self.graphs)
            .get(&(run.run_id.clone(), run.resumes))
            .cloned()
    }

    pub fn keep_graph(&self, run: &RunRecord, graph: Option<Arc<RunGraph>>) {
        lock(&self.graphs).put((run.run_id.clone(), run.resumes), graph);
    }

    /// The states of `run` if they were read under its current header.
    pub fn states(&self, run: &RunRecord) -> Option<Arc<RunStates>> {
        let kept = lock(&self.states);
        let (made, states) = kept.get(&run.run_id)?;
        (*made == version(run)).then(|| states.clone())
    }

    pub fn keep_states(&self, run: &RunRecord, states: Arc<RunStates>) {
        lock(&self.states).put(run.run_id.clone(), (version(run), states));
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// At most [`KEPT`] entries; the oldest goes first.
struct Kept<K, V> {
    entries: HashMap<K, V>,
    order: VecDeque<K>,
}

impl<K, V> Default for Kept<K, V> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<K: Hash + Eq + Clone, V> Kept<K, V> {
    fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key)
    }

    fn put(&mut self, key: K, value: V) {
        if self.entries.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > KEPT {
            if let Some(oldest) = self.order.pop_front() {
                self.entries.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_entries_go_first() {
        let mut kept = Kept::default();
        for i in 0..KEPT + 5 {
            kept.put(i, i * 2);
        }
        assert!(kept.get(&4).is_none());
        assert_eq!(kept.get(&5), Some(&10));
        assert_eq!(kept.entries.len(), KEPT);
        // Put again: replaced, not counted twice.
        kept.put(5, 0);
        assert_eq!(kept.order.len(), KEPT);
    }
}
