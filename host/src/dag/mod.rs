//! The dependency graph of a workflow: cycles, levels, critical paths.
//!
//! Nodes are numbered `0..n` (their order in the workflow file). The graph is
//! built with petgraph, which finds the topological order and, when there is
//! none, the strongly connected components that hold the cycles.

use petgraph::algo::{kosaraju_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};

/// A validated, acyclic dependency graph.
#[derive(Debug, Clone)]
pub struct Dag {
    dependencies: Vec<Vec<usize>>,
    dependents: Vec<Vec<usize>>,
    levels: Vec<Vec<usize>>,
    level_of: Vec<usize>,
    path_ahead: Vec<usize>,
}

impl Dag {
    /// Builds the graph from each node's dependencies. Fails with every
    /// cycle found, each as the list of its nodes in dependency order
    /// (the first node depends on the second, ..., the last on the first).
    pub fn new(dependencies: Vec<Vec<usize>>) -> Result<Self, Vec<Vec<usize>>> {
        let n = dependencies.len();
        // An edge dependency -> dependent: topological order = execution order.
        let mut graph = DiGraph::<(), ()>::with_capacity(n, 0);
        for _ in 0..n {
            graph.add_node(());
        }
        for (node, deps) in dependencies.iter().enumerate() {
            for &dep in deps {
                graph.add_edge(NodeIndex::new(dep), NodeIndex::new(node), ());
            }
        }
        let order = match toposort(&graph, None) {
            Ok(order) => order,
            Err(_) => return Err(cycles(&graph, &dependencies)),
        };

        let mut level_of = vec![0usize; n];
        for index in &order {
            let node = index.index();
            level_of[node] = dependencies[node]
                .iter()
                .map(|&dep| level_of[dep] + 1)
                .max()
                .unwrap_or(0);
        }
        let depth = level_of.iter().max().map_or(0, |&max| max + 1);
        let mut levels = vec![Vec::new(); depth];
        for (node, &level) in level_of.iter().enumerate() {
            levels[level].push(node);
        }
        let mut dependents = vec![Vec::new(); n];
        for (node, deps) in dependencies.iter().enumerate() {
            for &dep in deps {
                dependents[dep].push(node);
            }
        }
        // Longest path from each node to a sink, counting nodes: in reverse
        // topological order every dependent is already known.
        let mut path_ahead = vec![1usize; n];
        for index in order.iter().rev() {
            let node = index.index();
            path_ahead[node] = 1 + dependents[node]
                .iter()
                .map(|&d| path_ahead[d])
                .max()
                .unwrap_or(0);
        }
        Ok(Self {
            dependencies,
            dependents,
            levels,
            level_of,
            path_ahead,
        })
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.dependencies.len()
    }

    /// True when the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.dependencies.is_empty()
    }

    /// Nodes grouped by level: level 0 has no dependencies, and every node's
    /// dependencies are in lower levels. Within a level, file order.
    pub fn levels(&self) -> &[Vec<usize>] {
        &self.levels
    }

    /// The level of a node.
    pub fn level_of(&self, node: usize) -> usize {
        self.level_of[node]
    }

    /// The number of nodes on the longest path from `node` to the end of
    /// the workflow, itself included: the critical path ahead of it.
    pub fn path_ahead(&self, node: usize) -> usize {
        self.path_ahead[node]
    }

    /// The nodes `node` depends on.
    pub fn dependencies(&self, node: usize) -> &[usize] {
        &self.dependencies[node]
    }

    /// The nodes that depend on `node`.
    pub fn dependents(&self, node: usize) -> &[usize] {
        &self.dependents[node]
    }

    /// Nodes nothing depends on: their outputs are the workflow's outputs.
    pub fn sinks(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len()).filter(|&node| self.dependents[node].is_empty())
    }

    /// Every node downstream of `node` (its dependents, theirs, ...), in
    /// breadth-first order.
    pub fn downstream(&self, node: usize) -> Vec<usize> {
        let mut seen = vec![false; self.len()];
        let mut queue: VecDeque<usize> = self.dependents[node].iter().copied().collect();
        let mut out = Vec::new();
        while let Some(next) = queue.pop_front() {
            if std::mem::replace(&mut seen[next], true) {
                continue;
            }
            out.push(next);
            queue.extend(self.dependents[next].iter().copied());
        }
        out
    }
}

