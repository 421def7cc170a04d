//! What a hostile or broken plugin, a careless user or a closed pipe must
//! not do to flow: crash it, hang it, blow up its output, or hide a limit.

use std::io::Read;
use std::process::Stdio;

use serde_json::Value;

use crate::support::{Env, node, stderr_of, workflow};

/// Runs a one-node `misbehave` workflow with this input (and extra node
/// options) and returns the `--json` report; the run fails.
fn misbehave(env: &Env, input: &str, options: &str) -> Value {
    let file = env.write(
        "bad.toml",
        &workflow(&format!(
            "[nodes.bad]\naction = \"misbehave\"\ninput = {input}\n{options}\n"
        )),
    );
    env.run(&["run", file.to_str().unwrap(), "--json"])
        .expect_code(1)
        .json()
}

#[test]
fn outputs_readers_cannot_read_are_refused_and_readers_never_crash() {
    let env = Env::new();
    let cases = [
        (
            r#"{ mode = "nest", count = 70 }"#,
            "nests arrays and objects more than 64 levels deep",
        ),
        (r#"{ mode = "raw", text = "1e400" }"#, "number out of range"),
        (r#"{ mode = "raw", text = '"\ud800"' }"#, "hex escape"),
        (
            r#"{ mode = "raw", text = '"\udc00 "' }"#,
            "lone leading surrogate",
        ),
        (
            r#"{ mode = "raw", text = "not json" }"#,
            "the output is not valid JSON",
        ),
        // Cut right after a backslash inside a string.
        (
            r#"{ mode = "raw", text = '{"a":"\' }"#,
            "the output is not valid JSON",
        ),
    ];
    for (input, expected) in cases {
        let report = misbehave(&env, input, "");
        let error = &node(&report, "bad")["error"];
        assert_eq!(error["kind"], "output", "{input}: {error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(expected), "{input}: {message}");
        // Every reader of the stored run copes.
        let id = report["run_id"].as_str().unwrap();
        env.run(&["status", id, "--json"]).success().json();
        env.run(&["status", id]).success();
        env.run(&["logs", id]).success();
    }
}

#[test]
fn outputs_are_stored_in_one_compact_form() {
    let env = Env::new();
    let file = env.write(
        "spaced.toml",
        &workflow(
            r#"
[nodes.spaced]
action = "misbehave"
input = { mode = "raw", text = '{ "b" : [1, 2.50],  "a" : "x y" }' }
"#,
        ),
    );
    let run = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .success();
    assert!(
        run.stdout.contains(r#""output":{"b":[1,2.5],"a":"x y"}"#),
        "{}",
        run.stdout
    );
}

#[test]
fn the_output_size_limit_is_an_option_named_in_its_message() {
    let env = Env::new();
    // Over `max_output`, but small enough for one host call.
    let report = misbehave(
        &env,
        r#"{ mode = "raw", text = "[1,2,3,4,5,6,7,8,9,10]", count = 1 }"#,
        "max_output = 16",
    );
    let message = node(&report, "bad")["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        message,
        "the output is 22 B but the node's `max_output` is 16 B; raise `max_output` if the output is meant to be this large"
    );
    // Far over it: the host stops reading before it holds it all.
    let report = misbehave(
        &env,
        r#"{ mode = "raw", text = "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"", count = 40000 }"#,
        "max_output = \"1KiB\"",
    );
    let error = &node(&report, "bad")["error"];
    assert_eq!(error["kind"], "output");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("the node's `max_output` is 1.0 KiB: raise it"),
        "{message}"
    );
}

#[test]
fn a_plugin_that_exits_is_said_to_have_exited_with_its_code() {
    let env = Env::new();
    // WASI 0.2's `exit` carries success or failure: Rust's exit(3) is 1.
    for (code, said) in [(0, 0), (3, 1)] {
        let report = misbehave(&env, &format!("{{ mode = \"exit\", code = {code} }}"), "");
        let error = &node(&report, "bad")["error"];
        assert_eq!(error["kind"], "exited");
        assert_eq!(
            error["message"],
            format!("the plugin exited with code {said} instead of returning a result")
        );
    }
}

#[test]
fn deep_recursion_in_linear_memory_is_called_a_stack_overflow() {
    let env = Env::new();
    let report = misbehave(&env, r#"{ mode = "deep" }"#, "");
    let error = &node(&report, "bad")["error"];
    assert_eq!(error["kind"], "stack_overflow", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("out of bounds memory access, most likely a stack overflow: `"),
        "{message}"
    );
    assert!(message.contains("deep"), "names the function: {message}");
}

#[test]
fn long_errors_are_cut_and_say_so() {
    let env = Env::new();
    let report = misbehave(
        &env,
        r#"{ mode = "fail", message = "0123456789", count = 2000000 }"#,
        "",
    );
    let message = node(&report, "bad")["error"]["message"].as_str().unwrap();
    assert!(message.len() < 17 * 1024, "{}", message.len());
    assert!(
        message.ends_with(" more bytes cut]"),
        "{}",
        &message[message.len() - 40..]
    );
    let id = report["run_id"].as_str().unwrap();
    let status = env.run(&["status", id, "--json"]).success();
    assert!(status.stdout.len() < 64 * 1024, "{}", status.stdout.len());
}

#[test]
fn describe_is_bounded_like_an_attempt() {
    let env = Env::empty();
    env.add_plugin(&flow_test_artifacts::test_plugins_dir().join("hungry.wasm"));
    let listed = env.run(&["plugins", "plugins"]).expect_code(2);
    assert!(
        listed
            .stderr
            .contains("hungry.wasm: `describe` failed: memory limit exceeded")
            && listed.stderr.contains("the limit is 128.0 MiB"),
        "{}",
        listed.stderr
    );
}

#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    let env = Env::new();
    let mut nodes = String::new();
    for i in 0..3000 {
        nodes.push_str(&format!("[nodes.n{i}]\naction = \"echo\"\n"));
    }
    let file = env.write("wide.toml", &workflow(&nodes));
    let file = file.to_str().unwrap();
    // The reader takes a few bytes and goes away, as `| head -1` does.
    let closed_early = |args: &[&str]| {
        let mut child = env
            .flow()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 16];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        let stderr = stderr_of(&mut child);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "flow {args:?}: {stderr}");
        assert_eq!(stderr, "", "flow {args:?}");
    };
    closed_early(&["graph", file]);
    let report = env.run(&["run", file, "--json"]).success().json();
    let run_id = report["run_id"].as_str().unwrap();
    // Text, and JSON written by a serialiser (whose error wraps the
    // closed pipe's).
    closed_early(&["status", run_id]);
    closed_early(&["status", run_id, "--json"]);
    closed_early(&["graph", file, "--run", run_id]);
}

#[test]
fn a_run_whose_reader_went_away_still_finishes_and_is_recorded() {
    let env = Env::new();
    let file = env.write(
        "two.toml",
        &workflow(
            "[nodes.a]\naction = \"echo\"\ninput = { x = 1 }\n\
             [nodes.b]\naction = \"echo\"\ndepends_on = [\"a\"]\n",
        ),
    );
    let mut child = env
        .flow()
        .args(["run", file.to_str().unwrap(), "--progress", "plain"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let stderr = stderr_of(&mut child);
    assert_eq!(child.wait().unwrap().code(), Some(0), "{stderr}");
    assert_eq!(stderr, "");
    let list = env.run(&["list", "--json"]).success().json();
    assert_eq!(list["runs"][0]["status"], "succeeded");
}

#[test]
fn an_empty_run_id_is_not_a_prefix_of_every_run() {
    let env = Env::new();
    env.run_example("orders.toml");
    let status = env.run(&["status", ""]).expect_code(2);
    assert_eq!(status.stderr.trim(), "error: the run id is empty");
}

#[test]
fn a_huge_node_id_is_not_echoed_back() {
    let env = Env::new();
    let id = "n".repeat(1 << 20);
    let file = env.write(
        "huge.toml",
        &workflow(&format!("[nodes.{id}]\naction = \"echo\"\n")),
    );
    let failed = env
        .run(&["validate", file.to_str().unwrap()])
        .expect_code(2);
    assert!(failed.stderr.len() < 2048, "{}", failed.stderr.len());
    assert!(
        failed.stderr.contains("it is longer than 64 characters"),
        "{}",
        failed.stderr
    );
}

#[test]
fn a_thousand_errors_print_the_first_ones_and_count_the_rest() {
    let env = Env::new();
    let mut nodes = String::new();
    for i in 0..1000 {
        nodes.push_str(&format!(
            "[nodes.n{i}]\naction = \"echo\"\ndepends_on = [\"missing{i}\"]\n"
        ));
    }
    let file = env.write("broken.toml", &workflow(&nodes));
    let failed = env
        .run(&["validate", file.to_str().unwrap()])
        .expect_code(2);
    assert!(failed.stderr.len() < 32 * 1024, "{}", failed.stderr.len());
    assert!(
        failed.stderr.contains("... and 980 more errors"),
        "{}",
        failed.stderr
    );
    assert!(
        failed.stderr.contains("and 990 more"),
        "help lists are cut too"
    );
    let json = env
        .run(&["validate", file.to_str().unwrap(), "--json"])
        .expect_code(2)
        .json();
    assert_eq!(json["errors"].as_array().unwrap().len(), 1000);
}

#[test]
fn a_compile_cache_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;

    let env = Env::new();
    let cache = env.path().join("shared-cache");
    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let failed = env
        .run(&["plugins", "plugins", "--cache-dir", cache.to_str().unwrap()])
        .expect_code(3);
    assert!(
        failed
            .stderr
            .contains("writable by its group or by others (mode 777)")
            && failed.stderr.contains("--no-cache"),
        "{}",
        failed.stderr
    );
}
