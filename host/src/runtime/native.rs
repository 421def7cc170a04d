//! Native actions: actions written in Rust that run in the host's own
//! process, beside the WebAssembly plugins.
//!
//! A native action takes the same context and request as a plugin's `run`
//! and answers with the same output or retryable/fatal error, so the engine
//! treats both alike: retries with backoff, the wall-clock `timeout`,
//! cancellation, records, logs, observers, metrics and middleware. What a
//! native action does not get is the sandbox: it is not bounded by fuel or
//! memory, and it reaches whatever the host process can (grants do not
//! apply to it). A timeout or a cancel stops it at its next `.await`; code
//! that never awaits cannot be interrupted.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sha2::{Digest, Sha256};

use super::bindings::{ActionError, LogLevel, PluginInfo, RunContext};
use super::cache::{CacheOutcome, hex};
use super::registry::{Implementation, Plugin};
use super::sandbox::GuestLogs;
use super::{AttemptError, AttemptReport, Invocation, Limits};

/// An action implemented in Rust, registered with
/// [`PluginRegistry::add_native`](super::PluginRegistry::add_native).
///
/// ```
/// use flow_host::runtime::{Action, ActionContext, ActionError, LogLevel, PluginInfo};
/// use futures_util::future::BoxFuture;
///
/// /// Answers `{"sum": a + b}` for an input `{"a": .., "b": ..}`.
/// struct Add;
///
/// impl Action for Add {
///     fn describe(&self) -> PluginInfo {
///         PluginInfo {
///             name: "add".into(),
///             version: "1.0.0".into(),
///             description: "adds a and b".into(),
///         }
///     }
///
///     fn run<'a>(
///         &'a self,
///         ctx: &'a ActionContext,
///         request: &'a str,
///     ) -> BoxFuture<'a, Result<String, ActionError>> {
///         Box::pin(async move {
///             let request: serde_json::Value = serde_json::from_str(request)
///                 .map_err(|error| ActionError::Fatal(error.to_string()))?;
///             let sum = request["input"]["a"].as_i64().unwrap_or(0)
///                 + request["input"]["b"].as_i64().unwrap_or(0);
///             ctx.log(LogLevel::Info, format!("node {} adds up to {sum}", ctx.context().node_id));
///             Ok(serde_json::json!({ "sum": sum }).to_string())
///         })
///     }
/// }
/// ```
pub trait Action: Send + Sync + 'static {
    /// What the action says about itself; its `name` is what a workflow's
    /// `action = "..."` refers to.
    fn describe(&self) -> PluginInfo;

    /// Runs one attempt. `request` is the JSON text a plugin's `run`
    /// receives: `{"input": <node input>, "deps": {"<id>": <output>, ...}}`;
    /// the output is JSON text, checked as a plugin's is.
    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext,
        request: &'a str,
    ) -> BoxFuture<'a, Result<String, ActionError>>;
}

/// What a native action's attempt gets beside its request: where it runs,
/// and the node's log.
#[derive(Debug)]
pub struct ActionContext {
    context: RunContext,
    logs: Mutex<GuestLogs>,
}

impl ActionContext {
    /// The workflow, run, node and attempt, as a plugin receives them.
    pub fn context(&self) -> &RunContext {
        &self.context
    }

    /// Adds a record to the attempt's log, as a plugin's `log` does: kept
    /// with the attempt, shown by `flow logs`, cut to the node's `log`
    /// budget.
    pub fn log(&self, level: LogLevel, message: impl Into<String>) {
        self.logs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(level, message.into());
    }
}

/// The registry entry of a native action.
pub(crate) fn plugin(action: Arc<dyn Action>) -> Plugin {
    let info = action.describe();
    // What a resume compares to tell whether the action changed.
    let mut hash = Sha256::new();
    for part in [&info.name, &info.version] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    Plugin {
        digest: format!("native:{}", hex(&hash.finalize())),
        info,
        path: Default::default(),
        size: 0,
        cache: CacheOutcome::Compiled,
        load_time: Default::default(),
        imports: Vec::new(),
        implementation: Implementation::Native(action),
    }
}

/// Runs one attempt of a native action within the node's `timeout`; a
/// panic fails the attempt (not to be retried) instead of the host.
pub(crate) async fn run(
    action: &dyn Action,
    call: Invocation<'_>,
    limits: &Limits,
) -> AttemptReport {
    let started = Instant::now();
    let ctx = ActionContext {
        context: RunContext {
            workflow_id: call.workflow_id.to_string(),
            run_id: call.run_id.to_string(),
            node_id: call.node_id.to_string(),
            attempt: call.attempt,
        },
        logs: Mutex::new(GuestLogs::new(limits.log)),
    };
    let outcome = attempt(action, &ctx, call.input, limits).await;
    let result = match outcome {
        Err(_elapsed) => Err(AttemptError::Timeout {
            limit: limits.timeout,
        }),
        Ok(Err(panic)) => Err(AttemptError::Trap {
            message: format!("the native action panicked: {}", panic_message(&*panic)),
        }),
        Ok(Ok(result)) => result.map_err(AttemptError::from),
    };
    let logs = ctx
        .logs
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    AttemptReport {
        elapsed: started.elapsed(),
        logs: logs.records,
        logs_dropped: logs.dropped,
        ..AttemptReport::new(result)
    }
}

type Outcome = Result<
    Result<Result<String, ActionError>, Box<dyn std::any::Any + Send>>,
    tokio::time::error::Elapsed,
>;

/// Calls the action, catching its panics, within the node's `timeout`.
async fn attempt(
    action: &dyn Action,
    ctx: &ActionContext,
    request: &str,
    limits: &Limits,
) -> Outcome {
    match std::panic::catch_unwind(AssertUnwindSafe(|| action.run(ctx, request))) {
        Ok(future) => {
            tokio::time::timeout(limits.timeout, AssertUnwindSafe(future).catch_unwind()).await
        }
        Err(panic) => Ok(Err(panic)),
    }
}

/// The text of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

impl From<ActionError> for AttemptError {
    fn from(error: ActionError) -> Self {
        match error {
            ActionError::Retryable(message) => AttemptError::Action {
                retryable: true,
                message,
            },
            ActionError::Fatal(message) => AttemptError::Action {
                retryable: false,
                message,
            },
        }
    }
}
