//! Running one node: its attempts and retries, their records, the guest's
//! output.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use futures_util::future::BoxFuture;

use super::ErrorHandler;
use super::dispatch::Dispatch;
use super::extension::{AttemptFailure, RetryDecision, Sleeper};
use super::guest::guest_lines;
use super::handle::Progress;
use super::middleware::{AttemptInfo, Middleware, Next};
use super::persist::Persistence;
use crate::observe::{Event, Metric, MetricsCollector, Observer};
use crate::report::{Failure, JsonText, NodeReport, NodeStatus, Timestamp};
use crate::runtime::{
    Access, AttemptError, AttemptReport, Invocation, Plugin, Redactor, Runtime, Secrets,
};
use crate::spec::{NodeSpec, WorkflowSpec};
use crate::store::{AttemptRecord, NodeRecord, StoreError, WorkflowStore};

/// What every node task of a run shares.
pub(super) struct Shared {
    /// The engine running the run, for the runs of its sub-workflows.
    pub engine: super::WorkflowEngine,
    /// The run's plugins, for the runs of its sub-workflows.
    pub registry: Arc<crate::runtime::PluginRegistry>,
    pub runtime: Arc<Runtime>,
    pub store: Arc<dyn WorkflowStore>,
    pub observers: Vec<Arc<dyn Observer>>,
    pub metrics: Vec<Arc<dyn MetricsCollector>>,
    pub error_handler: Option<Arc<dyn ErrorHandler>>,
    pub middleware: Vec<Arc<dyn Middleware>>,
    pub sleeper: Arc<dyn Sleeper>,
    pub workflow: Arc<WorkflowSpec>,
    /// The plugin of each node, by node index (none for a node that runs
    /// a sub-workflow).
    pub plugins: Vec<Option<Arc<Plugin>>>,
    pub run_id: String,
    pub cancel: CancellationToken,
    pub progress: Arc<Progress>,
    pub persistence: Arc<Persistence>,
    /// The host's secret values, for the nodes granted some.
    pub secrets: Arc<Secrets>,
    /// Replaces every secret value in what attempts leave behind.
    pub redactor: Redactor,
    /// `run` of the expressions' context: `{"id", "workflow", "params"}`.
    pub run_value: jaq_json::Val,
}

