//! Running one node: its attempts and retries, their records, the guest's
//! output.

use std::sync::Arc;
use std::time::Instant;

use serde_json::value::RawValue;
use tokio_util::sync::CancellationToken;

use super::extension::{AttemptFailure, RetryDecision, Sleeper};
use super::handle::Progress;
use super::middleware::{AttemptInfo, Middleware, Next};
use super::persist::Persistence;
use super::{ErrorHandler, NodeReport};
use crate::observe::{Event, Metric, MetricsCollector, Observer};
use crate::runtime::{AttemptError, AttemptReport, Invocation, LogLevel, Plugin, Runtime};
use crate::spec::{NodeSpec, WorkflowSpec};
use crate::store::{
    AttemptRecord, GuestLine, LineKind, NodeRecord, NodeStatus, StoreError, Timestamp,
    WorkflowStore,
};

/// What every node task of a run shares.
pub(super) struct Shared {
    pub runtime: Arc<Runtime>,
    pub store: Arc<dyn WorkflowStore>,
    pub observers: Vec<Arc<dyn Observer>>,
    pub metrics: Vec<Arc<dyn MetricsCollector>>,
    pub error_handler: Option<Arc<dyn ErrorHandler>>,
    pub middleware: Vec<Arc<dyn Middleware>>,
    pub sleeper: Arc<dyn Sleeper>,
    pub workflow: Arc<WorkflowSpec>,
    /// The plugin of each node, by node index.
    pub plugins: Vec<Arc<Plugin>>,
    pub run_id: String,
    pub cancel: CancellationToken,
    pub progress: Arc<Progress>,
    pub persistence: Arc<Persistence>,
}

impl Shared {
    /// Tells the observers, when observability is on.
    pub fn notify(&self, event: &Event<'_>) {
        if self.workflow.options.observability {
            for observer in &self.observers {
                observer.on_event(event);
            }
        }
    }

    /// Tells the metrics collectors, when observability is on.
    pub fn measure(&self, metric: &Metric<'_>) {
        if self.workflow.options.observability {
            for collector in &self.metrics {
                collector.record(metric);
            }
        }
    }
}

