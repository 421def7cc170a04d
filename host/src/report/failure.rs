//! Why an attempt or a node failed, as a kind a program can branch on and
//! a message a person can read.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Longest error message kept, in bytes; a longer one is cut and says so.
pub const MAX_ERROR_TEXT: usize = 16 * 1024;

/// The kind of a failure: what ended the attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureKind {
    /// The action returned an error it marked retryable.
    Retryable,
    /// The action returned an error it marked fatal.
    Fatal,
    /// The attempt used all of its fuel.
    OutOfFuel,
    /// The attempt ran past its wall-clock limit.
    Timeout,
    /// The instance asked for more memory than its limit.
    Memory,
    /// The guest's call stack overflowed.
    StackOverflow,
    /// The guest trapped: a panic, `unreachable`, a bad memory access.
    Trap,
    /// The guest called `exit` instead of returning a result.
    Exited,
    /// The action returned an output the host does not accept (not JSON,
    /// too large, too deeply nested).
    Output,
    /// The host could not instantiate or call the component.
    Host,
    /// The run was cancelled while the attempt ran or waited to retry.
    Cancelled,
    /// The flow process stopped (a crash, a kill) while the attempt ran;
    /// its outcome is unknown.
    Lost,
    /// An expression of the node (`input` templates, `input_jq`, `when`)
    /// failed when the node was about to start; the action did not run.
    Expression,
}

impl FailureKind {
    /// The kind's name, as stored and printed: `out_of_fuel`, `lost`, ...
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Retryable => "retryable",
            FailureKind::Fatal => "fatal",
            FailureKind::OutOfFuel => "out_of_fuel",
            FailureKind::Timeout => "timeout",
            FailureKind::Memory => "memory",
            FailureKind::StackOverflow => "stack_overflow",
            FailureKind::Trap => "trap",
            FailureKind::Exited => "exited",
            FailureKind::Output => "output",
            FailureKind::Host => "host",
            FailureKind::Cancelled => "cancelled",
            FailureKind::Lost => "lost",
            FailureKind::Expression => "expression",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failure: its kind and its message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// What ended the attempt.
    pub kind: FailureKind,
    /// What happened, for people; at most [`MAX_ERROR_TEXT`] bytes.
    pub message: String,
}

impl Failure {
    /// A failure of `kind`; a message over [`MAX_ERROR_TEXT`] bytes is cut.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        let mut message = message.into();
        cut(&mut message, MAX_ERROR_TEXT);
        Self { kind, message }
    }

    /// The failure of an attempt stopped by a cancellation.
    pub fn cancelled() -> Self {
        Self::new(FailureKind::Cancelled, "cancelled")
    }

    /// The failure of an attempt that was running when its process stopped.
    pub fn lost() -> Self {
        Self::new(
            FailureKind::Lost,
            "lost: the flow process stopped while this attempt ran, so its outcome is unknown",
        )
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<'de> Deserialize<'de> for Failure {
    /// Reads `{"kind": ..., "message": ...}`, or the plain message that
    /// databases of schema 3 hold, whose kind its wording tells.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Typed { kind: FailureKind, message: String },
            Text(String),
        }
        Ok(match Stored::deserialize(deserializer)? {
            Stored::Typed { kind, message } => Failure::new(kind, message),
            Stored::Text(message) => Failure::new(kind_of_legacy(&message), message),
        })
    }
}

/// The kind of an error stored as text by an older flow.
fn kind_of_legacy(message: &str) -> FailureKind {
    const PREFIXES: &[(&str, FailureKind)] = &[
        ("retryable error", FailureKind::Retryable),
        ("fatal error", FailureKind::Fatal),
        ("out of fuel", FailureKind::OutOfFuel),
        ("timed out", FailureKind::Timeout),
        ("memory limit", FailureKind::Memory),
        ("stack overflow", FailureKind::StackOverflow),
        ("trapped", FailureKind::Trap),
        ("the plugin's output", FailureKind::Output),
        ("cancelled", FailureKind::Cancelled),
    ];
    PREFIXES
        .iter()
        .find(|(prefix, _)| message.starts_with(prefix))
        .map_or(FailureKind::Host, |&(_, kind)| kind)
}

/// Cuts `text` to at most `max` bytes on a character boundary, and says
/// how much was cut.
pub(crate) fn cut(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let dropped = text.len() - end;
    text.truncate(end);
    text.push_str(&format!(" [{dropped} more bytes cut]"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let failure = Failure::new(FailureKind::Fatal, "é".repeat(MAX_ERROR_TEXT));
        assert!(failure.message.len() < MAX_ERROR_TEXT + 32);
        assert!(
            failure.message.ends_with(" [16384 more bytes cut]"),
            "{}",
            &failure.message[failure.message.len() - 40..]
        );
    }

    #[test]
    fn stored_failures_read_back_typed_or_as_old_text() {
        let typed: Failure =
            serde_json::from_str(r#"{"kind":"out_of_fuel","message":"out of fuel: ..."}"#).unwrap();
        assert_eq!(typed.kind, FailureKind::OutOfFuel);
        let old: Failure = serde_json::from_str(r#""retryable error: busy""#).unwrap();
        assert_eq!(old.kind, FailureKind::Retryable);
        assert_eq!(old.message, "retryable error: busy");
        let unknown: Failure = serde_json::from_str(r#""cannot run the plugin""#).unwrap();
        assert_eq!(unknown.kind, FailureKind::Host);
        assert_eq!(
            serde_json::to_string(&typed).unwrap(),
            r#"{"kind":"out_of_fuel","message":"out of fuel: ..."}"#
        );
    }
}
