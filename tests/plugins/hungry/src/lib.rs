//! Test plugin `hungry`: its `describe` allocates and touches memory until
//! the host stops it, as a broken or hostile plugin could while it is
//! loaded. The SDK's macro cannot misbehave like that, so this plugin
//! implements the bindings itself.

use std::hint::black_box;

use flow_plugin_sdk::__private::{ActionError, Guest, PluginInfo, RunContext};

struct Hungry;

impl Guest for Hungry {
    fn describe() -> PluginInfo {
        let mut blocks: Vec<Vec<u8>> = Vec::new();
        loop {
            blocks.push(vec![1u8; 1 << 20]);
            black_box(&blocks);
        }
    }

    fn run(_: RunContext, _: String) -> Result<String, ActionError> {
        Ok("null".into())
    }
}

flow_plugin_sdk::__private::bindings::export_action_world!(
    Hungry with_types_in flow_plugin_sdk::__private::bindings
);
