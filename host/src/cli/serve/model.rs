//! The documents of the API that have a fixed shape, with their OpenAPI
//! schemas. A run's detail is the document of `flow status --json`,
//! described in [`flow_host::store::RunDocument`].

use flow_host::store::RunRecord;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A run's header: what `flow list --json` shows of each run.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunSummary {
    /// The run's id (a ULID: sorts by start time).
    pub run_id: String,
    /// The run and node that started it, for a sub-workflow's run.
    pub parent: Option<Parent>,
    /// `[workflow] id`.
    pub workflow_id: String,
    /// The workflow file.
    pub workflow_path: String,
    /// `running`, `succeeded`, `failed`, `cancelled` or `interrupted`.
    pub status: String,
    /// Why it failed or stopped.
    pub error: Option<String>,
    /// Nodes of the workflow.
    pub nodes: usize,
    /// Nodes that failed.
    pub failed_nodes: usize,
    /// Times it was resumed.
    pub resumes: u32,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, once it ended.
    pub finished_at: Option<String>,
    /// For a run a schedule started: the time it was due (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_for: Option<String>,
}

/// The run and node that started a sub-workflow's run.
#[derive(Debug, Serialize, ToSchema)]
pub struct Parent {
    /// The parent run.
    pub run_id: String,
    /// Its node that runs the sub-workflow.
    pub node_id: String,
}

impl From<&RunRecord> for RunSummary {
    fn from(run: &RunRecord) -> Self {
        Self {
            run_id: run.run_id.clone(),
            parent: run.parent.as_ref().map(|parent| Parent {
                run_id: parent.run_id.clone(),
                node_id: parent.node_id.clone(),
            }),
            workflow_id: run.workflow_id.clone(),
            workflow_path: run.workflow_path.display().to_string(),
            status: run.status.to_string(),
            error: run.error.clone(),
            nodes: run.nodes,
            failed_nodes: run.failed_nodes,
            resumes: run.resumes,
            created_at: run.created_at.to_rfc3339(),
            finished_at: run.finished_at.map(|t| t.to_rfc3339()),
            scheduled_for: run.scheduled_for.map(|t| t.to_rfc3339()),
        }
    }
}

/// A page of runs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunPage {
    /// The runs.
    pub runs: Vec<RunSummary>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// Which runs to list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunFilter {
    /// Only runs of this workflow (its `[workflow] id`).
    pub workflow: Option<String>,
    /// Only runs with this status.
    pub status: Option<String>,
    /// Only runs started at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Only runs started before this time (RFC 3339).
    pub until: Option<String>,
    /// Runs per page: 1 to 500 (default 50).
    pub limit: Option<usize>,
    /// The `next_cursor` of the page before.
    pub cursor: Option<String>,
    /// Include the runs of sub-workflows (default true).
    pub children: Option<bool>,
}

/// A workflow file of the server's directory.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowSummary {
    /// The file's name without `.toml`: the workflow's name in the API.
    pub name: String,
    /// The file.
    pub file: String,
    /// `[workflow] id`, when the file is valid.
    pub id: Option<String>,
    /// Whether the file is a valid workflow.
    pub valid: bool,
    /// Its nodes, when valid.
    pub nodes: Option<usize>,
    /// Its parameters, when valid.
    pub params: Vec<ParamInfo>,
    /// Why it is invalid: the errors of `flow validate --json`.
    #[schema(value_type = Option<Object>)]
    pub errors: Option<serde_json::Value>,
    /// Its `cron` schedule, if it has one.
    pub schedule: Option<ScheduleInfo>,
}

/// When the server starts runs of a workflow by itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleInfo {
    /// The cron expression.
    pub cron: String,
    /// The IANA time zone it is read in.
    pub timezone: String,
    /// `skip`, `queue` or `allow`: what a fire does while the run before
    /// still goes.
    pub overlap: String,
    /// How far back missed fires are made up for, in seconds.
    pub catch_up_s: u64,
    /// The time it last fired (RFC 3339).
    pub last_fire: Option<String>,
    /// The time it fires next (RFC 3339).
    pub next_fire: Option<String>,
}

/// A workflow with its graph.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowDetail {
    /// What the list says of it.
    #[serde(flatten)]
    pub summary: WorkflowSummary,
    /// Its nodes in file order, when valid.
    pub graph: Vec<GraphNode>,
}

/// A node of a workflow's graph.
#[derive(Debug, Serialize, ToSchema)]
pub struct GraphNode {
    /// The node's id.
    pub id: String,
    /// Its action (`workflow:<id>` for a sub-workflow).
    pub action: String,
    /// The nodes it depends on.
    pub depends_on: Vec<String>,
    /// Its dependency level (0: depends on nothing).
    pub level: usize,
    /// Whether it runs once per element of a list.
    pub map: bool,
    /// Whether it has a `when` condition.
    pub conditional: bool,
}

/// A parameter of a workflow (`[params]`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ParamInfo {
    /// Its name.
    pub name: String,
    /// `string`, `integer`, `number`, `boolean`, `array` or `object`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its default; a parameter without one must be given.
    #[schema(value_type = Option<Object>)]
    pub default: Option<serde_json::Value>,
    /// What it is for.
    pub description: Option<String>,
}

/// The body of a request that starts a run.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    /// Values of the workflow's parameters.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: serde_json::Map<String, serde_json::Value>,
}

/// The body of a retry.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Run these nodes and everything downstream of them again; empty:
    /// only what did not succeed.
    #[serde(default)]
    pub from: Vec<String>,
    /// Go on even though the workflow file or a plugin changed.
    #[serde(default)]
    pub force: bool,
}

/// The body of a resume.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resume {
    /// Go on even though the workflow file or a plugin changed.
    #[serde(default)]
    pub force: bool,
}

/// A run that was started, resumed or asked to stop.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunRef {
    /// The run's id.
    pub run_id: String,
    /// Where to read it.
    pub url: String,
}

impl RunRef {
    /// The run and its URL.
    pub fn new(run_id: &str) -> Self {
        Self {
            run_id: run_id.to_string(),
            url: format!("/api/v1/runs/{run_id}"),
        }
    }
}

/// Lines an action logged or printed.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogLine {
    /// The node (`node[3]` for an element of a map node).
    pub node: String,
    /// The attempt, from 1.
    pub attempt: u32,
    /// `info`, `warn`, `error`, `debug`, `trace`, `stdout` or `stderr`.
    pub kind: String,
    /// The text.
    pub text: String,
}

/// A node's logs.
#[derive(Debug, Serialize, ToSchema)]
pub struct Logs {
    /// The run.
    pub run_id: String,
    /// The lines, attempt by attempt.
    pub lines: Vec<LogLine>,
}

/// Whether the server is up, and how busy.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `stopping` during a shutdown.
    pub status: String,
    /// The `flow` version.
    pub version: String,
    /// Seconds since the server started.
    pub uptime_s: f64,
    /// Runs going on.
    pub runs_active: usize,
    /// Attempts running across runs.
    pub attempts_running: usize,
    /// Attempts waiting for a slot (`--max-attempts`).
    pub attempts_waiting: usize,
    /// The bound on attempts across runs.
    pub max_attempts: usize,
}
