//! Benchmark plugin `noop`: returns `null` without looking at its input, so
//! that a benchmark measures the engine, not the action.

use flow_plugin_sdk::serde::de::IgnoredAny;
use flow_plugin_sdk::{ActionError, Context, Request, export_action};

fn noop(_: &Context, _: Request<IgnoredAny>) -> Result<(), ActionError> {
    Ok(())
}

export_action! {
    name: "noop",
    description: "Does nothing",
    run: noop,
}
