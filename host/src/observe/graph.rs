//! The workflow's graph as Graphviz DOT or Mermaid text, one group per
//! level, optionally coloured by the nodes' states in a run.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use crate::report::NodeStatus;
use crate::spec::WorkflowSpec;

/// Fill colours by state: the same in both formats.
fn colour(status: &NodeStatus) -> &'static str {
    match status {
        NodeStatus::Pending => "#ffffff",
        NodeStatus::Running => "#cfe2ff",
        NodeStatus::Succeeded => "#d1e7dd",
        NodeStatus::Failed => "#f8d7da",
        NodeStatus::Skipped {
            condition: false, ..
        } => "#e2e3e5",
        // Skipped by a `when` condition: not a failure's grey.
        NodeStatus::Skipped {
            condition: true, ..
        } => "#e7f1f7",
        NodeStatus::Cancelled => "#fff3cd",
    }
}

/// A state as the graph names it (label and class): the status's name,
/// and `skipped_by_condition` apart from a failure's `skipped`.
fn state_name(status: &NodeStatus) -> &'static str {
    match status {
        NodeStatus::Skipped {
            condition: true, ..
        } => "skipped_by_condition",
        other => other.name(),
    }
}

/// The states of a run's nodes, by node id; empty for a plain graph.
pub type NodeStates<'a> = HashMap<&'a str, &'a NodeStatus>;

impl WorkflowSpec {
    /// The graph in Graphviz DOT: a cluster per level, nodes labelled with
    /// their id and action (and state, when `states` has one), edges from
    /// each dependency to its dependent.
    pub fn to_dot(&self, states: &NodeStates<'_>) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "digraph {} {{", dot_id(&self.id));
        out.push_str("  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", fontname=\"Helvetica\"];\n");
        for (level, members) in self.dag.levels().iter().enumerate() {
            let _ = writeln!(
                out,
                "  subgraph cluster_level_{level} {{\n    label=\"level {level}\";\n    style=dashed;\n    color=\"#999999\";"
            );
            for &index in members {
                let node = &self.nodes[index];
                let mut label = format!("{}\\n{}", escape(&node.id), escape(&action(node)));
                let mut fill = String::new();
                if let Some(status) = states.get(node.id.as_str()) {
                    let _ = write!(label, "\\n{}", state_name(status));
                    fill = format!(", fillcolor=\"{}\"", colour(status));
                }
                let _ = writeln!(out, "    {} [label=\"{label}\"{fill}];", dot_id(&node.id));
            }
            out.push_str("  }\n");
        }
        for node in &self.nodes {
            for dependency in &node.depends_on {
                let _ = writeln!(out, "  {} -> {};", dot_id(dependency), dot_id(&node.id));
            }
        }
        out.push_str("}\n");
        out
    }

    /// The graph as a Mermaid flowchart: a subgraph per level, nodes
    /// labelled with their id and action, classes for the states.
    pub fn to_mermaid(&self, states: &NodeStates<'_>) -> String {
        // Mermaid ids are generated (n0, n1, ...): node ids may hold
        // characters Mermaid reads as syntax.
        let mut out = String::from("flowchart TB\n");
        for (level, members) in self.dag.levels().iter().enumerate() {
            let _ = writeln!(out, "  subgraph level_{level}[\"level {level}\"]");
            for &index in members {
                let node = &self.nodes[index];
                let state = states
                    .get(node.id.as_str())
                    .map(|status| format!("<br/>{}", state_name(status)))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "    n{index}[\"{}<br/><i>{}</i>{state}\"]",
                    mermaid_text(&node.id),
                    mermaid_text(&action(node))
                );
            }
            out.push_str("  end\n");
        }
        for (index, _) in self.nodes.iter().enumerate() {
            for &dependency in self.dag.dependencies(index) {
                let _ = writeln!(out, "  n{dependency} --> n{index}");
            }
        }
        let mut used = BTreeMap::new();
        for (index, node) in self.nodes.iter().enumerate() {
            if let Some(status) = states.get(node.id.as_str()) {
                let _ = writeln!(out, "  class n{index} {}", state_name(status));
                used.insert(state_name(status), colour(status));
            }
        }
        for (name, colour) in used {
            let _ = writeln!(out, "  classDef {name} fill:{colour},stroke:#333333");
        }
        out
    }
}

/// A DOT id: always quoted.
fn dot_id(id: &str) -> String {
    format!("\"{}\"", escape(id))
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// What runs a node, as its label says: its action, marked `(map)` for a
/// map node (a sub-workflow's is `workflow:<id>`).
fn action(node: &crate::spec::NodeSpec) -> std::borrow::Cow<'_, str> {
    match &node.exprs.map {
        Some(_) => format!("{} (map)", node.action).into(),
        None => node.action.as_str().into(),
    }
}

/// Text inside a Mermaid `["..."]` label.
fn mermaid_text(text: &str) -> String {
    text.replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn spec() -> WorkflowSpec {
        WorkflowSpec::parse(
            Path::new("g.toml"),
            "[workflow]\nid = \"g\"\n[nodes.a]\naction = \"echo\"\n[nodes.b]\naction = \"math\"\ndepends_on = [\"a\"]\n[nodes.c]\naction = \"echo\"\ndepends_on = [\"a\"]\nmap = [1, 2]\n"
                .into(),
        )
        .unwrap()
    }

    #[test]
    fn dot_has_a_cluster_per_level_and_an_edge_per_dependency() {
        let dot = spec().to_dot(&NodeStates::new());
        assert!(dot.contains("subgraph cluster_level_0 {\n    label=\"level 0\";"));
        assert!(dot.contains("\"b\" [label=\"b\\nmath\"];"));
        assert!(dot.contains("\"c\" [label=\"c\\necho (map)\"];"), "{dot}");
        assert!(dot.contains("\"a\" -> \"b\";"));
        assert!(dot.contains("\"a\" -> \"c\";"));
        assert_eq!(dot.matches("subgraph").count(), 2);
    }

    #[test]
    fn states_colour_the_nodes() {
        let failed = NodeStatus::Failed;
        let skipped = NodeStatus::skipped_after_failure("a");
        let unmet = NodeStatus::skipped_by_condition("");
        let states = NodeStates::from([("a", &failed), ("b", &skipped), ("c", &unmet)]);
        let spec = spec();
        let dot = spec.to_dot(&states);
        assert!(dot.contains("\"a\" [label=\"a\\necho\\nfailed\", fillcolor=\"#f8d7da\"];"));
        let mermaid = spec.to_mermaid(&states);
        assert!(mermaid.contains("  class n0 failed\n"));
        assert!(mermaid.contains("  classDef skipped fill:#e2e3e5,stroke:#333333\n"));
        assert!(mermaid.contains("  classDef skipped_by_condition fill:#e7f1f7,stroke:#333333\n"));
        assert!(mermaid.contains("  n0 --> n1\n"));
        assert!(mermaid.contains("  subgraph level_1[\"level 1\"]\n"));
    }
}
