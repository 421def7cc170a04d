//! What a plugin can see and what happens to what it prints and logs.

use crate::support::{Env, node, workflow};

#[test]
fn a_plugin_sees_no_environment_files_network_or_stdin() {
    let env = Env::new();
    let file = env.write(
        "probe.toml",
        &workflow("[nodes.probe]\naction = \"misbehave\"\ninput = { mode = \"sandbox\" }\n"),
    );
    let report = env
        .flow()
        .env("SECRET_TOKEN", "hunter2")
        .args(["run", file.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    let seen = &node(&report, "probe")["output"];
    assert_eq!(
        seen["env"],
        serde_json::json!([]),
        "no environment variables"
    );
    assert_eq!(seen["args"], serde_json::json!([]), "no arguments");
    assert_eq!(seen["read_dir"], false, "no filesystem");
    assert_eq!(seen["read_file"], false, "no filesystem");
    assert_eq!(seen["tcp_connect"], false, "no network");
    assert_eq!(seen["stdin"], "", "stdin is empty");
}

#[test]
fn stdout_and_stderr_go_to_the_log_under_the_node_and_are_bounded() {
    let env = Env::new();
    let file = env.write(
        "print.toml",
        &workflow("[nodes.chatty]\naction = \"misbehave\"\ninput = { mode = \"print\", bytes = 200000 }\n"),
    );
    let run = env.run(&["run", file.to_str().unwrap()]).success();
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("stream=\"stdout\""))
        .collect();
    assert!(!lines.is_empty(), "{}", run.stderr);
    assert!(lines[0].contains("node=chatty"), "{}", lines[0]);
    assert!(
        run.stderr.contains("bytes of stdout and stderr dropped"),
        "{}",
        &run.stderr[run.stderr.len().saturating_sub(500)..]
    );
    // 64 KiB kept of each stream, not 200 KB.
    assert!(
        run.stderr.len() < 3 * 64 * 1024,
        "{} bytes of log",
        run.stderr.len()
    );
}

#[test]
fn guest_logs_are_attributed_to_their_node_and_bounded() {
    let env = Env::new();
    let file = env.write(
        "log.toml",
        &workflow("[nodes.talker]\naction = \"misbehave\"\ninput = { mode = \"log\", count = 100, bytes = 2000 }\n"),
    );
    let run = env.run(&["run", file.to_str().unwrap()]).success();
    let records: Vec<&str> = run.stderr.lines().filter(|l| l.contains("yyyy")).collect();
    assert!(
        records
            .iter()
            .all(|l| l.contains("node=talker") && l.contains("attempt=1")),
        "{}",
        run.stderr
    );
    // 64 KiB of messages at 2000 bytes each: 32 kept, the rest counted.
    assert_eq!(records.len(), 32, "{}", run.stderr);
    assert!(
        run.stderr.contains("68 more log records dropped"),
        "{}",
        run.stderr
    );
}
