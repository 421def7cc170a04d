//! Running one attempt of an action, and what can go wrong with it.

use std::time::{Duration, Instant};

use wasmtime::{Store, Trap, UpdateDeadline};

use super::access::{Access, Redactor};
use super::bindings::LogLevel;
use super::bindings::{ActionPre, PluginInfo, RunContext};
use super::limits::{MemoryLimitExceeded, MemoryLimiter};
use super::native;
use super::registry::Implementation;
use super::sandbox::{Capture, HostState, LogRecord};
use super::{Limits, Plugin, Runtime};
use crate::report::{Failure, FailureKind, HttpStats, JsonText};

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
    /// The outputs of the node's dependencies, in id order, when `input`
    /// names them instead of holding them (for a plugin whose
    /// [`Plugin::takes_outputs_on_demand`]); empty otherwise.
    pub dependencies: &'a [(String, JsonText)],
    /// What the node may reach beyond its input.
    pub access: Access<'a>,
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
    /// What the attempt did over HTTP, when the plugin imports it.
    pub http: Option<HttpStats>,
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
            http: None,
        }
    }
}

/// Why an attempt produced no output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
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
    #[error("{message}")]
    StackOverflow {
        /// What was seen.
        message: String,
    },
    /// The guest trapped: a panic, an `unreachable`, a bad memory access.
    #[error("trapped: {message}")]
    Trap {
        /// The trap and, for a panic, the guest's message from stderr.
        message: String,
    },
    /// The guest called `exit` (WASI `exit`, Python's `sys.exit()`)
    /// instead of returning a result.
    #[error("the plugin exited with code {code} instead of returning a result")]
    Exited {
        /// The exit code.
        code: i32,
    },
    /// The action returned an output the host does not accept.
    #[error("{message}")]
    Output {
        /// What is wrong with it.
        message: String,
    },
    /// The component could not be instantiated or called.
    #[error("cannot run the plugin: {message}")]
    Host {
        /// wasmtime's explanation.
        message: String,
    },
    /// The attempt ran on another host, which stopped before it told how
    /// the attempt ended (it was killed, or lost the database).
    #[error("lost: {message}")]
    Lost {
        /// Which host, and what was seen.
        message: String,
    },
}

impl AttemptError {
    /// Replaces secret values in the error's text.
    pub fn redact(&mut self, redactor: &Redactor) {
        match self {
            AttemptError::Action { message, .. }
            | AttemptError::MemoryLimit { message }
            | AttemptError::StackOverflow { message }
            | AttemptError::Trap { message }
            | AttemptError::Output { message }
            | AttemptError::Host { message }
            | AttemptError::Lost { message } => redactor.redact_in_place(message),
            AttemptError::OutOfFuel { .. }
            | AttemptError::Timeout { .. }
            | AttemptError::Exited { .. } => {}
        }
    }

    /// Whether running the attempt again may succeed: the action said so,
    /// the attempt ran out of wall-clock time (a slow dependency may
    /// recover), or the host running it was lost.
    /// Fuel, memory, stack, traps, exits and bad outputs fail the same way
    /// every time.
    pub fn is_retryable(&self) -> bool {
        match self {
            AttemptError::Action { retryable, .. } => *retryable,
            AttemptError::Timeout { .. } | AttemptError::Lost { .. } => true,
            _ => false,
        }
    }

    /// The kind of failure, as stored.
    pub fn kind(&self) -> FailureKind {
        match self {
            AttemptError::Action {
                retryable: true, ..
            } => FailureKind::Retryable,
            AttemptError::Action { .. } => FailureKind::Fatal,
            AttemptError::OutOfFuel { .. } => FailureKind::OutOfFuel,
            AttemptError::Timeout { .. } => FailureKind::Timeout,
            AttemptError::MemoryLimit { .. } => FailureKind::Memory,
            AttemptError::StackOverflow { .. } => FailureKind::StackOverflow,
            AttemptError::Trap { .. } => FailureKind::Trap,
            AttemptError::Exited { .. } => FailureKind::Exited,
            AttemptError::Output { .. } => FailureKind::Output,
            AttemptError::Host { .. } => FailureKind::Host,
            AttemptError::Lost { .. } => FailureKind::Lost,
        }
    }

