//! Where runs and nodes stand, and when things happened.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The last millisecond RFC 3339 can write: 9999-12-31T23:59:59.999Z.
    /// Later times (only damaged data holds them) are shown as this one.
    pub const LAST_WRITABLE: Timestamp = Timestamp(253_402_300_799_999);

    /// The current time.
    pub fn now() -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(since.as_millis() as u64)
    }

    /// The time in RFC 3339, to the millisecond:
    /// `2026-11-26T10:13:17.123Z`.
    pub fn to_rfc3339(self) -> String {
        self.rfc3339().to_string()
    }

    /// [`Timestamp::to_rfc3339`] to be written somewhere, without a string
    /// of its own.
    pub fn rfc3339(self) -> impl fmt::Display {
        humantime::format_rfc3339_millis(self.writable())
    }

    /// As a `SystemTime`.
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0)
    }

    /// As a `SystemTime` that RFC 3339 can write.
    fn writable(self) -> SystemTime {
        self.min(Self::LAST_WRITABLE).to_system_time()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_rfc3339_seconds(self.writable()))
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
    /// Recorded in a shared store and waiting for a worker to start it
    /// (`flow run --submit`).
    Queued,
}

impl RunStatus {
    /// True once the run has ended, whatever the outcome.
    pub fn is_finished(self) -> bool {
        !matches!(self, RunStatus::Running | RunStatus::Queued)
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
            RunStatus::Queued => "queued",
        })
    }
}

/// Where a node stands.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
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
    /// Not run: a node it depends on failed, or a `when` condition was
    /// false (its own, or that of a node it depends on).
    Skipped {
        /// The id of the node that failed, or whose condition was false;
        /// empty when the node's own condition was false.
        because: String,
        /// Whether a condition, not a failure, skipped it.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        condition: bool,
    },
    /// Stopped by a cancellation while an attempt was running or waiting
    /// to retry.
    Cancelled,
}

impl<'de> Deserialize<'de> for NodeStatus {
    /// Reads `{"state": "skipped", "because": "a"}` as a plain struct: an
    /// internally tagged enum would buffer every record read.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum State {
            Pending,
            Running,
            Succeeded,
            Failed,
            Skipped,
            Cancelled,
        }
        #[derive(Deserialize)]
        struct Stored {
            state: State,
            #[serde(default)]
            because: Option<String>,
            #[serde(default)]
            condition: bool,
        }
        let stored = Stored::deserialize(deserializer)?;
        Ok(match stored.state {
            State::Pending => NodeStatus::Pending,
            State::Running => NodeStatus::Running,
            State::Succeeded => NodeStatus::Succeeded,
            State::Failed => NodeStatus::Failed,
            State::Skipped => NodeStatus::Skipped {
                because: stored.because.unwrap_or_default(),
                condition: stored.condition,
            },
            State::Cancelled => NodeStatus::Cancelled,
        })
    }
}

impl NodeStatus {
    /// A node skipped because of `because`'s failure.
    pub fn skipped_after_failure(because: impl Into<String>) -> Self {
        NodeStatus::Skipped {
            because: because.into(),
            condition: false,
        }
    }

    /// A node skipped by a condition: its own (`because` empty) or that of
    /// `because`, a node it depends on.
    pub fn skipped_by_condition(because: impl Into<String>) -> Self {
        NodeStatus::Skipped {
            because: because.into(),
            condition: true,
        }
    }

    /// Why a skipped node was skipped: `` `a` failed ``, `condition false`,
    /// `` `a` skipped ``.
    pub fn reason(&self) -> Option<String> {
        match self {
            NodeStatus::Skipped {
                because,
                condition: false,
            } => Some(format!("`{because}` failed")),
            NodeStatus::Skipped { because, .. } if because.is_empty() => {
                Some("condition false".to_string())
            }
            NodeStatus::Skipped { because, .. } => Some(format!("`{because}` skipped")),
            _ => None,
        }
    }

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
            NodeStatus::Skipped { .. } => {
                write!(f, "skipped ({})", self.reason().unwrap_or_default())
            }
            other => f.write_str(other.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_states_read_back_as_written() {
        for status in [
            NodeStatus::Pending,
            NodeStatus::Succeeded,
            NodeStatus::skipped_after_failure("a"),
            NodeStatus::skipped_by_condition(""),
            NodeStatus::skipped_by_condition("b"),
        ] {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(serde_json::from_str::<NodeStatus>(&json).unwrap(), status);
        }
        assert_eq!(
            serde_json::to_string(&NodeStatus::skipped_after_failure("a")).unwrap(),
            r#"{"state":"skipped","because":"a"}"#
        );
        assert_eq!(
            NodeStatus::skipped_by_condition("").to_string(),
            "skipped (condition false)"
        );
        assert_eq!(
            NodeStatus::skipped_by_condition("a").to_string(),
            "skipped (`a` skipped)"
        );
    }

    #[test]
    fn any_stored_time_can_be_written() {
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp::LAST_WRITABLE.to_rfc3339(),
            "9999-12-31T23:59:59.999Z"
        );
        // Beyond year 9999 (a damaged record): shown as the last time RFC
        // 3339 writes, not a formatting error that stops the program.
        for far in [Timestamp::LAST_WRITABLE.0 + 1, u64::MAX] {
            assert_eq!(Timestamp(far).to_rfc3339(), "9999-12-31T23:59:59.999Z");
            assert_eq!(Timestamp(far).to_string(), "9999-12-31T23:59:59Z");
        }
    }
}
