//! Builds the example and test plugins with `plugins/build --tests`, so every
//! test runs against components freshly built from the sources.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.join("../..").canonicalize().unwrap();
    // Cargo scans a watched directory recursively.
    for watched in [
        "plugins",
        "plugin-sdk",
        "wit",
        "tests/plugins",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    };
    let status = Command::new(root.join("plugins/build"))
        .arg("--tests")
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("cannot run plugins/build");
    assert!(status.success(), "plugins/build --tests failed: {status}");

    println!(
        "cargo:rustc-env=FLOW_PLUGINS_DIR={}",
        target.join("plugins").display()
    );
    println!(
        "cargo:rustc-env=FLOW_TEST_PLUGINS_DIR={}",
        target.join("test-plugins").display()
    );
}
