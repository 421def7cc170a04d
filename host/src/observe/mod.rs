//! Watching runs: the [`Observer`] extension point and the events it gets,
//! and the engine's measurements as Prometheus series.

mod graph;
mod metrics;
mod prometheus;

pub use graph::NodeStates;
pub use metrics::{Metric, MetricsCollector};
pub use prometheus::{DURATION_BUCKETS, MetricsBridge, PrometheusMetrics};

use std::time::Duration;

use crate::report::{Failure, NodeReport, RunReport};

/// Something that happened during a run.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The run was recorded and its first nodes are about to start.
    RunStarted {
        /// The run's id.
        run_id: &'a str,
        /// `[workflow] id`.
        workflow_id: &'a str,
        /// Number of nodes.
        nodes: usize,
        /// Nodes that succeeded before a resume (0 for a new run); they do
        /// not run again.
        finished: usize,
    },
    /// An attempt of a node is starting.
    AttemptStarted {
        /// The node's id.
        node: &'a str,
        /// Attempt number, from 1.
        attempt: u32,
    },
    /// An attempt ended.
    AttemptFinished {
        /// The node's id.
        node: &'a str,
        /// Attempt number, from 1.
        attempt: u32,
        /// Why it failed, if it did.
        error: Option<&'a Failure>,
        /// Its wall-clock time.
        elapsed: Duration,
    },
    /// A failed attempt will be followed by another.
    RetryScheduled {
        /// The node's id.
        node: &'a str,
        /// The attempt that failed.
        attempt: u32,
        /// Why it failed.
        error: &'a Failure,
        /// The delay before the next attempt.
        delay: Duration,
    },
    /// A node reached its final state (succeeded, failed, skipped or
    /// cancelled).
    NodeFinished {
        /// What happened to it.
        node: &'a NodeReport,
    },
    /// The run ended.
    RunFinished {
        /// Its outcome.
        report: &'a RunReport,
    },
}

/// Receives the events of every run of an engine, in the order they happen.
///
/// Called on the engine's tasks: keep it quick and never block.
pub trait Observer: Send + Sync {
    /// Called for each event.
    fn on_event(&self, event: &Event<'_>);

    /// Called for each event with the id of the run it belongs to, for an
    /// observer of an engine that runs several runs at once. By default,
    /// [`Observer::on_event`].
    fn on_run_event(&self, run_id: &str, event: &Event<'_>) {
        let _ = run_id;
        self.on_event(event);
    }
}

/// Formats a duration for people: `850 µs`, `12.3 ms`, `4.20 s`.
pub fn format_duration(duration: Duration) -> String {
    let micros = duration.as_micros();
    if micros < 1_000 {
        format!("{micros} µs")
    } else if micros < 1_000_000 {
        format!("{:.1} ms", micros as f64 / 1e3)
    } else {
        format!("{:.2} s", duration.as_secs_f64())
    }
}

/// Formats a retry delay as it is stored, in whole milliseconds: `250 ms`,
/// `1.20 s`; `< 1 ms` when it rounds to nothing. The run's progress and
/// `flow status` show the same text.
pub fn format_delay(delay: Duration) -> String {
    match delay.as_millis() {
        0 => "< 1 ms".to_string(),
        ms => format_duration(Duration::from_millis(ms.try_into().unwrap_or(u64::MAX))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_for_people() {
        assert_eq!(format_duration(Duration::from_micros(850)), "850 µs");
        assert_eq!(format_duration(Duration::from_micros(12_340)), "12.3 ms");
        assert_eq!(format_duration(Duration::from_millis(4_200)), "4.20 s");
        assert_eq!(format_delay(Duration::from_micros(123_456)), "123.0 ms");
        assert_eq!(format_delay(Duration::from_micros(456)), "< 1 ms");
    }
}
