//! What is stored about runs and nodes.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::options::Overrides;
use crate::report::{Failure, HttpStats, JsonText, NodeStatus, RunStatus, Timestamp};

/// The header of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The run's id: a ULID, so ids sort by creation time.
    pub run_id: String,
    /// `[workflow] id`.
    pub workflow_id: String,
    /// The workflow file, as given on the command line.
    pub workflow_path: PathBuf,
    /// Where the run stands.
    pub status: RunStatus,
    /// When it started.
    pub created_at: Timestamp,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
    /// Number of nodes in the workflow.
    pub nodes: usize,
    /// The nodes nothing depends on, whose outputs are the workflow's
    /// (absent in runs recorded by older versions). A store may keep them
    /// apart from the header, which every listing reads, and leave this
    /// `None` in what [`WorkflowStore::run`](super::WorkflowStore::run)
    /// returns: [`WorkflowStore::sinks`](super::WorkflowStore::sinks)
    /// reads them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sinks: Option<Vec<String>>,
    /// Why it failed, in a sentence.
    pub error: Option<String>,
    /// Nodes that failed, including those `continue_on_error` allowed.
    #[serde(default)]
    pub failed_nodes: usize,
    /// SHA-256 of the workflow file's text, hex.
    pub workflow_sha256: String,
    /// The plugins directories the run used, first match first.
    #[serde(alias = "plugins_dir", deserialize_with = "one_or_many")]
    pub plugins_dirs: Vec<PathBuf>,
    /// SHA-256 of each plugin the run uses, by plugin name.
    pub plugins: BTreeMap<String, String>,
    /// Options given on the command line, applied again on resume.
    pub overrides: Overrides,
    /// Names of the secrets its nodes are granted (never their values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// How many times the run was resumed.
    pub resumes: u32,
    /// The values of its parameters (`[params]`), given or default.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub params: serde_json::Map<String, serde_json::Value>,
    /// The run this one retries (`flow retry`), whose outputs it reused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<String>,
    /// For a run a schedule (`cron`) started: the time it was due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_for: Option<Timestamp>,
    /// For the run of a sub-workflow: the run and node that started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentLink>,
}

/// The run and node that started a sub-workflow's run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentLink {
    /// The parent run's id.
    pub run_id: String,
    /// The node of the parent run that runs the sub-workflow.
    pub node_id: String,
}

/// The record of one node of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The node's id.
    pub node_id: String,
    /// Its position in the workflow file.
    pub index: usize,
    /// The action that runs it.
    pub action: String,
    /// Where it stands.
    pub status: NodeStatus,
    /// Attempts started so far.
    pub attempts: u32,
    /// When its first attempt started.
    pub started_at: Option<Timestamp>,
    /// When it finished.
    pub finished_at: Option<Timestamp>,
    /// Time from its first attempt's start to its end, in microseconds.
    pub elapsed_us: Option<u64>,
    /// Its output, once it succeeded.
    pub output: Option<JsonText>,
    /// Its last failure, once it failed or was cancelled.
    pub error: Option<Failure>,
    /// Fuel used by its attempts together.
    pub fuel_used: Option<u64>,
    /// The run whose output this node reuses without running (`flow
    /// retry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused_from: Option<String>,
    /// For one element of a `map` node: its position in the list. Its
    /// `node_id` is then `node[position]` and `index` the map node's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub element: Option<u32>,
    /// For a node that runs a sub-workflow: the run of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_run: Option<String>,
}

impl NodeRecord {
    /// The record of node `node_id` (the `index`th of its workflow, run by
    /// `action`) before anything happened to it but `status`.
    pub fn new(index: usize, node_id: &str, action: &str, status: NodeStatus) -> Self {
        Self {
            node_id: node_id.to_string(),
            index,
            action: action.to_string(),
            status,
            attempts: 0,
            started_at: None,
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

    /// The record of element `element` of map node `node_id`.
    pub fn element(index: usize, node_id: &str, action: &str, element: u32) -> Self {
        Self {
            element: Some(element),
            ..Self::new(
                index,
                &element_id(node_id, element),
                action,
                NodeStatus::Pending,
            )
        }
    }

    /// A copy of this record without its output, which is not copied.
    pub(crate) fn without_output(&self) -> Self {
        let Self {
            node_id,
            index,
            action,
            status,
            attempts,
            started_at,
            finished_at,
            elapsed_us,
            output: _,
            error,
            fuel_used,
            reused_from,
            element,
            child_run,
        } = self;
        Self {
            node_id: node_id.clone(),
            index: *index,
            action: action.clone(),
            status: status.clone(),
            attempts: *attempts,
            started_at: *started_at,
            finished_at: *finished_at,
            elapsed_us: *elapsed_us,
            output: None,
            error: error.clone(),
            fuel_used: *fuel_used,
            reused_from: reused_from.clone(),
            element: *element,
            child_run: child_run.clone(),
        }
    }

    /// The id of the map node, for an element's record; its own id for a
    /// node's.
    pub fn map_node(&self) -> &str {
        match self.element {
            Some(_) => self
                .node_id
                .split_once('[')
                .map_or(self.node_id.as_str(), |(node, _)| node),
            None => &self.node_id,
        }
    }
}

/// The id under which element `element` of node `node_id` is recorded:
/// `node_id[element]` (brackets never appear in node ids).
pub fn element_id(node_id: &str, element: u32) -> String {
    format!("{node_id}[{element}]")
}

/// The record of one attempt of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// Attempt number, from 1.
    pub number: u32,
    /// When it started.
    pub started_at: Timestamp,
    /// How long it ran, in microseconds; `None` while it runs.
    pub elapsed_us: Option<u64>,
    /// Why it failed, if it did.
    pub error: Option<Failure>,
    /// Fuel it used, when metered.
    pub fuel_used: Option<u64>,
    /// The delay chosen before the next attempt, in milliseconds, when the
    /// node was retried after this one.
    pub retry_delay_ms: Option<u64>,
    /// What the action logged (its `log` records in order), then what it
    /// printed on stdout, then on stderr; bounded by the attempt's limits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<GuestLine>,
    /// What the attempt did over HTTP, when its node may reach the network
    /// or its plugin tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpStats>,
}

/// One line an action logged or printed during an attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestLine {
    /// Where it came from, and its severity for `log` calls.
    pub kind: LineKind,
    /// Its text.
    pub text: String,
}

/// The source of a [`GuestLine`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    /// A `log` call at trace level.
    Trace,
    /// A `log` call at debug level.
    Debug,
    /// A `log` call at info level.
    Info,
    /// A `log` call at warn level.
    Warn,
    /// A `log` call at error level.
    Error,
    /// A line written to stdout.
    Stdout,
    /// A line written to stderr.
    Stderr,
}

impl LineKind {
    /// Its name, as stored: `info`, `stdout`, ...
    pub fn name(self) -> &'static str {
        match self {
            LineKind::Trace => "trace",
            LineKind::Debug => "debug",
            LineKind::Info => "info",
            LineKind::Warn => "warn",
            LineKind::Error => "error",
            LineKind::Stdout => "stdout",
            LineKind::Stderr => "stderr",
        }
    }
}

impl fmt::Display for LineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Reads a list of paths, or the single path (or `null`) of schema 3.
fn one_or_many<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<PathBuf>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Paths {
        Many(Vec<PathBuf>),
        One(Option<PathBuf>),
    }
    Ok(match Paths::deserialize(deserializer)? {
        Paths::Many(paths) => paths,
        Paths::One(path) => path.into_iter().collect(),
    })
}
