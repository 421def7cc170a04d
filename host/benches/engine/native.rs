//! Rows with a native no-op action in place of the WebAssembly one: the
//! difference per node is what the sandbox costs an attempt.

use flow_host::runtime::{Action, ActionContext, ActionError, PluginInfo};
use futures_util::future::BoxFuture;

/// Answers `{}` at once, as the `noop` test plugin does.
pub struct Noop;

impl Action for Noop {
    fn describe(&self) -> PluginInfo {
        PluginInfo {
            name: "native-noop".into(),
            version: "1".into(),
            description: "returns {}".into(),
        }
    }

    fn run<'a>(
        &'a self,
        _: &'a ActionContext,
        _: &'a str,
    ) -> BoxFuture<'a, Result<String, ActionError>> {
        Box::pin(async { Ok("{}".to_string()) })
    }
}

/// The workflow with every `noop` node run by the native no-op.
pub fn with_native_noop(text: String) -> String {
    text.replace("action = \"noop\"", "action = \"native-noop\"")
}

/// The row of the same workflow with the WebAssembly no-op.
pub fn wasm_row(native_row: &str) -> Option<&'static str> {
    match native_row {
        "chain-100/native-noop" => Some("chain-100/batched"),
        "fanout-1000+join/native-noop" => Some("fanout-1000+join/batched"),
        _ => None,
    }
}