impl Shared {
    /// Tells the observers, when observability is on.
    pub fn notify(&self, event: &Event<'_>) {
        if self.workflow.options.observability {
            for observer in &self.observers {
                observer.on_run_event(&self.run_id, event);
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

    /// Writes one log record (target `flow::node`) for a node event:
    /// `started`, `retry_scheduled`, or its final state.
    pub fn log_node(&self, node: &str, event: &str, attempt: u32, detail: NodeLog<'_>) {
        tracing::info!(
            target: "flow::node",
            workflow = %self.workflow.id,
            run = %self.run_id,
            node,
            event,
            attempt,
            duration_ms = detail.duration.map(|d| d.as_secs_f64() * 1e3),
            fuel = detail.fuel,
            kind = detail.failure.map(|f| f.kind.name()),
            error = detail.failure.map(|f| f.message.as_str()),
            "node {node} {}",
            event.replace('_', " ")
        );
    }
}

/// The optional fields of a node event's log record.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct NodeLog<'a> {
    pub duration: Option<Duration>,
    pub fuel: Option<u64>,
    pub failure: Option<&'a Failure>,
}

/// A node (or one element of a map node) ready to run, with its JSON input
/// (or why its expressions could not compute it).
pub(super) struct NodeTask {
    pub shared: Arc<Shared>,
    pub index: usize,
    /// For an element of a map node, its position in the list.
    pub element: Option<u32>,
    /// The id its records, events and logs bear: the node's, or
    /// `node[element]`.
    pub id: String,
    pub input: Result<String, Failure>,
    /// The dependencies' outputs the plugin asks for, in id order, when
    /// `input` names them instead of holding them.
    pub dependencies: Vec<(String, JsonText)>,
    /// Attempts recorded before a resume.
    pub previous_attempts: u32,
}

/// A node task's result.
pub(super) struct Finished {
    pub index: usize,
    /// For an element of a map node, its position in the list.
    pub element: Option<u32>,
    pub report: NodeReport,
    /// Set when a state change could not be saved.
    pub store_error: Option<StoreError>,
}

/// How the attempts of a node ended.
enum Outcome {
    Succeeded(JsonText),
    Failed(Failure),
    Cancelled,
}

/// What the attempts of a node add up to.
#[derive(Default)]
struct Tally {
    /// Attempts made in this session of the run.
    tries: u32,
    /// Fuel of every attempt together, when metered.
    fuel: Option<u64>,
}

impl NodeTask {
    /// The task of node `index`, to run with `input`.
    pub fn node(shared: &Arc<Shared>, index: usize, input: Result<String, Failure>) -> Self {
        Self {
            shared: shared.clone(),
            index,
            element: None,
            id: shared.workflow.nodes[index].id.clone(),
            input,
            dependencies: Vec::new(),
            previous_attempts: 0,
        }
    }

    fn new_record(&self, node: &NodeSpec) -> NodeRecord {
        let mut record = match self.element {
            Some(element) => NodeRecord::element(self.index, &node.id, &node.action, element),
            None => NodeRecord::new(self.index, &node.id, &node.action, NodeStatus::Pending),
        };
        record.status = NodeStatus::Running;
        record
    }

    pub async fn run(self) -> Finished {
        let shared = &*self.shared;
        let node = &shared.workflow.nodes[self.index];
        let started = Instant::now();
        let mut record = self.new_record(node);
        record.started_at = Some(Timestamp::now());
        // A resumed run numbers its attempts after the earlier ones.
        record.attempts = self.previous_attempts;
        let input = match &self.input {
            Ok(input) => input.as_str(),
            Err(failure) => return self.refuse(node, record, failure.clone()).await,
        };
        let mut tally = Tally::default();

        // The attempt before, when a cancel comes while the next waits.
        let mut previous: Option<AttemptRecord> = None;
        let (outcome, last) = loop {
            // With a bound across runs, an attempt starts (and is
            // recorded) once it has a slot; it gives the slot back before
            // any retry delay.
            let slot = match shared.engine.attempt_slots() {
                Some(slots) => tokio::select! {
                    biased;
                    () = shared.cancel.cancelled() => break (Outcome::Cancelled, previous),
                    slot = slots.acquire(&shared.run_id) => Some(slot),
                },
                None => None,
            };
            record.attempts += 1;
            tally.tries += 1;
            let number = record.attempts;
            let mut attempt = AttemptRecord {
                number,
                started_at: Timestamp::now(),
                elapsed_us: None,
                error: None,
                fuel_used: None,
                retry_delay_ms: None,
                logs: Vec::new(),
                http: None,
            };
            if let Err(error) = self.record_start(&record, &attempt).await {
                return self.abandon(node, record, error);
            }
            let Some(report) = self.attempt(node, number, input).await else {
                attempt.error = Some(Failure::cancelled());
                break (Outcome::Cancelled, Some(attempt));
            };
            let concluded = self.conclude(node, &mut attempt, report, &mut tally);
            // Given back once the attempt's end is observed.
            drop(slot);
            let error = match concluded {
                Ok(output) => break (Outcome::Succeeded(output), Some(attempt)),
                Err(error) => error,
            };
            let RetryDecision::Retry { after } = self.decide(node, number, tally.tries, &error)
            else {
                break (Outcome::Failed(error.to_failure()), Some(attempt));
            };
            if let Err(store_error) = self.record_retry(node, &record, &mut attempt, after).await {
                return self.abandon(node, record, store_error);
            }
            tokio::select! {
                biased;
                () = shared.cancel.cancelled() => break (Outcome::Cancelled, Some(attempt)),
                () = shared.sleeper.sleep(after) => {}
            }
            previous = Some(attempt);
        };
        self.finish(node, record, outcome, last, started, tally.fuel)
            .await
    }

    /// Records that an attempt starts. With strict durability the record
    /// is on disk before the plugin runs (group-committed with others), so
    /// that after a crash the store shows every attempt that ran.
    async fn record_start(
        &self,
        record: &NodeRecord,
        attempt: &AttemptRecord,
    ) -> Result<(), StoreError> {
        let shared = &*self.shared;
        shared
            .persistence
            .put(record.clone(), Some(attempt.clone()))?;
        shared.persistence.commit().await?;
        let number = attempt.number;
        if self.element.is_none() {
            shared
                .progress
                .set_node(self.index, &NodeStatus::Running, number);
        }
        let node = &record.node_id;
        shared.notify(&Event::AttemptStarted {
            node,
            attempt: number,
        });
        shared.log_node(node, "started", number, NodeLog::default());
        Ok(())
    }

    /// Reads an attempt's report into its record: its logs, time and fuel,
    /// and its output checked at the boundary (see [`JsonText::parse`]).
    fn conclude(
        &self,
        node: &NodeSpec,
        attempt: &mut AttemptRecord,
        mut report: AttemptReport,
        tally: &mut Tally,
    ) -> Result<JsonText, AttemptError> {
        let shared = &*self.shared;
        attempt.logs = guest_lines(&mut report);
        attempt.http = report.http;
        let redactor = &shared.redactor;
        if !redactor.is_empty() {
            for line in &mut attempt.logs {
                redactor.redact_in_place(&mut line.text);
            }
            if let Err(error) = &mut report.result {
                error.redact(redactor);
            }
        }
        super::guest::log_lines(shared, &self.id, attempt.number, &attempt.logs);
        if let Some(fuel) = report.fuel_used {
            tally.fuel = Some(tally.fuel.unwrap_or(0) + fuel);
        }
        attempt.elapsed_us = Some(micros(report.elapsed));
        attempt.fuel_used = report.fuel_used;
        let max_output = node.options.limits.max_output;
        let result = report.result.and_then(|output| {
            let output = JsonText::parse_owned(output, max_output).map_err(|error| {
                AttemptError::Output {
                    message: error.to_string(),
                }
            })?;
            redact_output(redactor, output, max_output)
        });
        let failure = result.as_ref().err().map(AttemptError::to_failure);
        attempt.error = failure.clone();
        shared.notify(&Event::AttemptFinished {
            node: &self.id,
            attempt: attempt.number,
            error: failure.as_ref(),
            elapsed: report.elapsed,
        });
        shared.measure(&Metric::AttemptFinished {
            workflow: &shared.workflow.id,
            node: &node.id,
            action: &node.action,
            attempt: attempt.number,
            duration: report.elapsed,
            fuel: report.fuel_used,
            succeeded: result.is_ok(),
            http: report.http,
        });
        result
    }

    /// Records a failed attempt that will be followed by another; with
    /// strict durability it is on disk before the delay starts.
    async fn record_retry(
        &self,
        node: &NodeSpec,
        record: &NodeRecord,
        attempt: &mut AttemptRecord,
        after: Duration,
    ) -> Result<(), StoreError> {
        let shared = &*self.shared;
        attempt.retry_delay_ms = Some(after.as_millis().try_into().unwrap_or(u64::MAX));
        shared
            .persistence
            .put(record.clone(), Some(attempt.clone()))?;
        shared.persistence.commit().await?;
        let number = attempt.number;
        let failure = attempt.error.clone().unwrap_or_else(Failure::cancelled);
        shared.log_node(
            &self.id,
            "retry_scheduled",
            number,
            NodeLog {
                duration: Some(after),
                fuel: attempt.fuel_used,
                failure: Some(&failure),
            },
        );
        shared.notify(&Event::RetryScheduled {
            node: &self.id,
            attempt: number,
            error: &failure,
            delay: after,
        });
        shared.measure(&Metric::RetryScheduled {
            workflow: &shared.workflow.id,
            node: &node.id,
            action: &node.action,
            attempt: number,
            delay: after,
        });
        Ok(())
    }

    /// The node's final state: its record and last attempt reach the store
    /// in one atomic write; with strict durability they are on disk before
    /// the scheduler acts on them.
    async fn finish(
        &self,
        node: &NodeSpec,
        mut record: NodeRecord,
        outcome: Outcome,
        last: Option<AttemptRecord>,
        started: Instant,
        fuel_used: Option<u64>,
    ) -> Finished {
        let mut report = NodeReport::new(&self.id, &node.action, NodeStatus::Running);
        let (status, failure) = match outcome {
            Outcome::Succeeded(output) => {
                record.output = Some(output.clone());
                report.output = Some(output);
                (NodeStatus::Succeeded, None)
            }
            Outcome::Failed(failure) => (NodeStatus::Failed, Some(failure)),
            Outcome::Cancelled => (NodeStatus::Cancelled, Some(Failure::cancelled())),
        };
        let elapsed = started.elapsed();
        record.status = status.clone();
        record.error = failure.clone();
        record.finished_at = Some(Timestamp::now());
        record.elapsed_us = Some(micros(elapsed));
        record.fuel_used = fuel_used;
        report.status = status;
        report.error = failure;
        report.attempts = record.attempts;
        report.elapsed = elapsed;
        report.fuel_used = fuel_used;

        self.settle(record, last, report).await
    }

    async fn settle(
        &self,
        record: NodeRecord,
        last: Option<AttemptRecord>,
        report: NodeReport,
    ) -> Finished {
        settle(
            &self.shared,
            self.index,
            self.element,
            (record, last),
            report,
        )
        .await
    }

    /// Runs one attempt through the middleware chain; `None` if the run was
    /// cancelled meanwhile (the attempt is then dropped, which stops it).
    async fn attempt(&self, node: &NodeSpec, number: u32, input: &str) -> Option<AttemptReport> {
        let shared = &*self.shared;
        let call = Invocation {
            workflow_id: &shared.workflow.id,
            run_id: &shared.run_id,
            node_id: &self.id,
            attempt: number,
            input,
            dependencies: &self.dependencies,
            access: Access {
                grants: &node.options.grants,
                base: shared.workflow.base_dir(),
                secrets: &shared.secrets,
            },
        };
        let info = AttemptInfo {
            workflow_id: &shared.workflow.id,
            run_id: &shared.run_id,
            node_id: &self.id,
            action: &node.action,
            attempt: number,
            input,
        };
        // Resolved when the run started: every node with an action has
        // its plugin.
        let plugin = shared.plugins[self.index].as_ref()?;
        let run: BoxFuture<'_, AttemptReport> = match shared.engine.dispatcher() {
            Some(dispatcher) if !plugin.is_native() => dispatcher.dispatch(Dispatch {
                run_id: shared.run_id.clone(),
                node_id: self.id.clone(),
                attempt: number,
                action: node.action.clone(),
                plugin_sha256: plugin.digest.clone(),
                input: input.to_string(),
            }),
            _ => Box::pin(shared.runtime.run(plugin, call, &node.options.limits)),
        };
        let chain = Next::new(&shared.middleware, info, run).run();
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
                    node: &self.id,
                    action: &node.action,
                    attempt: number,
                    error,
                },
                proposed,
            ),
            None => proposed,
        }
    }

    /// Fails the node without an attempt: its expressions could not
    /// compute its input.
    async fn refuse(&self, node: &NodeSpec, mut record: NodeRecord, failure: Failure) -> Finished {
        record.status = NodeStatus::Failed;
        record.error = Some(failure.clone());
        record.finished_at = record.started_at;
        record.elapsed_us = Some(0);
        let mut report = NodeReport::new(&self.id, &node.action, NodeStatus::Failed);
        report.attempts = record.attempts;
        report.error = Some(failure);
        self.settle(record, None, report).await
    }

    /// Ends the node without running it further because its state could
    /// not be saved.
    fn abandon(&self, node: &NodeSpec, record: NodeRecord, error: StoreError) -> Finished {
        let mut report = NodeReport::new(&self.id, &node.action, NodeStatus::Failed);
        report.attempts = record.attempts.saturating_sub(1);
        report.error = Some(Failure::new(
            crate::report::FailureKind::Host,
            format!("its state could not be saved: {error}"),
        ));
        Finished {
            index: self.index,
            element: self.element,
            report,
            store_error: Some(error),
        }
    }
}

