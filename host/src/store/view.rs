//! A run as one JSON document: what `flow run --json` and `flow status
//! --json` print, one schema for both.
//!
//! ```json
//! {
//!   "run_id": "01J...", "workflow_id": "orders", "workflow_path": "/abs/orders.toml",
//!   "status": "succeeded", "error": null, "failed_nodes": 0, "resumes": 0, "secrets": [],
//!   "params": {"region": "eu"}, "retry_of": null, "scheduled_for": null, "parent": null,
//!   "created_at": "2026-11-26T10:13:17.123Z", "finished_at": "2026-11-26T10:13:17.131Z",
//!   "elapsed_ms": 8.0,
//!   "nodes": [{
//!     "id": "order", "index": 0, "action": "echo", "status": "succeeded",
//!     "skipped_because": null, "skipped_by_condition": false, "reused_from": null,
//!     "child_run": null,
//!     "attempts": 1,
//!     "started_at": "...", "finished_at": "...", "elapsed_ms": 1.5, "fuel_used": 28430,
//!     "output": {"...": "..."}, "error": null,
//!     "attempt_records": [{
//!       "number": 1, "started_at": "...", "elapsed_ms": 1.4, "fuel_used": 28430,
//!       "error": null, "retry_delay_ms": null,
//!       "http": {"requests": 1, "refused": 0, "bytes_out": 0, "bytes_in": 512},
//!       "logs": [{"kind": "info", "text": "..."}]
//!     }]
//!   }],
//!   "outputs": {"digest": {"...": "..."}}
//! }
//! ```
//!
//! A map node's entry also has `"elements"`: an entry of the same form for
//! each element that started, in list order, with `"id": "node[3]"` and
//! `"element": 3`.
//!
//! A node that runs a sub-workflow has `"child_run"`, the id of the run of
//! it; that run's `"parent"` is `{"run_id": ..., "node_id": ...}`.
//!
//! Times are RFC 3339 strings in UTC; durations are milliseconds; a
//! failure is `{"kind": ..., "message": ...}` (see
//! [`FailureKind`](crate::report::FailureKind)). The document is written as
//! it is serialised, node by node, and outputs are embedded as stored,
//! without being parsed again.

use std::collections::HashSet;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::{AttemptRecord, GuestLine, NodeHistory, RunRecord};
use crate::report::{Failure, HttpStats, JsonText, NodeStatus, Timestamp};

/// A run, its nodes with their attempts, and the workflow's outputs.
#[derive(Debug, Clone, Copy)]
pub struct RunDocument<'a> {
    /// The run's header.
    pub run: &'a RunRecord,
    /// Every node, in file order.
    pub nodes: &'a [NodeHistory],
    /// The ids of the nodes whose outputs are the workflow's.
    pub sinks: &'a [&'a str],
}

impl Serialize for RunDocument<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        self.header_entries(&mut map)?;
        map.serialize_entry("nodes", &Nodes(self.nodes))?;
        map.serialize_entry("outputs", &self.outputs())?;
        map.end()
    }
}

/// Nodes from which [`RunDocument::write_json`] renders the second half of
/// the nodes on a thread of its own.
const WRITE_IN_TWO_FROM: usize = 4096;

impl RunDocument<'_> {
    /// Writes the document as JSON, the same text as serde_json makes of
    /// it. A big run's nodes are rendered by two threads, the second half
    /// into a buffer while the first is written out, and its outputs by a
    /// third.
    pub fn write_json(&self, out: &mut impl std::io::Write) -> serde_json::Result<()> {
        if self.nodes.len() < WRITE_IN_TWO_FROM {
            return serde_json::to_writer(out, self);
        }
        let (first, second) = self.nodes.split_at(self.nodes.len() / 2);
        std::thread::scope(|scope| {
            let rendered = scope.spawn(|| {
                let mut pieces = Pieces::default();
                write_elements(&mut pieces, second).map(|()| pieces.0)
            });
            let outputs = scope.spawn(|| serde_json::to_vec(&self.outputs()));
            // The header as an object, left open for the other entries.
            let header = serde_json::to_vec(&Header(*self))?;
            put(out, header.strip_suffix(b"}").unwrap_or(&header))?;
            put(out, b",\"nodes\":[")?;
            write_elements(&mut *out, first)?;
            let rest = rendered
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            put(out, b",")?;
            for piece in &rest {
                put(out, piece)?;
            }
            put(out, b"],\"outputs\":")?;
            let outputs = outputs
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            put(out, &outputs)?;
            put(out, b"}")
        })
    }

    /// The run's own entries, before its nodes.
    fn header_entries<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        let run = self.run;
        map.serialize_entry("run_id", &run.run_id)?;
        map.serialize_entry("workflow_id", &run.workflow_id)?;
        map.serialize_entry("workflow_path", &run.workflow_path)?;
        map.serialize_entry("status", &run.status)?;
        map.serialize_entry("error", &run.error)?;
        map.serialize_entry("failed_nodes", &run.failed_nodes)?;
        map.serialize_entry("resumes", &run.resumes)?;
        map.serialize_entry("secrets", &run.secrets)?;
        map.serialize_entry("params", &run.params)?;
        map.serialize_entry("retry_of", &run.retry_of)?;
        map.serialize_entry("scheduled_for", &time(run.scheduled_for))?;
        map.serialize_entry("parent", &run.parent)?;
        map.serialize_entry("created_at", &time(Some(run.created_at)))?;
        map.serialize_entry("finished_at", &time(run.finished_at))?;
        let elapsed = run
            .finished_at
            .map(|end| end.0.saturating_sub(run.created_at.0) as f64);
        map.serialize_entry("elapsed_ms", &elapsed)
    }

    fn outputs(&self) -> Outputs<'_> {
        Outputs {
            nodes: self.nodes,
            sinks: self.sinks,
        }
    }
}