    /// The failure to record: kind and message.
    pub fn to_failure(&self) -> Failure {
        Failure::new(self.kind(), self.to_string())
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
        let pre = match &plugin.implementation {
            Implementation::Wasm(pre) => pre,
            Implementation::Native(action) => return native::run(&**action, call, limits).await,
        };
        let started = Instant::now();
        let capture = Capture::new(limits.output);
        let mut store = match self.bounded_store(limits, &capture, started, call.access) {
            Ok(store) => store,
            Err(message) => return AttemptReport::new(Err(AttemptError::Host { message })),
        };
        store.data_mut().dependencies = call.dependencies.to_vec();
        let context = RunContext {
            workflow_id: call.workflow_id.to_string(),
            run_id: call.run_id.to_string(),
            node_id: call.node_id.to_string(),
            attempt: call.attempt,
        };
        let outcome = tokio::time::timeout(limits.timeout, async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance.call_run(&mut store, &context, call.input).await
        })
        .await;

        let fuel_used = self.fuel_used(&store, limits);
        let (stdout, stdout_dropped) = capture.stdout.take();
        let (stderr, stderr_dropped) = capture.stderr.take();
        let mut state = store.into_data();
        let result = match outcome {
            Err(_elapsed) => Err(AttemptError::Timeout {
                limit: limits.timeout,
            }),
            Ok(Ok(result)) => result.map_err(AttemptError::from),
            Ok(Err(error)) => Err(classify(error, limits, &state.limiter, &stderr)),
        };
        let http = state.http.counters.stats();
        let notes =
            std::mem::take(&mut *state.http.notes.lock().unwrap_or_else(|e| e.into_inner()));
        state
            .logs
            .records
            .extend(notes.into_iter().map(|note| LogRecord {
                level: LogLevel::Warn,
                message: format!("flow: {note}"),
            }));
        AttemptReport {
            result,
            fuel_used,
            elapsed: started.elapsed(),
            logs: state.logs.records,
            logs_dropped: state.logs.dropped,
            stdout,
            stderr,
            output_dropped: stdout_dropped + stderr_dropped,
            http: (!call.access.grants.http.is_empty() || http != HttpStats::default())
                .then_some(http),
        }
    }

    /// Calls `describe` under `limits`, as an attempt is bounded.
    pub(crate) async fn describe_plugin(
        &self,
        pre: &ActionPre<HostState>,
        limits: &Limits,
    ) -> Result<PluginInfo, AttemptError> {
        let capture = Capture::new(limits.output);
        let mut store = self
            .bounded_store(limits, &capture, Instant::now(), Access::none())
            .map_err(|message| AttemptError::Host { message })?;
        let outcome = tokio::time::timeout(limits.timeout, async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance.call_describe(&mut store).await
        })
        .await;
        let (stderr, _) = capture.stderr.take();
        match outcome {
            Err(_elapsed) => Err(AttemptError::Timeout {
                limit: limits.timeout,
            }),
            Ok(Ok(info)) => Ok(info),
            Ok(Err(error)) => Err(classify(error, limits, &store.data().limiter, &stderr)),
        }
    }

    /// A store for one call into a plugin: its memory, fuel, data passed to
    /// the host and wall-clock time bounded by `limits`, from `started`.
    fn bounded_store(
        &self,
        limits: &Limits,
        capture: &Capture,
        started: Instant,
        access: Access<'_>,
    ) -> Result<Store<HostState>, String> {
        // Options parsed from text are at most 100 years; a library caller's
        // may be longer than a clock counts.
        let deadline = started
            .checked_add(limits.timeout)
            .unwrap_or(started + crate::options::MAX_DURATION);
        let state = HostState::new(
            capture,
            MemoryLimiter::new(limits.memory),
            limits,
            access,
            deadline,
        )?;
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_hostcall_fuel(hostcall_fuel(limits));
        if self.config.fuel_metering {
            // Only fails when fuel metering is off, which was just checked.
            let _ = store.set_fuel(limits.fuel.unwrap_or(u64::MAX));
        }
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(wasmtime::Error::new(DeadlineExceeded))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        Ok(store)
    }

    /// Fuel a store's calls used, when fuel is metered.
    fn fuel_used(&self, store: &Store<HostState>, limits: &Limits) -> Option<u64> {
        let budget = limits.fuel.unwrap_or(u64::MAX);
        self.config
            .fuel_metering
            .then(|| store.get_fuel().ok().map(|left| budget - left))
            .flatten()
    }
}

