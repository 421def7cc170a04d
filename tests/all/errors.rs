//! Failing nodes: action errors of each kind, traps, skipped dependents.

use crate::support::{Env, node, workflow};

#[test]
fn a_fatal_error_fails_the_node_and_skips_its_dependents() {
    let env = Env::new();
    let file = env.write(
        "fatal.toml",
        &workflow(
            r#"
[nodes.bad]
action = "flaky"
input = { fatal = "the input is wrong" }

[nodes.after]
action = "echo"
depends_on = ["bad"]

[nodes.later]
action = "echo"
depends_on = ["after"]
"#,
        ),
    );
    let run = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .expect_code(1);
    let report = run.json();
    assert_eq!(report["status"], "failed");
    let bad = node(&report, "bad");
    assert_eq!(bad["status"], "failed");
    assert_eq!(bad["error"]["message"], "fatal error: the input is wrong");
    assert_eq!(bad["attempts"], 1);
    for skipped in ["after", "later"] {
        assert_eq!(node(&report, skipped)["status"], "skipped");
        assert_eq!(node(&report, skipped)["skipped_because"], "bad");
    }

    let status = env
        .run(&["status", report["run_id"].as_str().unwrap()])
        .success()
        .stdout;
    assert!(status.contains("status    failed"), "{status}");
    assert!(
        status.contains("error     node `bad` failed: fatal error: the input is wrong"),
        "{status}"
    );
    assert!(status.contains("skipped (`bad` failed)"), "{status}");
}

#[test]
fn a_retryable_error_is_reported_as_such() {
    let env = Env::new();
    let file = env.write(
        "retryable.toml",
        &workflow("[nodes.busy]\naction = \"flaky\"\ninput = { fail_times = 5 }\n"),
    );
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .expect_code(1)
        .json();
    assert_eq!(
        node(&report, "busy")["error"]["message"],
        "retryable error: attempt 1 of 5 fails on purpose"
    );
}

#[test]
fn a_failure_lets_nodes_that_started_before_it_finish() {
    let env = Env::new();
    let file = env.write(
        "independent.toml",
        &workflow(
            r#"
[nodes.fine]
action = "echo"
input = { ok = true }

[nodes.bad]
action = "flaky"
input = { fatal = "no" }
"#,
        ),
    );
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .expect_code(1)
        .json();
    assert_eq!(node(&report, "fine")["status"], "succeeded");
    assert_eq!(node(&report, "bad")["status"], "failed");
}

#[test]
fn a_panic_is_a_trap_with_the_guest_message() {
    let env = Env::new();
    let file = env.write(
        "panic.toml",
        &workflow("[nodes.boom]\naction = \"misbehave\"\ninput = { mode = \"panic\", message = \"the sky fell\" }\n"),
    );
    let run = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .expect_code(1);
    let error = node(&run.json(), "boom")["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(error.starts_with("trapped: panicked at "), "{error}");
    assert!(
        error.contains(": the sky fell (wasm `unreachable` instruction executed)"),
        "{error}"
    );
}

#[test]
fn a_stack_overflow_ends_the_attempt() {
    let env = Env::new();
    let file = env.write(
        "overflow.toml",
        &workflow("[nodes.deep]\naction = \"misbehave\"\ninput = { mode = \"overflow\" }\n"),
    );
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .expect_code(1)
        .json();
    assert_eq!(
        node(&report, "deep")["error"]["message"],
        "stack overflow: the plugin's call stack is exhausted (unbounded recursion?)"
    );
}

#[test]
fn bad_input_for_a_plugin_is_a_fatal_error_naming_the_field() {
    let env = Env::new();
    let file = env.write(
        "types.toml",
        &workflow("[nodes.m]\naction = \"math\"\ninput = { values = [1, \"two\"] }\n"),
    );
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .expect_code(1)
        .json();
    assert_eq!(
        node(&report, "m")["error"]["message"],
        "fatal error: item 1 of the list is not a number: \"two\""
    );
}

#[test]
fn a_memory_bomb_is_stopped_at_the_limit() {
    let env = Env::new();
    let file = env.write(
        "bomb.toml",
        &workflow("[nodes.bomb]\naction = \"misbehave\"\ninput = { mode = \"alloc\" }\n[nodes.fine]\naction = \"echo\"\n"),
    );
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .expect_code(1)
        .json();
    let error = node(&report, "bomb")["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.starts_with("memory limit exceeded: the plugin asked for "),
        "{error}"
    );
    assert!(
        error.ends_with(" in all, the limit is 256.0 MiB"),
        "{error}"
    );
}
