//! Fuel, wall-clock and memory limits, and a workflow where several plugins
//! misbehave at once.

use crate::support::{Env, node, workflow};

#[test]
fn fuel_ends_a_loop_with_the_budget_it_had() {
    let env = Env::new();
    let file = env.write(
        "spin.toml",
        &workflow(
            "[nodes.spin]\naction = \"misbehave\"\nfuel = 5_000_000\ninput = { mode = \"loop\" }\n",
        ),
    );
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .expect_code(1)
        .json();
    let spin = node(&report, "spin");
    assert_eq!(
        spin["error"]["message"],
        "out of fuel: the attempt used all of its 5000000 units (raise `fuel` if the work is legitimate)"
    );
    assert_eq!(spin["fuel_used"], 5_000_000);
    assert_eq!(spin["attempts"], 1, "running out of fuel is not retried");
}

#[test]
fn fuel_is_deterministic() {
    let env = Env::new();
    let file = env.write(
        "same.toml",
        &workflow(
            "[nodes.h]\naction = \"hash\"\ninput = { text = \"the same input every time\" }\n",
        ),
    );
    let fuel = |env: &Env| {
        env.run(&["run", file.to_str().unwrap(), "--json"])
            .success()
            .json()["nodes"][0]["fuel_used"]
            .as_u64()
            .unwrap()
    };
    let first = fuel(&env);
    assert!(first > 0);
    assert_eq!(fuel(&env), first);
}

#[test]
fn a_wall_clock_timeout_ends_a_blocking_plugin() {
    let env = Env::new();
    let file = env.write(
        "sleep.toml",
        &workflow("[nodes.nap]\naction = \"misbehave\"\ntimeout = \"200ms\"\ninput = { mode = \"sleep\", ms = 600000 }\n"),
    );
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .expect_code(1)
        .json();
    assert_eq!(
        node(&report, "nap")["error"]["message"],
        "timed out after 200ms"
    );
}

#[test]
fn a_wall_clock_timeout_ends_a_cpu_loop_without_fuel() {
    let env = Env::new();
    let file = env.write(
        "spin.toml",
        &workflow("[nodes.spin]\naction = \"misbehave\"\nfuel = \"unlimited\"\ntimeout = \"200ms\"\ninput = { mode = \"loop\" }\n"),
    );
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .expect_code(1)
        .json();
    assert_eq!(
        node(&report, "spin")["error"]["message"],
        "timed out after 200ms"
    );
}

#[test]
fn the_memory_limit_is_per_node() {
    let env = Env::new();
    let file = env.write(
        "bomb.toml",
        &workflow("[nodes.bomb]\naction = \"misbehave\"\nmemory = \"16MiB\"\ninput = { mode = \"alloc\" }\n"),
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
        error.starts_with("memory limit exceeded: the plugin asked for 1"),
        "{error}"
    );
    assert!(
        error.ends_with(" MiB in all, the limit is 16.0 MiB"),
        "{error}"
    );
}

#[test]
fn an_output_is_copied_into_a_dependent_only_when_it_reads_it() {
    // A 12 MB output: `skim` (echo, in 8 MiB of memory) never reads it, `digest`
    // reads it whole, `cramped` would read it in 8 MiB.
    let env = Env::new();
    let file = env.write(
        "big.toml",
        &workflow(
            "[nodes.big]\naction = \"misbehave\"\ninput = { mode = \"big\", bytes = 12_000_000 }\n\
             [nodes.skim]\naction = \"echo\"\nmemory = \"8MiB\"\ndepends_on = [\"big\"]\n\
             [nodes.digest]\naction = \"hash\"\nmemory = \"64MiB\"\ndepends_on = [\"big\"]\n\
             input = { from = \"big\" }\n\
             [nodes.cramped]\naction = \"hash\"\nmemory = \"8MiB\"\ndepends_on = [\"big\"]\n\
             input = { from = \"big\" }\n",
        ),
    );
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .expect_code(1)
        .json();
    let skim = node(&report, "skim");
    assert_eq!(skim["status"], "succeeded", "{}", skim["error"]);
    assert_eq!(node(&report, "digest")["output"]["bytes"], 12_000_000);
    let cramped = node(&report, "cramped");
    assert_eq!(cramped["error"]["kind"], "memory", "{cramped}");
}