/// Stores a node's (or an element's) final record, and its last attempt's,
/// in one atomic write, committed as the durability option says, and
/// publishes its state.
pub(super) async fn settle(
    shared: &Shared,
    index: usize,
    element: Option<u32>,
    (record, last): (NodeRecord, Option<AttemptRecord>),
    report: NodeReport,
) -> Finished {
    let store_error = match shared.persistence.put(record, last) {
        Ok(()) => shared.persistence.commit().await.err(),
        Err(error) => Some(error),
    };
    if element.is_none() {
        shared
            .progress
            .set_node(index, &report.status, report.attempts);
    }
    Finished {
        index,
        element,
        report,
        store_error,
    }
}

/// Microseconds, saturating.
pub(super) fn micros(duration: Duration) -> u64 {
    duration.as_micros().try_into().unwrap_or(u64::MAX)
}

/// An output with every secret value replaced by `***`: stored outputs are
/// in canonical form, where a value appears escaped as the redactor expects.
fn redact_output(
    redactor: &Redactor,
    output: JsonText,
    max_output: usize,
) -> Result<JsonText, AttemptError> {
    match redactor.redact(&output) {
        std::borrow::Cow::Borrowed(_) => Ok(output),
        std::borrow::Cow::Owned(text) => {
            JsonText::parse(&text, max_output).map_err(|_| AttemptError::Output {
                message: "the output holds a secret's value where it cannot be masked \
                          (across JSON syntax); it was not stored"
                    .to_string(),
            })
        }
    }
}
