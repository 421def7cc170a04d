//! `flow:plugin/dependencies`: the outputs of a node's dependencies, copied
//! into an action only when it asks for one.
//!
//! An action whose component imports the interface (every plugin built with
//! the helpers of plugin-sdk/, in Rust, Python or JavaScript) is handed the
//! ids of its dependencies in the request instead of their outputs, so an
//! output it never reads is never copied into its memory, and the host
//! does not build a request holding them all.

use std::sync::Arc;

use wasmtime::StoreContextMut;
use wasmtime::component::Linker;

use super::sandbox::HostState;

/// The interface's name, as a component imports it.
pub(crate) const INTERFACE: &str = "flow:plugin/dependencies@0.1.0";

/// Whether a component importing `imports` takes its dependencies' outputs
/// on demand.
pub(crate) fn on_demand(imports: &[String]) -> bool {
    imports.iter().any(|name| name == INTERFACE)
}

/// Links `output`: the stored text is lowered into the guest straight from
/// the buffer every reader shares.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.instance(INTERFACE)?.func_wrap(
        "output",
        |store: StoreContextMut<'_, HostState>, (node,): (String,)| {
            Ok((store.data().dependency(&node),))
        },
    )
}

impl HostState {
    /// The output of dependency `node`, if the attempt was given one.
    fn dependency(&self, node: &str) -> Option<Arc<String>> {
        let outputs = &self.dependencies;
        outputs
            .binary_search_by(|(id, _)| id.as_str().cmp(node))
            .ok()
            .map(|at| outputs[at].1.shared())
    }
}