#[test]
fn command_line_limits_override_the_file() {
    let env = Env::new();
    let file = env.write(
        "spin.toml",
        &workflow("[defaults]\nfuel = 1_000_000_000\n[nodes.spin]\naction = \"misbehave\"\nfuel = 999_999_999\ninput = { mode = \"loop\" }\n"),
    );
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json", "--fuel", "1000"])
        .expect_code(1)
        .json();
    assert!(
        node(&report, "spin")["error"]["message"]
            .as_str()
            .unwrap()
            .contains("all of its 1000 units")
    );
}

/// The workflow the README shows: a loop, a memory bomb and a flaky plugin
/// among well-behaved nodes. The bomb runs last, so every status is
/// determined.
pub const MISBEHAVING: &str = r#"[workflow]
id = "misbehaving"
plugins = "plugins"
max_concurrency = 4

[defaults]
retries = 2
retry_delay = "10ms"
retry_jitter = 0

[nodes.spin]
action = "misbehave"
input = { mode = "loop" }
fuel = 50_000_000
continue_on_error = true

[nodes.flaky]
action = "flaky"
input = { fail_times = 2 }

[nodes.steady]
action = "math"
input = { values = [1, 2, 3], ops = ["sum"] }

[nodes.after_flaky]
action = "echo"
depends_on = ["flaky", "steady"]
input = { fine = true }

[nodes.inspect]
action = "misbehave"
depends_on = ["spin"]
input = { mode = "inspect" }

[nodes.bomb]
action = "misbehave"
depends_on = ["after_flaky", "inspect"]
input = { mode = "alloc" }
memory = "32MiB"

[nodes.after_bomb]
action = "echo"
depends_on = ["bomb"]
"#;

#[test]
fn misbehaving_plugins_end_exactly_as_documented() {
    let env = Env::new();
    let file = env.write("misbehaving.toml", MISBEHAVING);
    let run = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .expect_code(1);
    let report = run.json();
    let summary = |id: &str| {
        let n = node(&report, id);
        (
            n["status"].as_str().unwrap().to_string(),
            n["attempts"].as_u64().unwrap(),
        )
    };
    let out_of_fuel = "out of fuel: the attempt used all of its 50000000 units (raise `fuel` if the work is legitimate)";
    assert_eq!(summary("spin"), ("failed".into(), 1));
    assert_eq!(node(&report, "spin")["error"]["message"], out_of_fuel);
    assert_eq!(summary("flaky"), ("succeeded".into(), 3));
    assert_eq!(
        node(&report, "flaky")["output"],
        serde_json::json!({"attempt": 3})
    );
    assert_eq!(summary("steady"), ("succeeded".into(), 1));
    assert_eq!(summary("after_flaky"), ("succeeded".into(), 1));
    assert_eq!(summary("inspect"), ("succeeded".into(), 1));
    assert_eq!(
        node(&report, "inspect")["output"],
        serde_json::json!({"deps": {}, "errors": {"spin": out_of_fuel}})
    );
    assert_eq!(summary("bomb"), ("failed".into(), 1));
    let bomb = node(&report, "bomb")["error"]["message"].as_str().unwrap();
    assert!(
        bomb.starts_with("memory limit exceeded: the plugin asked for "),
        "{bomb}"
    );
    assert!(
        bomb.ends_with(" MiB in all, the limit is 32.0 MiB"),
        "{bomb}"
    );
    assert_eq!(summary("after_bomb"), ("skipped".into(), 0));
    assert_eq!(node(&report, "after_bomb")["skipped_because"], "bomb");
    assert_eq!(report["status"], "failed");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .starts_with("node `bomb` failed: memory limit exceeded")
    );

    // The attempts of the flaky node are recorded with their delays.
    let status = env
        .run(&["status", report["run_id"].as_str().unwrap(), "--json"])
        .success()
        .json();
    let flaky = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "flaky")
        .unwrap();
    let attempts = flaky["attempt_records"].as_array().unwrap();
    let errors: Vec<&str> = attempts
        .iter()
        .map(|a| a["error"]["message"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        errors,
        [
            "retryable error: attempt 1 of 2 fails on purpose",
            "retryable error: attempt 2 of 2 fails on purpose",
            ""
        ]
    );
    let delays: Vec<Option<u64>> = attempts
        .iter()
        .map(|a| a["retry_delay_ms"].as_u64())
        .collect();
    assert_eq!(delays, [Some(10), Some(20), None]);
}
