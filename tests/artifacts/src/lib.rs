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

/// The cargo target directory this test binary was built in, where
/// `make build` (and `.ci/run`) already built the plugins.
fn target_dir(root: &Path) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let from_env = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from);
    find_target_dir(&exe, from_env, root)
}

/// The target directory of a binary at `exe`: the nearest directory above
/// it that is marked with `CACHEDIR.TAG` (whatever the profile, target
/// triple or `--target-dir`), else `CARGO_TARGET_DIR` (a relative one
/// from the top of the repository, as `plugins/build` reads it), else
/// `target/` at the top of the repository.
///
/// Cargo marks a target directory only when it creates it. One that
/// `plugins/build --tools` made first (as `.ci/run` does) went unmarked
/// before that script marked its own, and the tests then built every plugin
/// a second time under `target/`.
fn find_target_dir(exe: &Path, from_env: Option<PathBuf>, root: &Path) -> PathBuf {
    exe.ancestors()
        .skip(1)
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
        .or_else(|| from_env.map(|dir| root.join(dir)))
        .unwrap_or_else(|| root.join("target"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `<dir>/release/deps/tests-0123`, with `dir` marked or not.
    fn layout(marked: bool) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let deps = dir.path().join("release").join("deps");
        std::fs::create_dir_all(&deps).unwrap();
        if marked {
            std::fs::write(
                dir.path().join("CACHEDIR.TAG"),
                "Signature: 8a477f597d28d172789f06886806bc55\n",
            )
            .unwrap();
        }
        (dir, deps.join("tests-0123"))
    }

    #[test]
    fn a_marked_directory_above_the_binary_wins() {
        let (dir, exe) = layout(true);
        let found = find_target_dir(&exe, Some("elsewhere".into()), Path::new("/repo"));
        assert_eq!(found, dir.path());
    }

    #[test]
    fn an_unmarked_target_directory_is_found_from_the_environment() {
        let (dir, exe) = layout(false);
        let found = find_target_dir(&exe, Some(dir.path().into()), Path::new("/repo"));
        assert_eq!(found, dir.path());
        let relative = find_target_dir(&exe, Some("out".into()), Path::new("/repo"));
        assert_eq!(relative, Path::new("/repo/out"));
    }

    #[test]
    fn without_either_it_is_target_at_the_top_of_the_repository() {
        let (_dir, exe) = layout(false);
        let found = find_target_dir(&exe, None, Path::new("/repo"));
        assert_eq!(found, Path::new("/repo/target"));
    }
}
