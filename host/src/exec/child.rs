//! Nodes that run another workflow file (`workflow = "other.toml"`).
//!
//! The node's input gives the sub-workflow's parameters; the sub-workflow
//! runs as a run of its own (a child run), recorded with a link to the
//! parent run and node, and the node's record links back to it. The node's
//! output is the child run's outputs, by node id. Cancelling the parent
//! cancels the child; resuming the parent resumes the child where it
//! stopped, or takes its outputs if it had ended.

use std::sync::Arc;
use std::time::Instant;

use super::node::{Finished, NodeLog, Shared, micros, settle};
use super::{ExecError, WorkflowEngine, launch};
use crate::observe::Event;
use crate::report::{Failure, FailureKind, JsonText, NodeReport, NodeStatus, RunStatus, Timestamp};
use crate::spec::WorkflowSpec;
use crate::store::{NodeRecord, ParentLink};

/// A node that runs a sub-workflow, ready to start.
pub(super) struct ChildTask {
    pub shared: Arc<Shared>,
    pub index: usize,
    /// Its request, or why its expressions could not compute it.
    pub input: Result<String, Failure>,
    /// The child run an earlier session of the parent started.
    pub before: Option<String>,
    /// Attempts recorded before a resume.
    pub previous_attempts: u32,
    /// The parent's resume was forced past changes: so is the child's.
    pub forced: bool,
}

/// How the child run ended, for the node.
enum Outcome {
    Succeeded(JsonText),
    Failed(Failure),
    Cancelled(Failure),
}

impl ChildTask {
    pub async fn run(self) -> Finished {
        let shared = &*self.shared;
        let node = &shared.workflow.nodes[self.index];
        let started = Instant::now();
        let mut record = NodeRecord::new(self.index, &node.id, &node.action, NodeStatus::Running);
        record.started_at = Some(Timestamp::now());
        record.child_run = self.before.clone();
        // Each start or resume of its child run counts as an attempt.
        record.attempts = self.previous_attempts + 1;
        shared
            .progress
            .set_node(self.index, &NodeStatus::Running, 0);
        let outcome = match (&node.workflow, &self.input) {
            (Some(child), Ok(request)) => self.child_run(child, request, &mut record).await,
            (_, Err(failure)) => Outcome::Failed(failure.clone()),
            (None, Ok(_)) => Outcome::Failed(Failure::new(
                FailureKind::Host,
                "the node has no sub-workflow",
            )),
        };
        let mut report = NodeReport::new(&node.id, &node.action, NodeStatus::Running);
        let (status, error) = match outcome {
            Outcome::Succeeded(output) => {
                record.output = Some(output.clone());
                report.output = Some(output);
                (NodeStatus::Succeeded, None)
            }
            Outcome::Failed(failure) => (NodeStatus::Failed, Some(failure)),
            Outcome::Cancelled(failure) => (NodeStatus::Cancelled, Some(failure)),
        };
        let elapsed = started.elapsed();
        record.status = status.clone();
        record.error = error.clone();
        record.finished_at = Some(Timestamp::now());
        record.elapsed_us = Some(micros(elapsed));
        report.status = status;
        report.error = error;
        report.elapsed = elapsed;
        report.attempts = record.attempts;
        settle(shared, self.index, None, (record, None), report).await
    }