/// A node ready to run, with its JSON input.
pub(super) struct NodeTask {
    pub shared: Arc<Shared>,
    pub index: usize,
    pub input: String,
    /// Attempts recorded before a resume.
    pub previous_attempts: u32,
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

/// How the attempts of a node ended.
enum Outcome {
    Succeeded(String),
    Failed(AttemptError),
    Cancelled,
}

impl NodeTask {
    pub async fn run(self) -> Finished {
        let shared = &*self.shared;
        let node = &shared.workflow.nodes[self.index];
        let started = Instant::now();
        let mut record = node_record(self.index, node, NodeStatus::Running);
        record.started_at = Some(Timestamp::now());
        // A resumed run numbers its attempts after the earlier ones.
        record.attempts = self.previous_attempts;
        let mut fuel_used: Option<u64> = None;
        let mut tries = 0;

        let (outcome, last) = loop {
            record.attempts += 1;
            tries += 1;
            let number = record.attempts;
            let mut attempt = AttemptRecord {
                number,
                started_at: Timestamp::now(),
                elapsed_us: None,
                error: None,
                fuel_used: None,
                retry_delay_ms: None,
                logs: Vec::new(),
            };
            // Recorded before the attempt starts: after a crash, the store
            // shows which attempt was in flight.
            if let Err(error) = shared
                .persistence
                .put(record.clone(), Some(attempt.clone()))
            {
                return self.abandon(node, record, error);
            }
            shared
                .progress
                .set_node(self.index, NodeStatus::Running, number);
            shared.notify(&Event::AttemptStarted {
                node: &node.id,
                attempt: number,
            });

            let Some(mut report) = self.attempt(node, number).await else {
                attempt.error = Some("cancelled".into());
                break (Outcome::Cancelled, attempt);
            };
            attempt.logs = self.log_guest_output(node, number, &mut report);
            if let Some(fuel) = report.fuel_used {
                fuel_used = Some(fuel_used.unwrap_or(0) + fuel);
            }
            attempt.elapsed_us = Some(report.elapsed.as_micros() as u64);
            attempt.fuel_used = report.fuel_used;
            attempt.error = report.result.as_ref().err().map(ToString::to_string);
            shared.notify(&Event::AttemptFinished {
                node: &node.id,
                attempt: number,
                error: report.result.as_ref().err(),
                elapsed: report.elapsed,
            });
            shared.measure(&Metric::AttemptFinished {
                workflow: &shared.workflow.id,
                node: &node.id,
                action: &node.action,
                attempt: number,
                duration: report.elapsed,
                fuel: report.fuel_used,
                succeeded: report.result.is_ok(),
            });

            let error = match report.result {
                Ok(output) => break (Outcome::Succeeded(output), attempt),
                Err(error) => error,
            };
            let RetryDecision::Retry { after } = self.decide(node, number, tries, &error) else {
                break (Outcome::Failed(error), attempt);
            };
            attempt.retry_delay_ms = Some(after.as_millis() as u64);
            if let Err(store_error) = shared
                .persistence
                .put(record.clone(), Some(attempt.clone()))
            {
                return self.abandon(node, record, store_error);
            }
            tracing::info!(
                workflow = %shared.workflow.id,
                run = %shared.run_id,
                node = %node.id,
                attempt = number,
                "attempt failed, retrying in {}: {error}",
                crate::observe::format_duration(after)
            );
            shared.notify(&Event::RetryScheduled {
                node: &node.id,
                attempt: number,
                error: &error,
                delay: after,
            });
            shared.measure(&Metric::RetryScheduled {
                workflow: &shared.workflow.id,
                node: &node.id,
                action: &node.action,
                attempt: number,
                delay: after,
            });
            tokio::select! {
                biased;
                () = shared.cancel.cancelled() => break (Outcome::Cancelled, attempt),
                () = shared.sleeper.sleep(after) => {}
            }
        };

        let mut report = NodeReport::new(&node.id, &node.action, NodeStatus::Running);
        match outcome {
            Outcome::Succeeded(output) => {
                record.status = NodeStatus::Succeeded;
                record.output = RawValue::from_string(output.clone()).ok();
                report.output = Some(Arc::from(output));
            }
            Outcome::Failed(error) => {
                let message = error.to_string();
                tracing::info!(
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
            Outcome::Cancelled => {
                record.status = NodeStatus::Cancelled;
                record.error = Some("cancelled".into());
                report.error = Some("cancelled".into());
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

        // The node's final state and its last attempt reach the store in
        // one atomic write; with strict durability they are on disk before
        // the scheduler acts on them.
        let store_error = match shared.persistence.put(record, Some(last)) {
            Ok(()) => shared.persistence.commit().await.err(),
            Err(error) => Some(error),
        };
        shared
            .progress
            .set_node(self.index, report.status.clone(), report.attempts);
        Finished {
            index: self.index,
            report,
            store_error,
        }
    }

    /// Runs one attempt through the middleware chain; `None` if the run was
    /// cancelled meanwhile (the attempt is then dropped, which stops it).
    async fn attempt(&self, node: &NodeSpec, number: u32) -> Option<AttemptReport> {
        let shared = &*self.shared;
        let call = Invocation {
            workflow_id: &shared.workflow.id,
            run_id: &shared.run_id,
            node_id: &node.id,
            attempt: number,
            input: &self.input,
        };
        let info = AttemptInfo {
            workflow_id: &shared.workflow.id,
            run_id: &shared.run_id,
            node_id: &node.id,
            action: &node.action,
            attempt: number,
            input: &self.input,
        };
        let run = shared
            .runtime
            .run(&shared.plugins[self.index], call, &node.options.limits);
        let chain = Next::new(&shared.middleware, info, Box::pin(run)).run();
        tokio::select! {
            biased;
            () = shared.cancel.cancelled() => None,
            report = chain => Some(report),
        }
    }

    /// The retry policy's proposal, as the error handler amends it.
    /// `tries` counts the attempts of this session of the run: a resumed
    /// node gets its retries afresh.
    fn decide(
        &self,
        node: &NodeSpec,
        number: u32,
        tries: u32,
        error: &AttemptError,
    ) -> RetryDecision {
        let policy = &node.options.retry;
        let proposed = if error.is_retryable() && tries <= policy.retries {
            RetryDecision::Retry {
                after: policy.delay_before(tries, fastrand::f64()),
            }
        } else {
            RetryDecision::GiveUp
        };
        match &self.shared.error_handler {
            Some(handler) => handler.on_attempt_failed(
                &AttemptFailure {
                    node: &node.id,
                    action: &node.action,
                    attempt: number,
                    error,
                },
                proposed,
            ),
            None => proposed,
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
    /// its node, and returns it for the attempt's record.
    fn log_guest_output(
        &self,
        node: &NodeSpec,
        attempt: u32,
        report: &mut AttemptReport,
    ) -> Vec<GuestLine> {
        let shared = &*self.shared;
        let (workflow, run, node) = (&shared.workflow.id, &shared.run_id, &node.id);
        let lines = guest_lines(report);
        // One record per line of text, so that text logs stay one line each.
        for (kind, text) in lines
            .iter()
            .flat_map(|line| line.text.lines().map(move |text| (line.kind, text)))
        {
            macro_rules! guest {
                ($level:ident $(, $field:ident = $value:expr)?) => {
                    tracing::$level!(target: "flow::plugin", workflow = %workflow, run = %run, node = %node, attempt, $($field = $value,)? "{text}")
                };
            }
            match kind {
                LineKind::Trace => guest!(trace),
                LineKind::Debug => guest!(debug),
                LineKind::Info => guest!(info),
                LineKind::Warn => guest!(warn),
                LineKind::Error => guest!(error),
                LineKind::Stdout => guest!(info, stream = "stdout"),
                LineKind::Stderr => guest!(warn, stream = "stderr"),
            }
        }
        lines
    }
}

/// What an attempt logged and printed, as lines: its `log` records in
/// order, then stdout, then stderr, each followed by a note of what was
/// dropped over the limits.
fn guest_lines(report: &mut AttemptReport) -> Vec<GuestLine> {
    let line = |kind, text: String| GuestLine { kind, text };
    let mut lines: Vec<GuestLine> = std::mem::take(&mut report.logs)
        .into_iter()
        .map(|record| {
            let kind = match record.level {
                LogLevel::Trace => LineKind::Trace,
                LogLevel::Debug => LineKind::Debug,
                LogLevel::Info => LineKind::Info,
                LogLevel::Warn => LineKind::Warn,
                LogLevel::Error => LineKind::Error,
            };
            line(kind, record.message)
        })
        .collect();
    if report.logs_dropped > 0 {
        lines.push(line(
            LineKind::Warn,
            format!(
                "{} more log records dropped: the plugin logged more than the limit",
                report.logs_dropped
            ),
        ));
    }
    lines.extend(
        report
            .stdout
            .lines()
            .map(|l| line(LineKind::Stdout, l.into())),
    );
    lines.extend(
        report
            .stderr
            .lines()
            .map(|l| line(LineKind::Stderr, l.into())),
    );
    if report.output_dropped > 0 {
        lines.push(line(
            LineKind::Warn,
            format!(
                "{} bytes of stdout and stderr dropped: the plugin printed more than the limit",
                report.output_dropped
            ),
        ));
    }
    lines
}
