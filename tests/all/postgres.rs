//! Runs kept in PostgreSQL (`--store`): written by one process, read,
//! resumed and deleted by others, on a server the tests start.

use std::process::Stdio;

use crate::support::{Env, node, workflow};

#[test]
fn runs_are_kept_in_postgres_and_read_from_any_process() {
    let env = Env::new().on_postgres();
    let file = env.write(
        "wf.toml",
        &workflow(
            "[nodes.a]\naction = \"echo\"\ninput = { x = 1 }\n\n\
             [nodes.b]\naction = \"echo\"\ndepends_on = [\"a\"]\n",
        ),
    );
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .success()
        .json();
    let run_id = report["run_id"].as_str().unwrap().to_string();
    assert!(
        !env.path().join("db").exists(),
        "nothing is kept in a local database"
    );

    let status = env
        .run(&["status", &run_id[..8].to_lowercase(), "--json"])
        .success()
        .json();
    assert_eq!(status["status"], "succeeded");
    assert_eq!(node(&status, "a")["output"], serde_json::json!({ "x": 1 }));
    let list = env.run(&["list"]).success();
    assert!(list.stdout.contains(&run_id), "{}", list.stdout);
    env.run(&["logs", &run_id]).success();

    env.run(&["delete", &run_id]).success();
    let gone = env.run(&["status", &run_id]).expect_code(2);
    assert!(gone.stderr.contains("no run with id"), "{}", gone.stderr);
    let empty = env.run(&["list"]).success();
    assert!(
        empty
            .stdout
            .contains("no runs recorded in postgres://flow@127.0.0.1"),
        "{}",
        empty.stdout
    );
}

#[test]
fn a_store_that_is_not_postgres_or_is_given_with_db_is_refused() {
    let env = Env::new();
    let not_url = env.run(&["--store", "runs.db", "list"]).expect_code(2);
    assert!(
        not_url.stderr.contains("not a PostgreSQL address") && not_url.stderr.contains("--db"),
        "{}",
        not_url.stderr
    );
    let both = env
        .run(&[
            "--db",
            "x",
            "--store",
            "postgres://flow@127.0.0.1/x",
            "list",
        ])
        .expect_code(2);
    assert!(
        both.stderr
            .contains("--db and --store name two run databases"),
        "{}",
        both.stderr
    );
}

#[test]
fn an_unreachable_store_is_reported_after_its_retries() {
    let env = Env::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://flow:hunter2@127.0.0.1:{port}/runs");
    let output = env
        .flow()
        .env("FLOW_STORE_RETRY", "200ms")
        .args(["--store", &url, "list"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "PostgreSQL at postgres://flow@127.0.0.1:{port}/runs"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_killed_run_is_interrupted_once_its_lease_lapses_and_another_process_resumes_it() {
    let env = Env::new().on_postgres();
    let mut nodes = String::new();
    // The kill comes while `n1` runs: long enough that a busy machine
    // still kills it mid-attempt.
    for i in 0..5 {
        let ms = if i == 1 { 2000 } else { 150 };
        nodes.push_str(&format!(
            "[nodes.n{i}]\naction = \"misbehave\"\ninput = {{ mode = \"sleep\", ms = {ms} }}\n"
        ));
        if i > 0 {
            nodes.push_str(&format!("depends_on = [\"n{}\"]\n", i - 1));
        }
    }
    // Strict: the start of the attempt that the kill interrupts is stored.
    let text =
        workflow(&nodes).replacen("[workflow]\n", "[workflow]\ndurability = \"strict\"\n", 1);
    assert!(text.contains("durability"));
    let file = env.write("chain.toml", &text);
    let mut command = env.flow();
    command
        .env("FLOW_STORE_LEASE", "1s")
        .args(["run", file.to_str().unwrap()])
        .stderr(Stdio::null());
    let (mut child, run_id) = crate::support::spawn_run(command);
    env.wait_for_status(&run_id, "runs its second node", |status| {
        node(status, "n1")["status"] == "running"
    });
    child.kill().unwrap();
    child.wait().unwrap();

    // Nobody renews the lease: the run soon reads as interrupted.
    env.wait_for_status(&run_id, "interrupted", |status| {
        status["status"] == "interrupted"
    });
    let resumed = env.run(&["resume", &run_id, "--json"]).success().json();
    assert_eq!(resumed["status"], "succeeded");
    let status = env.run(&["status", &run_id, "--json"]).success().json();
    assert_eq!(
        node(&status, "n0")["attempts"],
        1,
        "a finished node is not run again: {status}"
    );
    // The node that ran when the process died: its attempt is lost, and
    // it ran again; every node succeeded.
    let mut lost = Vec::new();
    for i in 0..5 {
        let node = node(&status, &format!("n{i}"));
        assert_eq!(node["status"], "succeeded", "{node}");
        if node["attempt_records"][0]["error"]["kind"] == "lost" {
            assert_eq!(node["attempts"], 2, "{node}");
            lost.push(i);
        }
    }
    assert_eq!(lost, [1], "the attempt of n1 was cut short: {status}");
}

#[test]
fn a_server_on_the_shared_store_records_runs_that_other_processes_read() {
    let env = crate::serve::env().on_postgres();
    let server = crate::serve::served(&env, &[]);
    let mut events = server.events(None);
    let id = server.start_run("greet", serde_json::json!({"times": 2}));
    let detail = server.wait(&id, &mut events);
    assert_eq!(detail["status"], "succeeded", "{detail}");
    // Read directly while the server runs: a shared store has no holder.
    let status = env.run(&["status", &id, "--json"]).success().json();
    assert_eq!(status["status"], "succeeded");
    assert_eq!(status["params"]["times"], 2);
    assert!(
        !env.path().join("db.server.json").exists(),
        "no address file: commands open the store themselves"
    );
    // And the server reads what other processes ran.
    let other = env
        .run(&[
            "run",
            "workflows/greet.toml",
            "--plugins",
            "plugins",
            "--param",
            "times=3",
            "--json",
        ])
        .success()
        .json();
    let other_id = other["run_id"].as_str().unwrap();
    let seen = server.get(&format!("/api/v1/runs/{other_id}"));
    assert_eq!(seen.status, 200, "{}", seen.text);
    assert_eq!(seen.json()["status"], "succeeded", "{}", seen.text);
}
