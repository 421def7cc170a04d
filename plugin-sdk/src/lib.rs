//! Write Flow Orchestrator actions in Rust.
//!
//! An action is a WebAssembly component that the `flow` host runs for a node
//! of a workflow. With this crate an action is a plain function from a
//! [`Request`] to a serialisable value, plus one [`export_action!`] line. The
//! plugin's `Cargo.toml` depends on this crate only: the WebAssembly bindings
//! are generated and hidden here, from the interface this crate carries in
//! its `wit/` folder (a copy of the project's `wit/plugin.wit`, kept
//! identical by a test).
//!
//! # Example
//!
//! A complete plugin that greets the `name` of its input. Its `Cargo.toml`
//! declares `crate-type = ["cdylib"]` and depends on `flow-plugin-sdk` alone;
//! `cargo build --release --target wasm32-wasip2` turns it into
//! `target/wasm32-wasip2/release/greet.wasm`, a component ready for the
//! plugins directory:
//!
//! ```
//! use flow_plugin_sdk::serde::{Deserialize, Serialize};
//! use flow_plugin_sdk::{export_action, log, ActionError, Context, Request};
//!
//! #[derive(Deserialize)]
//! #[serde(crate = "flow_plugin_sdk::serde")]
//! struct Params {
//!     name: String,
//! }
//!
//! #[derive(Serialize)]
//! #[serde(crate = "flow_plugin_sdk::serde")]
//! struct Greeting {
//!     message: String,
//! }
//!
//! fn greet(ctx: &Context, request: Request<Params>) -> Result<Greeting, ActionError> {
//!     if request.input.name.is_empty() {
//!         return Err(ActionError::fatal("`name` must not be empty"));
//!     }
//!     log::info(&format!("greeting on attempt {}", ctx.attempt));
//!     Ok(Greeting { message: format!("Hello, {}!", request.input.name) })
//! }
//!
//! export_action! {
//!     name: "greet",
//!     description: "Says hello to `name`",
//!     run: greet,
//! }
//! # fn main() {
//! #     let ctx = Context::for_tests("greet");
//! #     let request = Request::from_json(r#"{"input": {"name": "Ada"}, "deps": {}}"#).unwrap();
//! #     assert_eq!(greet(&ctx, request).unwrap().message, "Hello, Ada!");
//! # }
//! ```
//!
//! # What the function receives
//!
//! The host hands every attempt a JSON document
//! `{"input": <the node's input table>, "deps": {"<dependency>": <its output>}}`,
//! which [`Request`] models: `input` is deserialised into the type the
//! function asks for (`serde_json::Value` takes anything), and
//! [`Request::deps`] holds the outputs of the node's dependencies. A node
//! without an `input` table receives `{}`.
//!
//! A plugin built with this crate takes the outputs on demand: the host
//! names the dependencies in the request and copies an output into the
//! plugin only when [`Deps`] is first asked for it, so an output the
//! action does not read costs it nothing.
//!
//! # Errors
//!
//! Return [`ActionError::retryable`] for failures that may pass (the host
//! retries within the node's retry policy) and [`ActionError::fatal`] for
//! failures that will repeat. Input that does not deserialise into the
//! function's type is a fatal error naming the field. A panic ends the
//! attempt as a trap carrying the panic message.

#![warn(missing_docs)]

extern crate self as flow_plugin_sdk;

mod deps;
mod error;
mod export;
pub mod http;
pub mod log;
mod output;
mod secret;

pub use deps::{Deps, Element, Request};
pub use error::ActionError;
pub use export::Context;
pub use output::{IntoOutput, JsonOutput};
pub use secret::secret;

/// The `serde` this crate uses, so a plugin needs no dependency of its own.
/// Derives then name it: `#[serde(crate = "flow_plugin_sdk::serde")]`.
pub use serde;
/// The `serde_json` this crate uses; `serde_json::Value` takes any input.
pub use serde_json;

/// Items used by [`export_action!`]; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::export::{describe, run};
    pub use serde_json;
    pub use wit_bindgen;

    /// Bindings generated from `wit/plugin.wit`.
    #[allow(missing_docs, clippy::too_many_arguments)]
    pub mod bindings {
        wit_bindgen::generate!({
            // The crate's own copy of wit/, so that it builds where it is
            // published (a test keeps the two identical).
            path: "wit",
            // `action`, with dependencies' outputs asked for when read.
            world: "action-on-demand",
            pub_export_macro: true,
            export_macro_name: "export_action_world",
            default_bindings_module: "flow_plugin_sdk::__private::bindings",
            runtime_path: "flow_plugin_sdk::__private::wit_bindgen::rt",
        });
    }

    pub use bindings::Guest;
    pub use bindings::flow::plugin::types::{ActionError, PluginInfo, RunContext};
}

/// Exports a function as the plugin's action.
///
/// `name` is how workflows refer to the action (`action = "name"`); it must
/// be unique within a plugins directory. `version` defaults to the crate's
/// version. `run` names a function
/// `fn(&Context, Request<I>) -> Result<O, ActionError>` where `I` is any
/// `serde::Deserialize` type and `O` any `serde::Serialize` type (or a
/// [`JsonOutput`], text the action wrote itself).
///
/// ```
/// use flow_plugin_sdk::{export_action, ActionError, Context, Request};
/// use serde_json::Value;
///
/// fn echo(_: &Context, request: Request<Value>) -> Result<Value, ActionError> {
///     Ok(request.input)
/// }
///
/// export_action! {
///     name: "echo",
///     version: "1.0.0",
///     description: "Returns its input",
///     run: echo,
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! export_action {
    (
        name: $name:expr,
        $(version: $version:expr,)?
        description: $description:expr,
        run: $run:path $(,)?
    ) => {
        const _: () = {
            struct FlowAction;

            impl $crate::__private::Guest for FlowAction {
                fn describe() -> $crate::__private::PluginInfo {
                    let version: &str = env!("CARGO_PKG_VERSION");
                    $(let version: &str = $version;)?
                    $crate::__private::describe($name, version, $description)
                }

                fn run(
                    ctx: $crate::__private::RunContext,
                    input: ::std::string::String,
                ) -> ::std::result::Result<::std::string::String, $crate::__private::ActionError> {
                    $crate::__private::run(ctx, input, $run)
                }
            }

            $crate::__private::bindings::export_action_world!(
                FlowAction with_types_in $crate::__private::bindings
            );
        };
    };
}

#[cfg(test)]
mod tests {
    /// The crate builds from its own copy of the interface, which must be
    /// the project's.
    #[test]
    fn the_wit_copy_is_the_projects() {
        assert_eq!(
            include_str!("../wit/plugin.wit"),
            include_str!("../../wit/plugin.wit"),
            "copy wit/plugin.wit to plugin-sdk/wit/plugin.wit"
        );
    }
}