    /// Starts (or resumes) the child run, links it from the node's record,
    /// and waits for it.
    async fn child_run(
        &self,
        child: &Arc<WorkflowSpec>,
        request: &str,
        record: &mut NodeRecord,
    ) -> Outcome {
        let shared = &*self.shared;
        let node = &shared.workflow.nodes[self.index];
        let mut spec = WorkflowSpec::clone(child);
        if let Err(failure) = params(&mut spec, request) {
            return Outcome::Failed(failure);
        }
        // The child's own events are not sent to the parent's observers,
        // which follow the parent's nodes; its records are in the store.
        let engine = WorkflowEngine {
            observers: Vec::new(),
            ..shared.engine.clone()
        };
        let store = &shared.store;
        let earlier = match &self.before {
            Some(id) => store.run(id).ok().flatten(),
            None => None,
        };
        let spec = Arc::new(spec);
        let registry = shared.registry.clone();
        let handle = match earlier {
            Some(run) if run.status == RunStatus::Succeeded => {
                let sinks = run
                    .sinks
                    .or_else(|| store.sinks(&run.run_id).ok().flatten());
                return outputs_of(shared, &run.run_id, sinks.as_deref());
            }
            Some(run) => launch::resume(&engine, spec, registry, &run.run_id, self.forced),
            None => {
                let parent = ParentLink {
                    run_id: shared.run_id.clone(),
                    node_id: node.id.clone(),
                };
                launch::start(
                    &engine,
                    spec,
                    registry,
                    launch::Origin {
                        parent: Some(parent),
                        scheduled_for: None,
                    },
                )
            }
        };
        let handle = match handle {
            Ok(handle) => handle,
            Err(error) => return Outcome::Failed(start_failure(child, &error)),
        };
        let child_id = handle.run_id().to_string();
        // The link is on disk before the child runs anything of note, so
        // that a resume of the parent finds the child.
        record.child_run = Some(child_id.clone());
        let linked = match shared.persistence.put(record.clone(), None) {
            Ok(()) => shared.persistence.commit().await,
            Err(error) => Err(error),
        };
        let canceller = handle.canceller();
        if let Err(error) = linked {
            canceller.cancel();
            let _ = handle.wait().await;
            return Outcome::Failed(Failure::new(
                FailureKind::Host,
                format!("its state could not be saved: {error}"),
            ));
        }
        shared.notify(&Event::AttemptStarted {
            node: &node.id,
            attempt: record.attempts,
        });
        shared.log_node(&node.id, "started", record.attempts, NodeLog::default());
        let wait = handle.wait();
        tokio::pin!(wait);
        let ended = tokio::select! {
            biased;
            () = shared.cancel.cancelled() => {
                canceller.cancel();
                wait.await
            }
            ended = &mut wait => ended,
        };
        let report = match ended {
            Ok(report) => report,
            Err(error) => return Outcome::Failed(start_failure(child, &error)),
        };
        match report.status {
            RunStatus::Succeeded => {
                let fields = report.sinks.iter().filter_map(|&index| {
                    let node = report.nodes.get(index)?;
                    Some((node.id.as_str(), node.output.as_ref()?))
                });
                Outcome::Succeeded(JsonText::object(fields))
            }
            RunStatus::Cancelled => Outcome::Cancelled(Failure::new(
                FailureKind::Cancelled,
                format!(
                    "its run {child_id} of workflow `{}` was cancelled",
                    child.id
                ),
            )),
            _ => Outcome::Failed(Failure::new(
                FailureKind::Fatal,
                format!(
                    "its run {child_id} of workflow `{}` failed: {}",
                    child.id,
                    report.error.as_deref().unwrap_or("unknown error")
                ),
            )),
        }
    }
}

/// Gives the sub-workflow its parameters: the node's input, an object.
fn params(spec: &mut WorkflowSpec, request: &str) -> Result<(), Failure> {
    let failure = |message: String| Failure::new(FailureKind::Fatal, message);
    // Only the input is read; the dependencies' outputs are skipped over.
    #[derive(serde::Deserialize)]
    struct Request {
        input: serde_json::Value,
    }
    let request: Request = serde_json::from_str(request)
        .map_err(|error| failure(format!("cannot read its input: {error}")))?;
    let serde_json::Value::Object(given) = &request.input else {
        return Err(failure(format!(
            "its input gives the parameters of workflow `{}`: it must be an object",
            spec.id
        )));
    };
    spec.set_params(given).map_err(|error| {
        failure(format!(
            "its input does not fit the parameters of workflow `{}`: {error}",
            spec.id
        ))
    })
}

/// The outputs of a child run that ended before the parent's resume.
fn outputs_of(shared: &Shared, run_id: &str, sinks: Option<&[String]>) -> Outcome {
    let nodes = match shared.store.nodes(run_id) {
        Ok(nodes) => nodes,
        Err(error) => {
            return Outcome::Failed(Failure::new(
                FailureKind::Host,
                format!("cannot read its run {run_id}: {error}"),
            ));
        }
    };
    let sinks = sinks.unwrap_or_default();
    let fields = nodes.iter().filter_map(|node| {
        let output = node.output.as_ref()?;
        (node.element.is_none() && sinks.contains(&node.node_id))
            .then_some((node.node_id.as_str(), output))
    });
    Outcome::Succeeded(JsonText::object(fields))
}

fn start_failure(child: &WorkflowSpec, error: &ExecError) -> Failure {
    Failure::new(
        FailureKind::Host,
        format!(
            "the run of workflow `{}` could not go on: {error}",
            child.id
        ),
    )
}
