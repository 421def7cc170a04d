//! Running one attempt of an action, and what can go wrong with it.

use std::time::{Duration, Instant};

use wasmtime::{Store, Trap, UpdateDeadline};

use super::bindings::{ActionError, RunContext};
use super::limits::{MemoryLimitExceeded, MemoryLimiter};
use super::sandbox::{Capture, HostState, LogRecord};
use super::{Limits, Plugin, Runtime};

/// What to run: the call's context and its JSON input.
#[derive(Debug, Clone, Copy)]
pub struct Invocation<'a> {
    /// Workflow id, passed to the action.
    pub workflow_id: &'a str,
    /// Run id, passed to the action.
    pub run_id: &'a str,
    /// Node id, passed to the action.
    pub node_id: &'a str,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// The JSON text handed to `run`.
    pub input: &'a str,
}

/// Everything an attempt produced.
#[derive(Debug)]
pub struct AttemptReport {
    /// The output JSON text, or why there is none.
    pub result: Result<String, AttemptError>,
    /// Fuel consumed, when fuel is metered.
    pub fuel_used: Option<u64>,
    /// Wall-clock time of instantiation and call.
    pub elapsed: Duration,
    /// Records the action logged, in order.
    pub logs: Vec<LogRecord>,
    /// Log records dropped over the budget.
    pub logs_dropped: usize,
    /// What the action wrote to stdout (bounded).
    pub stdout: String,
    /// What the action wrote to stderr (bounded).
    pub stderr: String,
    /// Bytes of stdout and stderr dropped over the bound.
    pub output_dropped: usize,
}

impl AttemptReport {
    /// A report with this result and nothing else: for middleware that
    /// answers without running the attempt.
    pub fn new(result: Result<String, AttemptError>) -> Self {
        Self {
            result,
            fuel_used: None,
            elapsed: Duration::ZERO,
            logs: Vec::new(),
            logs_dropped: 0,
            stdout: String::new(),
            stderr: String::new(),
            output_dropped: 0,
        }
    }
}

/// Why an attempt produced no output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttemptError {
    /// The action returned an error.
    #[error("{}: {message}", if *retryable { "retryable error" } else { "fatal error" })]
    Action {
        /// Whether the action said a retry may help.
        retryable: bool,
        /// The action's message.
        message: String,
    },
    /// The attempt used all its fuel.
    #[error(
        "out of fuel: the attempt used all of its {fuel} units (raise `fuel` if the work is legitimate)"
    )]
    OutOfFuel {
        /// The fuel the attempt had.
        fuel: u64,
    },
    /// The attempt ran past its wall-clock limit.
    #[error("timed out after {}", humantime::format_duration(*limit))]
    Timeout {
        /// The limit.
        limit: Duration,
    },
    /// The instance asked for more memory than allowed.
    #[error("{message}")]
    MemoryLimit {
        /// What was asked and the limit.
        message: String,
    },
    /// The guest's call stack overflowed.
    #[error("stack overflow: the plugin's call stack is exhausted (unbounded recursion?)")]
    StackOverflow,
    /// The guest trapped: a panic, an `unreachable`, a bad memory access.
    #[error("trapped: {message}")]
    Trap {
        /// The trap and, for a panic, the guest's message from stderr.
        message: String,
    },
    /// The action returned text that is not JSON.
    #[error("the plugin's output is not valid JSON: {message}")]
    InvalidOutput {
        /// The parser's complaint.
        message: String,
    },
    /// The component could not be instantiated or called.
    #[error("cannot run the plugin: {message}")]
    Host {
        /// wasmtime's explanation.
        message: String,
    },
}

impl AttemptError {
    /// Whether running the attempt again may succeed: the action said so, or
    /// the attempt ran out of wall-clock time (a slow dependency may recover).
    /// Fuel, memory, stack and traps fail the same way every time.
    pub fn is_retryable(&self) -> bool {
        match self {
            AttemptError::Action { retryable, .. } => *retryable,
            AttemptError::Timeout { .. } => true,
            _ => false,
        }
    }
}

/// Raised by the epoch callback once an attempt is past its deadline.
#[derive(Debug, thiserror::Error)]
#[error("deadline exceeded")]
struct DeadlineExceeded;

