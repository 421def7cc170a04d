//! The engine's measurements and the [`MetricsCollector`] extension point.

use std::time::Duration;

use crate::report::{HttpStats, NodeStatus, RunStatus};

/// A measurement the engine reports to [`MetricsCollector`]s.
#[derive(Debug)]
#[non_exhaustive]
pub enum Metric<'a> {
    /// An attempt ended.
    AttemptFinished {
        /// `[workflow] id`.
        workflow: &'a str,
        /// The node.
        node: &'a str,
        /// Its action.
        action: &'a str,
        /// Attempt number, from 1.
        attempt: u32,
        /// Wall-clock time of the attempt.
        duration: Duration,
        /// Fuel used, when metered.
        fuel: Option<u64>,
        /// Whether it produced an output.
        succeeded: bool,
        /// What it did over HTTP, when its node may reach the network.
        http: Option<HttpStats>,
    },
    /// A failed attempt will be followed by another after `delay`.
    RetryScheduled {
        /// `[workflow] id`.
        workflow: &'a str,
        /// The node.
        node: &'a str,
        /// Its action.
        action: &'a str,
        /// The attempt that failed.
        attempt: u32,
        /// The delay before the next one.
        delay: Duration,
    },
    /// A ready node waited this long for a free worker.
    WorkerWait {
        /// `[workflow] id`.
        workflow: &'a str,
        /// The node.
        node: &'a str,
        /// Time from ready to started.
        waited: Duration,
    },
    /// A node reached its final state.
    NodeFinished {
        /// `[workflow] id`.
        workflow: &'a str,
        /// The node.
        node: &'a str,
        /// Its action.
        action: &'a str,
        /// Its final state.
        status: &'a NodeStatus,
        /// Attempts made.
        attempts: u32,
        /// From its first attempt's start to its end.
        duration: Duration,
    },
    /// A run ended.
    RunFinished {
        /// `[workflow] id`.
        workflow: &'a str,
        /// How it ended.
        status: RunStatus,
        /// Its wall-clock time.
        duration: Duration,
    },
}

/// Receives the engine's measurements.
///
/// Called on the engine's tasks: keep it quick and never block.
pub trait MetricsCollector: Send + Sync {
    /// Called for each measurement.
    fn record(&self, metric: &Metric<'_>);
}
