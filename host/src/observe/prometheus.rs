//! The engine's measurements as `metrics` series, and a collector that
//! keeps them in Prometheus form.
//!
//! [`MetricsBridge`] turns each [`Metric`] into counters and histograms of
//! the [`metrics`] facade, so any of its exporters can receive them.
//! [`PrometheusMetrics`] pairs the bridge with a Prometheus recorder of its
//! own (no global state) and renders the exposition text on demand; this is
//! what `flow run --metrics-out FILE` writes.
//!
//! ```
//! use std::time::Duration;
//! use flow_host::RunStatus;
//! use flow_host::observe::{Metric, MetricsCollector, PrometheusMetrics};
//!
//! let metrics = PrometheusMetrics::new();
//! // Given to an engine with `engine.with_metrics(Arc::new(metrics))`, it
//! // hears every run; here, one measurement by hand:
//! metrics.record(&Metric::RunFinished {
//!     workflow: "orders",
//!     status: RunStatus::Succeeded,
//!     duration: Duration::from_millis(8),
//! });
//! let text = metrics.render();
//! assert!(text.contains("# TYPE flow_runs_total counter"));
//! assert!(text.contains(r#"flow_runs_total{workflow="orders",status="succeeded"} 1"#));
//! ```

use std::sync::Arc;
use std::time::Duration;

use metrics::{Recorder, Unit, counter, describe_counter, describe_histogram, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use super::{Metric, MetricsCollector};

/// Upper bounds, in seconds, of the buckets of every duration histogram:
/// from 100 µs to 10 minutes.
pub const DURATION_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0, 600.0,
];

/// Forwards the engine's measurements to the `metrics` facade: to the
/// recorder given, or else to the globally installed one.
///
/// The series (all labelled with `workflow`):
///
/// | Series | Kind | Other labels |
/// |---|---|---|
/// | `flow_runs_total` | counter | `status` |
/// | `flow_run_duration_seconds` | histogram | `status` |
/// | `flow_nodes_total` | counter | `action`, `status` |
/// | `flow_node_duration_seconds` | histogram | `action`, `status` |
/// | `flow_attempts_total` | counter | `action`, `outcome` |
/// | `flow_attempt_duration_seconds` | histogram | `action`, `outcome` |
/// | `flow_retries_total` | counter | `action` |
/// | `flow_retry_delay_seconds` | histogram | `action` |
/// | `flow_fuel_used_total` | counter | `node`, `action` |
/// | `flow_worker_wait_seconds` | histogram | |
#[derive(Clone)]
pub struct MetricsBridge {
    recorder: Option<Arc<dyn Recorder + Send + Sync>>,
}

impl std::fmt::Debug for MetricsBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsBridge")
            .field("global", &self.recorder.is_none())
            .finish()
    }
}

impl MetricsBridge {
    /// A bridge to the globally installed recorder (install it first).
    pub fn global() -> Self {
        describe();
        Self { recorder: None }
    }

    /// A bridge to `recorder`.
    pub fn for_recorder(recorder: Arc<dyn Recorder + Send + Sync>) -> Self {
        let bridge = Self {
            recorder: Some(recorder),
        };
        bridge.with_recorder(describe);
        bridge
    }

    fn with_recorder(&self, f: impl FnOnce()) {
        match &self.recorder {
            Some(recorder) => metrics::with_local_recorder(recorder.as_ref(), f),
            None => f(),
        }
    }
}

impl MetricsCollector for MetricsBridge {
    fn record(&self, metric: &Metric<'_>) {
        self.with_recorder(|| emit(metric));
    }
}

/// Describes every series (help text and unit) to the current recorder.
fn describe() {
    describe_counter!("flow_runs_total", "Runs that ended, by final status.");
    describe_histogram!(
        "flow_run_duration_seconds",
        Unit::Seconds,
        "Wall-clock time of runs, from start (or resume) to end."
    );
    describe_counter!("flow_nodes_total", "Nodes that reached a final state.");
    describe_histogram!(
        "flow_node_duration_seconds",
        Unit::Seconds,
        "Time from a node's first attempt to its final state, retries included."
    );
    describe_counter!("flow_attempts_total", "Attempts that ended, by outcome.");
    describe_histogram!(
        "flow_attempt_duration_seconds",
        Unit::Seconds,
        "Wall-clock time of single attempts."
    );
    describe_counter!("flow_retries_total", "Failed attempts followed by a retry.");
    describe_histogram!(
        "flow_retry_delay_seconds",
        Unit::Seconds,
        "Backoff delays chosen before retries."
    );
    describe_counter!(
        "flow_fuel_used_total",
        "Fuel (roughly, WebAssembly instructions) used by each node's attempts."
    );
    describe_counter!(
        "flow_http_requests_total",
        "HTTP requests sent by attempts, each checked against its node's grants."
    );
    describe_counter!(
        "flow_http_refused_total",
        "HTTP requests refused: no grant allows them, or they reach the host's own network."
    );
    describe_counter!(
        "flow_http_sent_bytes_total",
        Unit::Bytes,
        "Bytes of HTTP request bodies sent."
    );
    describe_counter!(
        "flow_http_received_bytes_total",
        Unit::Bytes,
        "Bytes of HTTP response bodies received."
    );
    describe_histogram!(
        "flow_worker_wait_seconds",
        Unit::Seconds,
        "Time a ready node waited for a free worker."
    );
}

