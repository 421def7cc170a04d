//! Where the freshly built plugins are.
//!
//! The first call of [`plugins_dir`] or [`test_plugins_dir`] in a test
//! process runs `plugins/build --tests`, which rebuilds only what changed,
//! so every test runs against components built from the current sources.
//! Building plugins when the tests run, rather than from a build script,
//! keeps the tests' own compilation independent of the plugins: editing a
//! plugin, or a Python or JavaScript file beside the SDKs, does not make
//! cargo compile the host's tests again.

pub mod postgres;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Directory holding the example plugins (`echo.wasm`, `json.wasm`, ...).
pub fn plugins_dir() -> &'static Path {
    &built().plugins
}

/// Directory holding the test-only plugins (`flaky.wasm`, `misbehave.wasm`,
/// `wrong-world.wasm`).
pub fn test_plugins_dir() -> &'static Path {
    &built().test_plugins
}

/// Where the plugins were built.
struct Built {
    plugins: PathBuf,
    test_plugins: PathBuf,
}

/// The plugins, built once per process.
///
/// # Panics
///
/// When `plugins/build` fails; its own messages say why.
fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let target = target_dir(&root);
        let status = Command::new(root.join("plugins/build"))
            .arg("--tests")
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .unwrap_or_else(|e| panic!("cannot run plugins/build: {e}"));
        assert!(status.success(), "plugins/build --tests failed: {status}");
        Built {
            plugins: target.join("plugins"),
            test_plugins: target.join("test-plugins"),
        }
    })
}

/// The cargo target directory this test binary was built in: the nearest
/// directory above it that cargo marked with `CACHEDIR.TAG`, whatever the
/// profile, target triple or `--target-dir`; `target/` at the top of the
/// repository otherwise.
fn target_dir(root: &Path) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .skip(1)
                .find(|dir| dir.join("CACHEDIR.TAG").is_file())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| root.join("target"))
}
