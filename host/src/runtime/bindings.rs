//! Host bindings generated from `wit/plugin.wit`, the one definition of the
//! plugin interface.

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "action",
    exports: { default: async },
});

pub use flow::plugin::types::LogLevel;