impl Runtime {
    /// Runs one attempt of `plugin`.
    pub async fn run(
        &self,
        plugin: &Plugin,
        call: Invocation<'_>,
        limits: &Limits,
    ) -> AttemptReport {
        let started = Instant::now();
        let capture = Capture::new(limits.output);
        let mut store = Store::new(
            &self.engine,
            HostState::new(&capture, MemoryLimiter::new(limits.memory), limits.log),
        );
        store.limiter(|state| &mut state.limiter);
        let fuel = limits.fuel.unwrap_or(u64::MAX);
        if self.config.fuel_metering {
            store.set_fuel(fuel).expect("fuel metering is enabled");
        }
        let deadline = started + limits.timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(wasmtime::Error::new(DeadlineExceeded))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });

        let context = RunContext {
            workflow_id: call.workflow_id.to_string(),
            run_id: call.run_id.to_string(),
            node_id: call.node_id.to_string(),
            attempt: call.attempt,
        };
        let outcome = tokio::time::timeout(limits.timeout, async {
            let instance = plugin.pre.instantiate_async(&mut store).await?;
            instance.call_run(&mut store, &context, call.input).await
        })
        .await;

        let fuel_used = self
            .config
            .fuel_metering
            .then(|| store.get_fuel().ok().map(|left| fuel - left))
            .flatten();
        let (stdout, stdout_dropped) = capture.stdout.take();
        let (stderr, stderr_dropped) = capture.stderr.take();
        let state = store.into_data();
        let result = match outcome {
            Err(_elapsed) => Err(AttemptError::Timeout {
                limit: limits.timeout,
            }),
            Ok(Ok(Ok(output))) => match serde_json::from_str::<serde::de::IgnoredAny>(&output) {
                Ok(_) => Ok(output),
                Err(error) => Err(AttemptError::InvalidOutput {
                    message: error.to_string(),
                }),
            },
            Ok(Ok(Err(ActionError::Retryable(message)))) => Err(AttemptError::Action {
                retryable: true,
                message,
            }),
            Ok(Ok(Err(ActionError::Fatal(message)))) => Err(AttemptError::Action {
                retryable: false,
                message,
            }),
            Ok(Err(error)) => Err(classify(error, fuel, limits, &state.limiter, &stderr)),
        };
        AttemptReport {
            result,
            fuel_used,
            elapsed: started.elapsed(),
            logs: state.logs.records,
            logs_dropped: state.logs.dropped,
            stdout,
            stderr,
            output_dropped: stdout_dropped + stderr_dropped,
        }
    }
}

/// Turns a wasmtime error into the reason the user needs.
fn classify(
    error: wasmtime::Error,
    fuel: u64,
    limits: &Limits,
    limiter: &MemoryLimiter,
    stderr: &str,
) -> AttemptError {
    if error.downcast_ref::<DeadlineExceeded>().is_some() {
        return AttemptError::Timeout {
            limit: limits.timeout,
        };
    }
    if let Some(exceeded) = error.downcast_ref::<MemoryLimitExceeded>() {
        return AttemptError::MemoryLimit {
            message: exceeded.to_string(),
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => AttemptError::OutOfFuel { fuel },
        Some(Trap::StackOverflow) => AttemptError::StackOverflow,
        Some(trap) => {
            let mut message = trap
                .to_string()
                .trim_start_matches("wasm trap: ")
                .to_string();
            if let Some(asked) = limiter.refused {
                // A guest whose growth failed usually aborts with a trap of
                // its own; the real reason is the limit.
                let exceeded = MemoryLimitExceeded {
                    asked,
                    limit: limiter.limit(),
                };
                return AttemptError::MemoryLimit {
                    message: exceeded.to_string(),
                };
            }
            if let Some(panic) = panic_message(stderr) {
                message = format!("{panic} ({message})");
            }
            AttemptError::Trap { message }
        }
        None => AttemptError::Host {
            message: format!("{error:#}"),
        },
    }
}

/// The message of a Rust panic (or the last lines of other guests' stderr).
fn panic_message(stderr: &str) -> Option<String> {
    let text = stderr.trim_end();
    if text.is_empty() {
        return None;
    }
    if let Some(at) = text.rfind("panicked at ") {
        // "thread '<unnamed>' panicked at src/lib.rs:3:5:\nthe message"
        let panic = &text[at..];
        let (location, message) = panic.split_once('\n').unwrap_or((panic, ""));
        let location = location
            .trim_start_matches("panicked at ")
            .trim_end_matches(':');
        let message = message.lines().next().unwrap_or("").trim();
        return Some(format!("panicked at {location}: {message}"));
    }
    let tail: Vec<&str> = text.lines().rev().take(3).collect();
    Some(tail.into_iter().rev().collect::<Vec<_>>().join(" | "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_panics_are_read_from_stderr() {
        let stderr = "\nthread '<unnamed>' panicked at src/lib.rs:70:23:\nboom\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(
            panic_message(stderr).unwrap(),
            "panicked at src/lib.rs:70:23: boom"
        );
    }

    #[test]
    fn other_stderr_keeps_its_last_lines() {
        assert_eq!(panic_message("a\nb\nc\nd\n").unwrap(), "b | c | d");
        assert_eq!(panic_message("  \n"), None);
    }

    #[test]
    fn only_action_retryables_and_timeouts_are_retryable() {
        assert!(
            AttemptError::Action {
                retryable: true,
                message: String::new()
            }
            .is_retryable()
        );
        assert!(
            !AttemptError::Action {
                retryable: false,
                message: String::new()
            }
            .is_retryable()
        );
        assert!(
            AttemptError::Timeout {
                limit: Duration::from_secs(1)
            }
            .is_retryable()
        );
        assert!(!AttemptError::OutOfFuel { fuel: 1 }.is_retryable());
        assert!(!AttemptError::StackOverflow.is_retryable());
    }
}