/// Records one measurement on the current recorder.
fn emit(metric: &Metric<'_>) {
    let seconds = Duration::as_secs_f64;
    match metric {
        Metric::AttemptFinished {
            workflow,
            node,
            action,
            duration,
            fuel,
            succeeded,
            http,
            ..
        } => {
            if let Some(http) = http {
                let labels = [
                    ("workflow", workflow.to_string()),
                    ("node", node.to_string()),
                    ("action", action.to_string()),
                ];
                counter!("flow_http_requests_total", &labels).increment(http.requests);
                counter!("flow_http_refused_total", &labels).increment(http.refused);
                counter!("flow_http_sent_bytes_total", &labels).increment(http.bytes_out);
                counter!("flow_http_received_bytes_total", &labels).increment(http.bytes_in);
            }
            let outcome = if *succeeded { "succeeded" } else { "failed" };
            let labels = [
                ("workflow", workflow.to_string()),
                ("action", action.to_string()),
                ("outcome", outcome.to_string()),
            ];
            counter!("flow_attempts_total", &labels).increment(1);
            histogram!("flow_attempt_duration_seconds", &labels).record(seconds(duration));
            if let Some(fuel) = fuel {
                counter!(
                    "flow_fuel_used_total",
                    "workflow" => workflow.to_string(),
                    "node" => node.to_string(),
                    "action" => action.to_string()
                )
                .increment(*fuel);
            }
        }
        Metric::RetryScheduled {
            workflow,
            action,
            delay,
            ..
        } => {
            let labels = [
                ("workflow", workflow.to_string()),
                ("action", action.to_string()),
            ];
            counter!("flow_retries_total", &labels).increment(1);
            histogram!("flow_retry_delay_seconds", &labels).record(seconds(delay));
        }
        Metric::WorkerWait {
            workflow, waited, ..
        } => {
            histogram!("flow_worker_wait_seconds", "workflow" => workflow.to_string())
                .record(seconds(waited));
        }
        Metric::NodeFinished {
            workflow,
            action,
            status,
            duration,
            ..
        } => {
            let labels = [
                ("workflow", workflow.to_string()),
                ("action", action.to_string()),
                ("status", status.name().to_string()),
            ];
            counter!("flow_nodes_total", &labels).increment(1);
            histogram!("flow_node_duration_seconds", &labels).record(seconds(duration));
        }
        Metric::RunFinished {
            workflow,
            status,
            duration,
        } => {
            let labels = [
                ("workflow", workflow.to_string()),
                ("status", status.to_string()),
            ];
            counter!("flow_runs_total", &labels).increment(1);
            histogram!("flow_run_duration_seconds", &labels).record(seconds(duration));
        }
    }
}

/// A metrics collector that keeps the engine's series in a Prometheus
/// recorder of its own and renders them in the text exposition format.
pub struct PrometheusMetrics {
    bridge: MetricsBridge,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for PrometheusMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusMetrics").finish_non_exhaustive()
    }
}

impl Default for PrometheusMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl PrometheusMetrics {
    /// An empty collector; durations are histograms with
    /// [`DURATION_BUCKETS`].
    pub fn new() -> Self {
        let recorder: PrometheusRecorder = PrometheusBuilder::new()
            .set_buckets(DURATION_BUCKETS)
            .expect("the duration buckets are valid")
            .build_recorder();
        let handle = recorder.handle();
        Self {
            bridge: MetricsBridge::for_recorder(Arc::new(recorder)),
            handle,
        }
    }

    /// Every series so far, in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

impl MetricsCollector for PrometheusMetrics {
    fn record(&self, metric: &Metric<'_>) {
        self.bridge.record(metric);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{NodeStatus, RunStatus};

    #[test]
    fn measurements_become_prometheus_series() {
        let metrics = PrometheusMetrics::new();
        metrics.record(&Metric::AttemptFinished {
            workflow: "w",
            node: "a",
            action: "echo",
            attempt: 1,
            duration: Duration::from_millis(3),
            fuel: Some(1_500),
            succeeded: true,
            http: None,
        });
        metrics.record(&Metric::NodeFinished {
            workflow: "w",
            node: "a",
            action: "echo",
            status: &NodeStatus::Succeeded,
            attempts: 1,
            duration: Duration::from_millis(3),
        });
        metrics.record(&Metric::RunFinished {
            workflow: "w",
            status: RunStatus::Succeeded,
            duration: Duration::from_millis(5),
        });
        let text = metrics.render();
        for expected in [
            "# TYPE flow_runs_total counter",
            "flow_runs_total{workflow=\"w\",status=\"succeeded\"} 1",
            "flow_fuel_used_total{workflow=\"w\",node=\"a\",action=\"echo\"} 1500",
            "flow_attempt_duration_seconds_bucket{workflow=\"w\",action=\"echo\",outcome=\"succeeded\",le=\"0.005\"} 1",
            "# HELP flow_run_duration_seconds Wall-clock time of runs",
        ] {
            assert!(text.contains(expected), "no `{expected}` in:\n{text}");
        }
    }
}