/// Turns a wasmtime error into the reason the user needs.
fn classify(
    error: wasmtime::Error,
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
    if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return AttemptError::Exited { code: exit.0 };
    }
    if format!("{error:#}").contains(HOSTCALL_FUEL_EXHAUSTED) {
        return AttemptError::Output {
            message: format!(
                "the plugin passed more than {} to the host in one call (its output, a log \
                 record or a write); the node's `max_output` is {}: raise it if the output is \
                 meant to be this large",
                size(hostcall_fuel(limits)),
                size(limits.max_output),
            ),
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => AttemptError::OutOfFuel {
            fuel: limits.fuel.unwrap_or(u64::MAX),
        },
        Some(Trap::StackOverflow) => AttemptError::StackOverflow {
            message: "stack overflow: the plugin's call stack is exhausted (unbounded recursion?)"
                .into(),
        },
        Some(Trap::MemoryOutOfBounds)
            if limiter.refused.is_none() && recursion(&error).is_some() =>
        {
            let (function, times) = recursion(&error).unwrap_or_default();
            AttemptError::StackOverflow {
                message: format!(
                    "out of bounds memory access, most likely a stack overflow: `{function}` \
                     called itself {times} times in a row (unbounded recursion?); a plugin's \
                     stack lives in its linear memory"
                ),
            }
        }
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

/// The text of wasmtime's error when a call passes more data to the host
/// than the hostcall fuel allows.
const HOSTCALL_FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

/// A size for people: `1.0 KiB`, `64.0 MiB`.
fn size(bytes: usize) -> String {
    bytesize::ByteSize(bytes as u64).display().iec().to_string()
}

/// Bytes a guest may pass to the host in one call: enough for the largest
/// output allowed, and for writes and log records whatever `max_output`.
fn hostcall_fuel(limits: &Limits) -> usize {
    limits.max_output.max(1 << 20).saturating_add(64 << 10)
}

/// When the frames at the top of a trap's backtrace are one function
/// calling itself: its name and how many times it appears in a row.
fn recursion(error: &wasmtime::Error) -> Option<(String, usize)> {
    let frames = error.downcast_ref::<wasmtime::WasmBacktrace>()?.frames();
    let first = frames.first()?;
    let same = frames
        .iter()
        .take_while(|frame| frame.func_index() == first.func_index())
        .count();
    // wasmtime keeps the top 20 frames of a trap: a run of them through one
    // function is recursion.
    (same >= 16).then(|| {
        let name = first
            .func_name()
            .map_or_else(|| format!("function {}", first.func_index()), demangled);
        (name, same)
    })
}

/// A Rust symbol made readable, without its hash.
fn demangled(name: &str) -> String {
    let name = name.rsplit_once("::h").map_or(name, |(path, hash)| {
        if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            path
        } else {
            name
        }
    });
    name.to_string()
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
        assert!(!AttemptError::Exited { code: 0 }.is_retryable());
        assert_eq!(AttemptError::Exited { code: 3 }.kind(), FailureKind::Exited);
    }
}