/// One cycle per strongly connected component that has one.
///
/// Kosaraju's algorithm, as petgraph writes it, walks the graph with a
/// stack of its own: a cycle through 100,000 nodes does not overflow the
/// thread's stack as a recursive walk would.
fn cycles(graph: &DiGraph<(), ()>, dependencies: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut component = vec![0; dependencies.len()];
    let mut cyclic = Vec::new();
    for (index, members) in kosaraju_scc(graph).into_iter().enumerate() {
        let Some(start) = members.iter().map(|node| node.index()).min() else {
            continue;
        };
        for node in &members {
            component[node.index()] = index;
        }
        if members.len() > 1 || dependencies[start].contains(&start) {
            cyclic.push(start);
        }
    }
    let mut found: Vec<Vec<usize>> = cyclic
        .into_iter()
        .filter_map(|start| shortest_cycle(start, &component, dependencies))
        .collect();
    found.sort();
    found
}

/// The shortest path start -> ... -> start along "depends on" edges that
/// stays inside start's component (`component` numbers each node's); it
/// exists for every node of a component with an edge.
fn shortest_cycle(
    start: usize,
    component: &[usize],
    dependencies: &[Vec<usize>],
) -> Option<Vec<usize>> {
    let inside = component[start];
    let mut parent: HashMap<usize, usize> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        let mut deps = dependencies[node].clone();
        deps.sort_unstable();
        for dep in deps {
            if component[dep] != inside {
                continue;
            }
            if dep == start {
                let mut path = vec![node];
                let mut at = node;
                while let Some(&p) = parent.get(&at) {
                    path.push(p);
                    at = p;
                }
                path.reverse();
                return Some(path);
            }
            if let Entry::Vacant(entry) = parent.entry(dep) {
                entry.insert(node);
                queue.push_back(dep);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diamond_levels() {
        // 0 <- 1, 0 <- 2, {1, 2} <- 3
        let dag = Dag::new(vec![vec![], vec![0], vec![0], vec![1, 2]]).unwrap();
        assert_eq!(dag.levels(), &[vec![0], vec![1, 2], vec![3]]);
        assert_eq!(dag.sinks().collect::<Vec<_>>(), vec![3]);
        assert_eq!(dag.dependents(0), &[1, 2]);
        assert_eq!(dag.downstream(0), vec![1, 2, 3]);
        assert_eq!(dag.downstream(3), Vec::<usize>::new());
        let ahead: Vec<usize> = (0..4).map(|n| dag.path_ahead(n)).collect();
        assert_eq!(ahead, [3, 2, 2, 1]);
    }

    #[test]
    fn path_ahead_follows_the_longest_branch() {
        // 0 <- 1 <- 2 <- 3 (long branch) and 0 <- 4 (short branch).
        let dag = Dag::new(vec![vec![], vec![0], vec![1], vec![2], vec![0]]).unwrap();
        assert_eq!(dag.path_ahead(0), 4);
        assert!(dag.path_ahead(1) > dag.path_ahead(4));
    }

    #[test]
    fn level_is_longest_path_from_a_root() {
        // 0 <- 1 <- 2, and 3 depends on 0 and 2.
        let dag = Dag::new(vec![vec![], vec![0], vec![1], vec![0, 2]]).unwrap();
        assert_eq!(dag.level_of(3), 3);
        for node in 0..dag.len() {
            for &dep in dag.dependencies(node) {
                assert!(dag.level_of(dep) < dag.level_of(node));
            }
        }
    }

    #[test]
    fn cycle_is_named_in_dependency_order() {
        // 0 depends on 1, 1 on 2, 2 on 0; 3 is outside.
        let cycles = Dag::new(vec![vec![1], vec![2], vec![0], vec![0]]).unwrap_err();
        assert_eq!(cycles, vec![vec![0, 1, 2]]);
    }

    #[test]
    fn self_dependency_is_a_cycle() {
        let cycles = Dag::new(vec![vec![], vec![1]]).unwrap_err();
        assert_eq!(cycles, vec![vec![1]]);
    }

    #[test]
    fn every_cycle_is_reported() {
        let cycles = Dag::new(vec![vec![1], vec![0], vec![3], vec![2]]).unwrap_err();
        assert_eq!(cycles, vec![vec![0, 1], vec![2, 3]]);
    }

    #[test]
    fn shortest_cycle_through_the_first_node() {
        // 0 -> 1 -> 2 -> 0 and a shortcut 0 -> 2.
        let cycles = Dag::new(vec![vec![1, 2], vec![2], vec![0]]).unwrap_err();
        assert_eq!(cycles, vec![vec![0, 2]]);
    }

    #[test]
    fn a_cycle_through_many_nodes_is_found_without_deep_recursion() {
        // A ring of 200,000 nodes, on a thread with a small stack, as a
        // server's blocking threads have (a recursive walk needs far more).
        let found = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let n = 200_000;
                let ring: Vec<Vec<usize>> = (0..n).map(|i| vec![(i + n - 1) % n]).collect();
                Dag::new(ring).unwrap_err()
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].len(), 200_000);
        assert_eq!(found[0][..3], [0, 199_999, 199_998]);
    }
}
