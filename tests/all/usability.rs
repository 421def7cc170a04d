//! flow as a new user meets it: search paths, messages that say enough,
//! one report for every problem, the log of node events, completions.

use serde_json::Value;

use crate::support::{Env, node, workflow};

#[test]
fn plugins_come_from_a_search_path_first_match_first() {
    let env = Env::new();
    let mine = env.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    // `mine/echo.wasm` is the hash plugin under another file name: it
    // says it is `hash`, so `hash` is found first in `mine`.
    std::fs::copy(
        flow_test_artifacts::plugins_dir().join("hash.wasm"),
        mine.join("echo.wasm"),
    )
    .unwrap();
    let file = env.write(
        "path.toml",
        "[workflow]\nid = \"path\"\nplugins = [\"mine\", \"plugins\"]\n\
         [nodes.a]\naction = \"echo\"\ninput = { x = 1 }\n\
         [nodes.b]\naction = \"hash\"\ndepends_on = [\"a\"]\ninput = { from = \"a\" }\n",
    );
    let run = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .success();
    assert!(
        run.stderr.contains("warning: plugin `hash` of ")
            && run.stderr.contains("is hidden by")
            && run.stderr.contains("mine/echo.wasm"),
        "{}",
        run.stderr
    );
    assert_eq!(
        node(&run.json(), "a")["output"],
        serde_json::json!({"x": 1})
    );

    // The same path from the command line and from FLOW_PLUGINS.
    let bare = env.write(
        "bare.toml",
        "[workflow]\nid = \"bare\"\n[nodes.a]\naction = \"echo\"\n",
    );
    let path = format!("{}:{}", mine.display(), env.plugins().display());
    env.run(&["validate", bare.to_str().unwrap(), "--plugins", &path])
        .success();
    let by_env = env
        .flow()
        .env("FLOW_PLUGINS", &path)
        .args(["run", bare.to_str().unwrap(), "-q"])
        .output()
        .unwrap();
    assert_eq!(by_env.status.code(), Some(0), "{:?}", by_env);
}

#[test]
fn one_validation_reports_every_problem() {
    let env = Env::new();
    let file = env.write(
        "all.toml",
        &workflow(
            "max_concurency = 2\n\
             [nodes.a]\naction = \"ehco\"\n\
             [nodes.b]\naction = \"echo\"\ndepends_on = [\"c\"]\n",
        ),
    );
    let failed = env
        .run(&["validate", file.to_str().unwrap()])
        .expect_code(2);
    for expected in [
        "unknown key `max_concurency` in [workflow]",
        "did you mean `max_concurrency`?",
        "node `a` uses action `ehco`, which no plugin provides",
        "node `b` depends on `c`, which is not a node of this workflow",
        "3 errors; the workflow was not run",
    ] {
        assert!(
            failed.stderr.contains(expected),
            "{expected}:\n{}",
            failed.stderr
        );
    }
}

#[test]
fn failures_allowed_by_continue_on_error_are_counted() {
    let env = Env::new();
    let file = env.write(
        "tolerant.toml",
        &workflow(
            "[nodes.bad]\naction = \"flaky\"\ninput = { fatal = \"no\" }\ncontinue_on_error = true\n\
             [nodes.after]\naction = \"echo\"\ndepends_on = [\"bad\"]\n",
        ),
    );
    let run = env.run(&["run", file.to_str().unwrap()]).success();
    assert!(
        run.stdout
            .contains("succeeded with 1 failed node (allowed by continue_on_error)"),
        "{}",
        run.stdout
    );
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .success()
        .json();
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["failed_nodes"], 1);
    let list = env.run(&["list"]).success().stdout;
    let header = list.lines().next().unwrap();
    assert!(header.ends_with("FAILED"), "{list}");
    assert!(list.lines().nth(1).unwrap().ends_with(" 1"), "{list}");
    let status = env
        .run(&["status", report["run_id"].as_str().unwrap()])
        .success()
        .stdout;
    assert!(
        status.contains("status    succeeded, with 1 failed node"),
        "{status}"
    );
}

#[test]
fn listing_says_when_nothing_matches_and_hints_keep_the_database() {
    let env = Env::new();
    let db = env.path().join("other-db");
    let db = db.to_str().unwrap();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/orders.toml");
    let plugins = env.plugins();
    env.run(&[
        "run",
        example.to_str().unwrap(),
        "--db",
        db,
        "-q",
        "--plugins",
        plugins.to_str().unwrap(),
    ])
    .success();
    let none = env
        .run(&["list", "--db", db, "--status", "failed"])
        .success()
        .stdout;
    assert!(none.starts_with("no runs match in "), "{none}");
    let unknown = env.run(&["status", "01XYZ", "--db", db]).expect_code(2);
    assert_eq!(
        unknown.stderr.trim(),
        format!("error: no run with id `01XYZ`; `flow list --db {db}` shows the runs")
    );
    // From FLOW_DB, the hint needs no flag.
    let unknown = env.run(&["status", "01XYZ"]).expect_code(2);
    assert_eq!(
        unknown.stderr.trim(),
        "error: no run with id `01XYZ`; `flow list` shows the runs"
    );
}

#[test]
fn json_logs_have_a_record_per_node_event() {
    let env = Env::new();
    let file = env.write(
        "events.toml",
        &workflow(
            "[nodes.busy]\naction = \"flaky\"\ninput = { fail_times = 1 }\nretries = 1\nretry_delay = \"1ms\"\n",
        ),
    );
    let run = env
        .run(&[
            "run",
            file.to_str().unwrap(),
            "-q",
            "--log-format",
            "json",
            "--log-level",
            "flow::node=info",
        ])
        .success();
    let events: Vec<Value> = run
        .stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let names: Vec<(&str, u64)> = events
        .iter()
        .map(|e| (e["event"].as_str().unwrap(), e["attempt"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("started", 1),
            ("retry_scheduled", 1),
            ("started", 2),
            ("succeeded", 2)
        ]
    );
    for event in &events {
        assert_eq!(event["workflow"], "test");
        assert_eq!(event["node"], "busy");
        assert!(event["run"].as_str().is_some_and(|id| id.len() == 26));
    }
    assert_eq!(events[1]["kind"], "retryable");
    assert!(events[3]["duration_ms"].as_f64().is_some());
    assert!(events[3]["fuel"].as_u64().is_some());
}

#[test]
fn completions_are_printed_for_each_shell() {
    let env = Env::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = env.run(&["completions", shell]).success().stdout;
        assert!(
            script.contains("resume") && script.contains("max-concurrency"),
            "{shell}"
        );
    }
}

#[test]
fn option_flags_come_from_the_option_table() {
    let env = Env::new();
    let help = env.run(&["run", "--help"]).success().stdout;
    for flag in [
        "--max-concurrency <N|auto>",
        "--max-output <SIZE>",
        "--timeout <DURATION>",
    ] {
        assert!(help.contains(flag), "{flag}:\n{help}");
    }
    let file = env.write("one.toml", &workflow("[nodes.a]\naction = \"echo\"\n"));
    let bad = env
        .run(&["run", file.to_str().unwrap(), "--timeout", "30"])
        .expect_code(2);
    assert!(
        bad.stderr
            .contains("a duration needs a unit: write \"30s\" or \"30ms\""),
        "{}",
        bad.stderr
    );
}
