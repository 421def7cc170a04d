//! Attempts run by other processes: the engine that runs a run can hand
//! each attempt of a WebAssembly action to a [`Dispatcher`] instead of
//! running it itself, and await its report.
//!
//! The engine stays in charge of the run: it schedules nodes, computes
//! inputs, decides retries and records every state change; only the
//! plugin's execution moves. [`crate::store::PostgresStore`]'s task queue
//! is the dispatcher of `flow run --store` and `flow worker`.

use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::report::HttpStats;
use crate::runtime::{AttemptError, AttemptReport, LogLevel, LogRecord};

/// One attempt to run elsewhere.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Dispatch {
    /// The run.
    pub run_id: String,
    /// The node (`node[3]` for an element of a map node).
    pub node_id: String,
    /// The attempt's number, from 1.
    pub attempt: u32,
    /// The action: the plugin's name.
    pub action: String,
    /// The SHA-256 of the plugin this run uses: only a host with the same
    /// file may run the attempt.
    pub plugin_sha256: String,
    /// The JSON input.
    pub input: String,
}

/// Runs attempts somewhere else and reports how they ended.
///
/// The future resolves to the attempt's report; a host that stopped
/// before it reported ends as [`AttemptError::Lost`], which the node's
/// retry policy may retry. Dropping the future (the run was cancelled)
/// should stop the attempt where it runs.
pub trait Dispatcher: Send + Sync {
    /// Hands `attempt` over and waits for its report.
    fn dispatch(&self, attempt: Dispatch) -> BoxFuture<'static, AttemptReport>;

    /// Run `run_id` is being taken up again (resumed): attempts handed
    /// over before, which nobody waits for any more, should be dropped.
    fn resumed(&self, run_id: &str) {
        let _ = run_id;
    }
}

/// An attempt's report as it travels between hosts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WireReport {
    result: Result<String, AttemptError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fuel_used: Option<u64>,
    elapsed_us: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    logs: Vec<(WireLevel, String)>,
    #[serde(default)]
    logs_dropped: usize,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    stdout: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    stderr: String,
    #[serde(default)]
    output_dropped: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    http: Option<HttpStats>,
}

/// A log record's level, on the wire.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum WireLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl From<AttemptReport> for WireReport {
    fn from(report: AttemptReport) -> Self {
        Self {
            result: report.result,
            fuel_used: report.fuel_used,
            elapsed_us: report.elapsed.as_micros().try_into().unwrap_or(u64::MAX),
            logs: report
                .logs
                .into_iter()
                .map(|record| {
                    let level = match record.level {
                        LogLevel::Trace => WireLevel::Trace,
                        LogLevel::Debug => WireLevel::Debug,
                        LogLevel::Info => WireLevel::Info,
                        LogLevel::Warn => WireLevel::Warn,
                        LogLevel::Error => WireLevel::Error,
                    };
                    (level, record.message)
                })
                .collect(),
            logs_dropped: report.logs_dropped,
            stdout: report.stdout,
            stderr: report.stderr,
            output_dropped: report.output_dropped,
            http: report.http,
        }
    }
}

impl From<WireReport> for AttemptReport {
    fn from(wire: WireReport) -> Self {
        let mut report = AttemptReport::new(wire.result);
        report.fuel_used = wire.fuel_used;
        report.elapsed = Duration::from_micros(wire.elapsed_us);
        report.logs = wire
            .logs
            .into_iter()
            .map(|(level, message)| LogRecord {
                level: match level {
                    WireLevel::Trace => LogLevel::Trace,
                    WireLevel::Debug => LogLevel::Debug,
                    WireLevel::Info => LogLevel::Info,
                    WireLevel::Warn => LogLevel::Warn,
                    WireLevel::Error => LogLevel::Error,
                },
                message,
            })
            .collect();
        report.logs_dropped = wire.logs_dropped;
        report.stdout = wire.stdout;
        report.stderr = wire.stderr;
        report.output_dropped = wire.output_dropped;
        report.http = wire.http;
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_crosses_the_wire_whole() {
        let mut report = AttemptReport::new(Err(AttemptError::Timeout {
            limit: Duration::from_millis(1500),
        }));
        report.fuel_used = Some(42);
        report.elapsed = Duration::from_micros(1234);
        report.logs = vec![LogRecord {
            level: LogLevel::Warn,
            message: "careful".into(),
        }];
        report.stdout = "out\n".into();
        report.output_dropped = 3;
        let text = serde_json::to_string(&WireReport::from(report)).unwrap();
        let back = AttemptReport::from(serde_json::from_str::<WireReport>(&text).unwrap());
        assert_eq!(
            back.result,
            Err(AttemptError::Timeout {
                limit: Duration::from_millis(1500)
            })
        );
        assert_eq!(back.fuel_used, Some(42));
        assert_eq!(back.elapsed, Duration::from_micros(1234));
        assert_eq!(back.logs[0].message, "careful");
        assert!(matches!(back.logs[0].level, LogLevel::Warn));
        assert_eq!(back.stdout, "out\n");
        assert_eq!(back.output_dropped, 3);
        let lost: WireReport = serde_json::from_str(
            r#"{"result":{"Err":{"kind":"lost","message":"worker gone"}},"elapsed_us":0}"#,
        )
        .unwrap();
        let lost = AttemptReport::from(lost);
        assert!(lost.result.unwrap_err().is_retryable());
    }
}
