//! The library's examples (host/examples), built by `cargo test`, run on
//! the example plugins.

use std::path::PathBuf;
use std::process::Command;

/// Runs `target/<profile>/examples/<name>` with the example plugins.
fn run_example(name: &str) -> String {
    // This test binary is target/<profile>/deps/all-<hash>.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let example: PathBuf = profile_dir.join("examples").join(name);
    let output = Command::new(&example)
        .arg(crate::support::example_plugins())
        .env("XDG_CACHE_HOME", crate::support::cache_home())
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", example.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn the_builder_example_runs() {
    let out = run_example("builder");
    for expected in [
        "[nodes.totals]\naction = \"math\"",
        "succeeded",
        r#"totals succeeded: {"count":4,"mean":13.1875,"sum":52.75}"#,
        "digest succeeded: {\"sha256\":",
    ] {
        assert!(out.contains(expected), "{expected:?} not in:\n{out}");
    }
}

#[test]
fn the_native_action_example_runs() {
    let out = run_example("native_action");
    for expected in [
        r#"gross succeeded: {"gross":[15.0,3.6,8.7]}"#,
        "digest succeeded: {\"sha256\":",
        "gross: succeeded after 1 attempt(s)",
    ] {
        assert!(out.contains(expected), "{expected:?} not in:\n{out}");
    }
}
