//! Running one node: its attempts, its records, its guest output.

use std::sync::Arc;
use std::time::Instant;

use serde_json::value::RawValue;

use super::NodeReport;
use crate::observe::{Event, Observer};
use crate::runtime::{AttemptReport, Invocation, Limits, LogLevel, Plugin, Runtime};
use crate::spec::{NodeSpec, WorkflowSpec};
use crate::store::{NodeRecord, NodeStatus, StoreError, Timestamp, WorkflowStore};

/// What every node task of a run shares.
pub(super) struct Shared {
    pub runtime: Arc<Runtime>,
    pub store: Arc<dyn WorkflowStore>,
    pub observers: Vec<Arc<dyn Observer>>,
    pub limits: Limits,
    pub workflow: Arc<WorkflowSpec>,
    pub run_id: String,
}

impl Shared {
    pub fn notify(&self, event: &Event<'_>) {
        for observer in &self.observers {
            observer.on_event(event);
        }
    }
}

/// A node ready to run: its plugin and its JSON input.
pub(super) struct NodeTask {
    pub shared: Arc<Shared>,
    pub index: usize,
    pub plugin: Arc<Plugin>,
    pub input: String,
}

/// A node task's result.
pub(super) struct Finished {
    pub index: usize,
    pub report: NodeReport,
    /// Set when a state change could not be saved.
    pub store_error: Option<StoreError>,
}

/// A fresh record of `node` in `status`.
pub(super) fn node_record(index: usize, node: &NodeSpec, status: NodeStatus) -> NodeRecord {
    NodeRecord {
        node_id: node.id.clone(),
        index,
        action: node.action.clone(),
        status,
        attempts: 0,
        started_at: None,
        finished_at: None,
        elapsed_us: None,
        output: None,
        error: None,
        fuel_used: None,
    }
}

impl NodeTask {
    pub async fn run(self) -> Finished {
        let shared = &*self.shared;
        let node = &shared.workflow.nodes[self.index];
        let started = Instant::now();
        let mut record = node_record(self.index, node, NodeStatus::Running);
        record.started_at = Some(Timestamp::now());
        let mut fuel_used: Option<u64> = None;
        let max_attempts = 1;

        let result = loop {
            record.attempts += 1;
            // Recorded before the attempt starts: after a crash, the store
            // shows which attempt was in flight.
            if let Err(error) = shared.store.put_node(&shared.run_id, &record) {
                return self.abandon(node, record, error);
            }
            shared.notify(&Event::AttemptStarted {
                node: &node.id,
                attempt: record.attempts,
            });
            let call = Invocation {
                workflow_id: &shared.workflow.id,
                run_id: &shared.run_id,
                node_id: &node.id,
                attempt: record.attempts,
                input: &self.input,
            };
            let attempt = shared.runtime.run(&self.plugin, call, &shared.limits).await;
            self.log_guest_output(node, record.attempts, &attempt);
            if let Some(fuel) = attempt.fuel_used {
                fuel_used = Some(fuel_used.unwrap_or(0) + fuel);
            }
            match attempt.result {
                Err(error) if error.is_retryable() && record.attempts < max_attempts => {
                    tracing::warn!(
                        workflow = %shared.workflow.id,
                        run = %shared.run_id,
                        node = %node.id,
                        attempt = record.attempts,
                        "attempt failed, retrying: {error}"
                    );
                }
                result => break result,
            }
        };

        let mut report = NodeReport::new(&node.id, &node.action, NodeStatus::Running);
        match result {
            Ok(output) => {
                record.status = NodeStatus::Succeeded;
                record.output = RawValue::from_string(output.clone()).ok();
                report.output = Some(Arc::from(output));
            }
            Err(error) => {
                let message = error.to_string();
                tracing::error!(
                    workflow = %shared.workflow.id,
                    run = %shared.run_id,
                    node = %node.id,
                    attempt = record.attempts,
                    "node failed: {message}"
                );
                record.status = NodeStatus::Failed;
                record.error = Some(message.clone());
                report.error = Some(message);
            }
        }
        let elapsed = started.elapsed();
        record.finished_at = Some(Timestamp::now());
        record.elapsed_us = Some(elapsed.as_micros() as u64);
        record.fuel_used = fuel_used;
        report.status = record.status.clone();
        report.attempts = record.attempts;
        report.elapsed = elapsed;
        report.fuel_used = fuel_used;

        let store_error = shared.store.put_node(&shared.run_id, &record).err();
        shared.notify(&Event::NodeFinished { node: &report });
        Finished {
            index: self.index,
            report,
            store_error,
        }
    }

    /// Ends the node without running it further because its state could
    /// not be saved.
    fn abandon(&self, node: &NodeSpec, record: NodeRecord, error: StoreError) -> Finished {
        let mut report = NodeReport::new(&node.id, &node.action, NodeStatus::Failed);
        report.attempts = record.attempts.saturating_sub(1);
        report.error = Some(format!("its state could not be saved: {error}"));
        Finished {
            index: self.index,
            report,
            store_error: Some(error),
        }
    }

    /// Writes what the guest logged and printed to the host's log, under
    /// its node.
    fn log_guest_output(&self, node: &NodeSpec, attempt: u32, report: &AttemptReport) {
        let shared = &*self.shared;
        let (workflow, run, node) = (&shared.workflow.id, &shared.run_id, &node.id);
        macro_rules! guest {
            ($level:ident, $($fields:tt)*) => {
                tracing::$level!(target: "flow::plugin", workflow = %workflow, run = %run, node = %node, attempt, $($fields)*)
            };
        }
        for record in &report.logs {
            let message = &record.message;
            match record.level {
                LogLevel::Trace => guest!(trace, "{message}"),
                LogLevel::Debug => guest!(debug, "{message}"),
                LogLevel::Info => guest!(info, "{message}"),
                LogLevel::Warn => guest!(warn, "{message}"),
                LogLevel::Error => guest!(error, "{message}"),
            }
        }
        if report.logs_dropped > 0 {
            guest!(
                warn,
                "{} more log records dropped: the plugin logged more than the limit",
                report.logs_dropped
            );
        }
        for line in report.stdout.lines() {
            guest!(info, stream = "stdout", "{line}");
        }
        for line in report.stderr.lines() {
            guest!(warn, stream = "stderr", "{line}");
        }
        if report.output_dropped > 0 {
            guest!(
                warn,
                "{} bytes of stdout and stderr dropped: the plugin printed more than the limit",
                report.output_dropped
            );
        }
    }
}
