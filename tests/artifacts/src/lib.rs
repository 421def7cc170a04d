//! Where the freshly built plugins are.
//!
//! Building this crate runs `plugins/build --tests`; the integration tests
//! copy the components they need from these directories.

pub mod postgres;

use std::path::Path;

/// Directory holding the example plugins (`echo.wasm`, `json.wasm`, ...).
pub fn plugins_dir() -> &'static Path {
    Path::new(env!("FLOW_PLUGINS_DIR"))
}

/// Directory holding the test-only plugins (`flaky.wasm`, `misbehave.wasm`,
/// `wrong-world.wasm`).
pub fn test_plugins_dir() -> &'static Path {
    Path::new(env!("FLOW_TEST_PLUGINS_DIR"))
}
