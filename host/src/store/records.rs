//! What is stored about runs and nodes.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::options::Overrides;

/// Milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(since.as_millis() as u64)
    }

    /// As a `SystemTime`.
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}",
            humantime::format_rfc3339_seconds(self.to_system_time())
        )
    }
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Nodes are being run.
    Running,
    /// Every node succeeded.
    Succeeded,
    /// A node failed.
    Failed,
    /// The run was cancelled.
    Cancelled,
    /// The process running it stopped before the end (a crash, a kill, a
    /// power cut); `flow resume` continues it.
    Interrupted,
}

impl RunStatus {
    /// True once the run has ended, whatever the outcome.
    pub fn is_finished(self) -> bool {
        self != RunStatus::Running
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Interrupted => "interrupted",
        })
    }
}

/// Where a node stands.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum NodeStatus {
    /// Not started.
    Pending,
    /// An attempt is under way.
    Running,
    /// Finished with an output.
    Succeeded,
    /// Finished with an error.
    Failed,
    /// Not run because a node it depends on failed.
    Skipped {
        /// The id of the failed node.
        because: String,
    },
    /// Stopped by a cancellation while an attempt was running or waiting
    /// to retry.
    Cancelled,
}

impl NodeStatus {
    /// The status's name.
    pub fn name(&self) -> &'static str {
        match self {
            NodeStatus::Pending => "pending",
            NodeStatus::Running => "running",
            NodeStatus::Succeeded => "succeeded",
            NodeStatus::Failed => "failed",
            NodeStatus::Skipped { .. } => "skipped",
            NodeStatus::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for NodeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeStatus::Skipped { because } => write!(f, "skipped (`{because}` failed)"),
            other => f.write_str(other.name()),
        }
    }
}

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
    /// Why it failed, in a sentence.
    pub error: Option<String>,
    /// SHA-256 of the workflow file's text, hex.
    pub workflow_sha256: String,
    /// The plugins directory the run used.
    pub plugins_dir: Option<PathBuf>,
    /// SHA-256 of each plugin the run uses, by plugin name.
    pub plugins: BTreeMap<String, String>,
    /// Options given on the command line, applied again on resume.
    pub overrides: Overrides,
    /// How many times the run was resumed.
    pub resumes: u32,
}

/// The record of one node of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// Its output (JSON), once it succeeded.
    pub output: Option<Box<RawValue>>,
    /// Its last error, once it failed.
    pub error: Option<String>,
    /// Fuel used by its attempts together.
    pub fuel_used: Option<u64>,
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
    pub error: Option<String>,
    /// Fuel it used, when metered.
    pub fuel_used: Option<u64>,
    /// The delay chosen before the next attempt, in milliseconds, when the
    /// node was retried after this one.
    pub retry_delay_ms: Option<u64>,
    /// What the action logged (its `log` records in order), then what it
    /// printed on stdout, then on stderr; bounded by the attempt's limits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<GuestLine>,
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

impl PartialEq for NodeRecord {
    fn eq(&self, other: &Self) -> bool {
        self.node_id == other.node_id
            && self.index == other.index
            && self.action == other.action
            && self.status == other.status
            && self.attempts == other.attempts
            && self.started_at == other.started_at
            && self.finished_at == other.finished_at
            && self.elapsed_us == other.elapsed_us
            && self.output.as_ref().map(|o| o.get()) == other.output.as_ref().map(|o| o.get())
            && self.error == other.error
            && self.fuel_used == other.fuel_used
    }
}