/// A document's header entries as an object of their own.
struct Header<'a>(RunDocument<'a>);

impl Serialize for Header<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        self.0.header_entries(&mut map)?;
        map.end()
    }
}

/// Bytes written in pieces of [`PIECE`] or more, so that a big document
/// is never copied to make room.
#[derive(Default)]
struct Pieces(Vec<Vec<u8>>);

const PIECE: usize = 1 << 20;

impl std::io::Write for Pieces {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match self.0.last_mut() {
            Some(piece) if piece.capacity() - piece.len() >= bytes.len() => {
                piece.extend_from_slice(bytes);
            }
            _ => {
                let mut piece = Vec::with_capacity(PIECE.max(bytes.len()));
                piece.extend_from_slice(bytes);
                self.0.push(piece);
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Bytes already JSON, as part of a document.
fn put(out: &mut impl std::io::Write, bytes: &[u8]) -> serde_json::Result<()> {
    out.write_all(bytes).map_err(serde_json::Error::io)
}

/// `nodes` as the elements of a JSON array, without its brackets. Each
/// node is rendered into a buffer first and handed on whole: serde_json
/// writes a token at a time, which a `Vec` takes inline.
fn write_elements(out: &mut impl std::io::Write, nodes: &[NodeHistory]) -> serde_json::Result<()> {
    let mut node = Vec::with_capacity(1024);
    for (i, history) in nodes.iter().enumerate() {
        node.clear();
        if i > 0 {
            node.push(b',');
        }
        serde_json::to_writer(&mut node, &NodeView::from(history))?;
        put(out, &node)?;
    }
    Ok(())
}

fn time(timestamp: Option<Timestamp>) -> Option<Rfc3339> {
    timestamp.map(Rfc3339)
}

/// A time written as RFC 3339 to the millisecond, straight into the
/// document (a run of 100,000 nodes has 300,000 of them).
struct Rfc3339(Timestamp);

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0.rfc3339())
    }
}

fn millis(micros: Option<u64>) -> Option<f64> {
    micros.map(|us| us as f64 / 1e3)
}

/// One node as it appears in a [`RunDocument`]'s `nodes`: its record, its
/// attempts with their logs, and a map node's elements.
#[derive(Debug, Clone, Copy)]
pub struct NodeDocument<'a>(pub &'a NodeHistory);

impl Serialize for NodeDocument<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        NodeView::from(self.0).serialize(serializer)
    }
}

/// Nodes as a JSON array, each rendered as it is written (a run's nodes, a
/// map node's elements).
struct Nodes<'a>(&'a [NodeHistory]);

impl Nodes<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Nodes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(NodeView::from))
    }
}

#[derive(Serialize)]
struct NodeView<'a> {
    id: &'a str,
    index: usize,
    action: &'a str,
    status: &'static str,
    skipped_because: Option<&'a str>,
    skipped_by_condition: bool,
    reused_from: Option<&'a str>,
    child_run: Option<&'a str>,
    attempts: u32,
    started_at: Option<Rfc3339>,
    finished_at: Option<Rfc3339>,
    elapsed_ms: Option<f64>,
    fuel_used: Option<u64>,
    output: Option<&'a JsonText>,
    error: Option<&'a Failure>,
    attempt_records: Attempts<'a>,
    /// For an element of a map node: its position in the list.
    #[serde(skip_serializing_if = "Option::is_none")]
    element: Option<u32>,
    /// For a map node: its elements that started, in list order.
    #[serde(skip_serializing_if = "Nodes::is_empty")]
    elements: Nodes<'a>,
}

