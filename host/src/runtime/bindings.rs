//! Host bindings generated from `wit/plugin.wit`, the one definition of the
//! plugin interface.

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    // The crate's copy of wit/plugin.wit (a test keeps them equal), so
    // that the packaged crate builds on its own.
    path: "wit",
    world: "action",
    exports: { default: async },
});

pub use flow::plugin::types::LogLevel;

#[cfg(test)]
mod tests {
    /// The crate builds from its own copy of the interface, which must be
    /// the project's.
    #[test]
    fn the_wit_copy_is_the_projects() {
        assert_eq!(
            include_str!("../../wit/plugin.wit"),
            include_str!("../../../wit/plugin.wit"),
            "copy wit/plugin.wit to host/wit/plugin.wit"
        );
    }
}
