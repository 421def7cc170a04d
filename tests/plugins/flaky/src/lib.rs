//! Test plugin `flaky`: fails its first attempts, then succeeds.
//!
//! Input: `fail_times` (attempts that fail with a retryable error, default 0),
//! `fatal` (when set, every attempt fails with this fatal message), `output`
//! (what a successful attempt returns, default `{"attempt": n}`).

use flow_plugin_sdk::serde::Deserialize;
use flow_plugin_sdk::serde_json::{Value, json};
use flow_plugin_sdk::{ActionError, Context, Request, export_action, log};

#[derive(Deserialize)]
#[serde(crate = "flow_plugin_sdk::serde", deny_unknown_fields)]
struct Params {
    #[serde(default)]
    fail_times: u32,
    fatal: Option<String>,
    output: Option<Value>,
}

fn flaky(ctx: &Context, request: Request<Params>) -> Result<Value, ActionError> {
    let params = request.input;
    if let Some(message) = params.fatal {
        return Err(ActionError::fatal(message));
    }
    if ctx.attempt <= params.fail_times {
        log::warn(&format!("failing attempt {} on purpose", ctx.attempt));
        return Err(ActionError::retryable(format!(
            "attempt {} of {} fails on purpose",
            ctx.attempt, params.fail_times
        )));
    }
    Ok(params
        .output
        .unwrap_or_else(|| json!({"attempt": ctx.attempt})))
}

export_action! {
    name: "flaky",
    description: "Fails its first attempts with a retryable error",
    run: flaky,
}
