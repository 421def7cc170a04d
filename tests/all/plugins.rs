//! The plugins directory: what is accepted and what is refused, and why.

use crate::support::{EXAMPLES, Env, workflow};

#[test]
fn the_example_plugins_describe_themselves() {
    let env = Env::new();
    let listing = env.run(&["plugins", "plugins", "--json"]).success().json();
    let names: Vec<&str> = listing["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "echo",
            "files",
            "flaky",
            "hash",
            "http",
            "json",
            "math",
            "misbehave"
        ]
    );
    for plugin in listing["plugins"].as_array().unwrap() {
        assert_eq!(plugin["version"], "0.1.0");
        assert!(!plugin["description"].as_str().unwrap().is_empty());
        assert_eq!(plugin["sha256"].as_str().unwrap().len(), 64);
    }

    let table = env.run(&["plugins", "plugins"]).success().stdout;
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table.contains("hash       0.1.0    SHA-256 digest of a string or a JSON value"),
        "{table}"
    );
}

#[test]
fn a_core_module_is_refused_with_advice() {
    let env = Env::new();
    // The smallest valid core module: magic number and version 1.
    std::fs::write(env.plugins().join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let file = env.write("w.toml", &workflow("[nodes.a]\naction = \"echo\"\n"));
    let run = env.run(&["run", file.to_str().unwrap()]).expect_code(2);
    assert!(
        run.stderr.contains("plugins/core.wasm: a core WebAssembly module, not a component; build Rust plugins for the wasm32-wasip2 target"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "nothing ran: {}", run.stdout);

    // `flow plugins` still lists the good ones, and says what is wrong.
    let listing = env.run(&["plugins", "plugins"]).expect_code(2);
    assert!(listing.stdout.contains("echo"), "{}", listing.stdout);
    assert!(
        listing
            .stderr
            .contains("core.wasm: a core WebAssembly module"),
        "{}",
        listing.stderr
    );
}

#[test]
fn a_file_that_is_not_wasm_is_refused() {
    let env = Env::empty();
    std::fs::write(env.plugins().join("notes.wasm"), "not wasm at all").unwrap();
    let run = env.run(&["plugins", "plugins"]).expect_code(2);
    assert!(
        run.stderr.contains(
            "plugins/notes.wasm: not a WebAssembly file; remove it from the plugins directory"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn a_component_of_another_world_is_refused() {
    let env = Env::empty();
    env.add_plugin(&flow_test_artifacts::test_plugins_dir().join("wrong-world.wasm"));
    let run = env.run(&["plugins", "plugins"]).expect_code(2);
    assert!(
        run.stderr
            .contains("plugins/wrong-world.wasm: not a flow action: "),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("must implement the world `action` of the WIT package flow:plugin"),
        "{}",
        run.stderr
    );
}

#[test]
fn two_plugins_with_one_name_are_refused_naming_both_files() {
    let env = Env::empty();
    let echo = flow_test_artifacts::plugins_dir().join("echo.wasm");
    std::fs::copy(&echo, env.plugins().join("echo.wasm")).unwrap();
    std::fs::copy(&echo, env.plugins().join("echo-copy.wasm")).unwrap();
    let file = env.write("w.toml", &workflow("[nodes.a]\naction = \"echo\"\n"));
    let run = env.run(&["run", file.to_str().unwrap()]).expect_code(2);
    assert!(
        run.stderr.contains("plugins/echo-copy.wasm and plugins/echo.wasm are both called `echo`; remove or rename one of them"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_unknown_action_is_refused_before_anything_runs() {
    let env = Env::new();
    let file = env.write(
        "w.toml",
        &workflow("[nodes.a]\naction = \"echo\"\n[nodes.b]\naction = \"hsah\"\n"),
    );
    let run = env.run(&["run", file.to_str().unwrap()]).expect_code(2);
    assert!(
        run.stderr
            .contains("node `b` uses action `hsah`, which no plugin provides"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("did you mean `hash`?"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
    assert!(
        env.run(&["list"])
            .success()
            .stdout
            .starts_with("no runs recorded")
    );
}

#[test]
fn every_example_plugin_is_built() {
    for name in EXAMPLES {
        let path = flow_test_artifacts::plugins_dir().join(format!("{name}.wasm"));
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..4], b"\0asm", "{}", path.display());
        assert_eq!(&bytes[6..8], &[1, 0], "{} is a component", path.display());
    }
}

/// The `loaded plugin` and `listed plugin` records of a debug log.
fn loads(stderr: &str) -> (Vec<String>, Vec<String>) {
    let mut loaded = Vec::new();
    let mut listed = Vec::new();
    for line in stderr.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let name = record["plugin"].as_str().unwrap_or_default().to_string();
        match record["message"].as_str() {
            Some("loaded plugin") => loaded.push(name),
            Some("listed plugin") => listed.push(name),
            _ => {}
        }
    }
    (loaded, listed)
}

#[test]
fn a_run_loads_only_the_plugins_it_uses_once_they_are_known() {
    let env = Env::new();
    let file = env.write("w.toml", &workflow("[nodes.a]\naction = \"echo\"\n"));
    let run = |args: &[&str]| {
        let mut all = vec!["--log-format", "json", "--log-level", "debug"];
        all.extend_from_slice(args);
        env.run(&all)
    };
    // A private compile cache, so that no other test has listed the files.
    let cache = env.path().join("cache");
    let cache = cache.to_str().unwrap();
    let first = run(&["--cache-dir", cache, "run", file.to_str().unwrap(), "-q"]).success();
    let (loaded, listed) = loads(&first.stderr);
    assert!(loaded.contains(&"hash".to_string()), "{loaded:?}");
    assert!(listed.is_empty(), "{listed:?}");

    let second = run(&["--cache-dir", cache, "run", file.to_str().unwrap(), "-q"]).success();
    let (loaded, listed) = loads(&second.stderr);
    assert_eq!(loaded, ["echo"]);
    assert!(listed.contains(&"hash".to_string()), "{listed:?}");

    // `validate` too loads only what the workflow uses.
    let checked = run(&[
        "--cache-dir",
        cache,
        "validate",
        file.to_str().unwrap(),
        "-q",
    ])
    .success();
    assert_eq!(loads(&checked.stderr).0, ["echo"]);

    // A new file claiming a listed name is refused as before.
    let copy = env.plugins().join("hash-copy.wasm");
    std::fs::copy(env.plugins().join("hash.wasm"), &copy).unwrap();
    let twice = run(&["--cache-dir", cache, "run", file.to_str().unwrap(), "-q"]).expect_code(2);
    assert!(
        twice
            .stderr
            .contains("plugins/hash-copy.wasm and plugins/hash.wasm are both called `hash`"),
        "{}",
        twice.stderr
    );
    std::fs::remove_file(&copy).unwrap();

    // A changed file is loaded again: here `hash.wasm` now holds `json`.
    std::fs::copy(
        env.plugins().join("json.wasm"),
        env.plugins().join("hash.wasm"),
    )
    .unwrap();
    std::fs::remove_file(env.plugins().join("json.wasm")).unwrap();
    let uses_json = env.write(
        "j.toml",
        &workflow("[nodes.a]\naction = \"json\"\ninput = { data = { a = 1 } }\n"),
    );
    let third = run(&[
        "--cache-dir",
        cache,
        "run",
        uses_json.to_str().unwrap(),
        "-q",
    ])
    .success();
    let (loaded, _) = loads(&third.stderr);
    assert_eq!(loaded, ["json"]);

    // And `flow plugins` loads them all.
    let listing = env
        .run(&["--cache-dir", cache, "plugins", "plugins", "--json"])
        .success();
    let names: Vec<String> = listing.json()["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.contains(&"json".to_string()) && names.contains(&"echo".to_string()));
}

#[test]
fn a_component_that_imports_what_the_host_lacks_is_refused_naming_it() {
    let env = Env::empty();
    env.add_plugin(&flow_test_artifacts::test_plugins_dir().join("unknown-import.wasm"));
    let run = env.run(&["plugins", "plugins"]).expect_code(2);
    assert!(
        run.stderr.contains(
            "plugins/unknown-import.wasm: imports `test:absent/store`, which the host does not provide"
        ),
        "{}",
        run.stderr
    );
}