impl<'a> From<&'a NodeHistory> for NodeView<'a> {
    fn from(history: &'a NodeHistory) -> Self {
        let node = &history.node;
        Self {
            id: &node.node_id,
            index: node.index,
            action: &node.action,
            status: node.status.name(),
            skipped_because: match &node.status {
                NodeStatus::Skipped { because, .. } if !because.is_empty() => Some(because),
                _ => None,
            },
            skipped_by_condition: matches!(
                node.status,
                NodeStatus::Skipped {
                    condition: true,
                    ..
                }
            ),
            reused_from: node.reused_from.as_deref(),
            child_run: node.child_run.as_deref(),
            attempts: node.attempts,
            started_at: time(node.started_at),
            finished_at: time(node.finished_at),
            elapsed_ms: millis(node.elapsed_us),
            fuel_used: node.fuel_used,
            output: node.output.as_ref(),
            error: node.error.as_ref(),
            attempt_records: Attempts(&history.attempts),
            element: node.element,
            elements: Nodes(&history.elements),
        }
    }
}

/// A node's attempts as a JSON array, each rendered as it is written.
struct Attempts<'a>(&'a [AttemptRecord]);

impl Serialize for Attempts<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(AttemptView::from))
    }
}

#[derive(Serialize)]
struct AttemptView<'a> {
    number: u32,
    started_at: Rfc3339,
    elapsed_ms: Option<f64>,
    fuel_used: Option<u64>,
    error: Option<&'a Failure>,
    retry_delay_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http: Option<&'a HttpStats>,
    logs: &'a [GuestLine],
}

impl<'a> From<&'a AttemptRecord> for AttemptView<'a> {
    fn from(attempt: &'a AttemptRecord) -> Self {
        Self {
            number: attempt.number,
            started_at: Rfc3339(attempt.started_at),
            elapsed_ms: millis(attempt.elapsed_us),
            fuel_used: attempt.fuel_used,
            error: attempt.error.as_ref(),
            retry_delay_ms: attempt.retry_delay_ms,
            http: attempt.http.as_ref(),
            logs: &attempt.logs,
        }
    }
}

struct Outputs<'a> {
    nodes: &'a [NodeHistory],
    sinks: &'a [&'a str],
}

impl Serialize for Outputs<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let sinks: HashSet<&str> = self.sinks.iter().copied().collect();
        let mut map = serializer.serialize_map(None)?;
        for history in self.nodes {
            let node = &history.node;
            if let Some(output) = &node.output
                && sinks.contains(node.node_id.as_str())
            {
                map.serialize_entry(&node.node_id, output)?;
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{RunStatus, Timestamp};
    use crate::store::conformance::{attempt_record, node_record, run_record};

    /// A run of `n` nodes, some with an output, an attempt or an element.
    fn histories(n: usize) -> Vec<NodeHistory> {
        (0..n)
            .map(|i| {
                let mut node = node_record(&format!("n{i}"), i, NodeStatus::Succeeded);
                node.finished_at = Some(Timestamp(5_000 + i as u64));
                if i % 3 == 0 {
                    node.output = Some(
                        JsonText::parse(&format!("{{\"i\":{i},\"s\":\"\\u00e9\"}}"), 100).unwrap(),
                    );
                }
                let attempts = (0..i % 2).map(|k| attempt_record(k as u32 + 1)).collect();
                let mut history = NodeHistory::new(node, attempts);
                if i % 1000 == 7 {
                    let mut element = node_record(&format!("n{i}[0]"), i, NodeStatus::Succeeded);
                    element.element = Some(0);
                    history.elements.push(NodeHistory::new(element, Vec::new()));
                }
                history
            })
            .collect()
    }

    #[test]
    fn a_document_written_by_two_threads_is_the_one_serde_makes() {
        let mut run = run_record("01DOC", RunStatus::Succeeded);
        run.finished_at = Some(Timestamp(9_000));
        for n in [0, 3, WRITE_IN_TWO_FROM - 1, WRITE_IN_TWO_FROM, 10_001] {
            let nodes = histories(n);
            let ids: Vec<String> = (0..n).step_by(2).map(|i| format!("n{i}")).collect();
            let sinks: Vec<&str> = ids.iter().map(String::as_str).collect();
            let document = RunDocument {
                run: &run,
                nodes: &nodes,
                sinks: &sinks,
            };
            let mut written = Vec::new();
            document.write_json(&mut written).unwrap();
            let made = serde_json::to_vec(&document).unwrap();
            assert!(written == made, "{n} nodes: the two texts differ");
            let parsed: serde_json::Value = serde_json::from_slice(&written).unwrap();
            assert_eq!(parsed["nodes"].as_array().unwrap().len(), n);
        }
    }
}
