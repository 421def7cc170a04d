//! Several processes on one run through PostgreSQL: `flow worker`s claim
//! attempts, a killed worker's attempts are lost and run again elsewhere,
//! submitted runs are taken up by workers, a run whose process died is
//! taken over.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Env, node};

/// A lease short enough for the tests to see it lapse.
const LEASE: &str = "1s";

/// A running `flow worker`, killed when dropped.
struct WorkerProcess {
    child: Child,
    id: String,
    stderr: std::path::PathBuf,
}

impl WorkerProcess {
    fn start(env: &Env, concurrency: usize) -> Self {
        Self::start_with(env, concurrency, &[])
    }

    fn start_with(env: &Env, concurrency: usize, more: &[&str]) -> Self {
        let stderr = env.path().join(format!("worker-{}.err", fastrand::u32(..)));
        let mut child = env
            .flow()
            .env("FLOW_STORE_LEASE", LEASE)
            .args(["worker", "--plugins", "plugins", "--max-concurrency"])
            .arg(concurrency.to_string())
            .args(more)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "flow worker HOST:PID:RANDOM: ready"
        let id = line
            .strip_prefix("flow worker ")
            .and_then(|rest| rest.strip_suffix(": ready\n"))
            .unwrap_or_else(|| panic!("not a worker's first line: {line:?}"))
            .to_string();
        Self { child, id, stderr }
    }

    /// Stops the worker as an operator would (SIGTERM); what it said.
    fn stop(mut self) -> String {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        let said = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        assert!(exit.success(), "{exit}: {said}");
        said
    }

    /// What the worker said on stderr so far.
    fn said(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn succeeded(status: &Value) -> usize {
    status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|node| node["status"] == "succeeded")
        .count()
}

/// Runs SQL on the environment's database.
fn sql(env: &Env, query: &str) -> String {
    flow_test_artifacts::postgres::server().query(env.store().unwrap(), query)
}

/// `levels` levels of `width` nodes that sleep `ms` each; a node depends
/// on two of the level above.
fn layered(levels: usize, width: usize, ms: u64) -> String {
    let mut text = String::from(
        "[workflow]\nid = \"layered\"\nplugins = \"plugins\"\nmax_concurrency = 16\n\n\
         [defaults]\nretries = 3\nretry_delay = \"10ms\"\n\n",
    );
    for level in 0..levels {
        for i in 0..width {
            text.push_str(&format!(
                "[nodes.l{level}n{i}]\naction = \"misbehave\"\ninput = {{ mode = \"sleep\", ms = {ms} }}\n"
            ));
            if level > 0 {
                text.push_str(&format!(
                    "depends_on = [\"l{}n{i}\", \"l{}n{}\"]\n",
                    level - 1,
                    level - 1,
                    (i + 1) % width
                ));
            }
        }
    }
    text
}

/// Every node has exactly one attempt that succeeded, and every other
/// attempt of it was lost; returns the lost ones.
fn one_success_each(status: &Value) -> usize {
    let mut lost = 0;
    for node in status["nodes"].as_array().unwrap() {
        assert_eq!(node["status"], "succeeded", "{node}");
        let attempts = node["attempt_records"].as_array().unwrap();
        let ok = attempts.iter().filter(|a| a["error"].is_null()).count();
        assert_eq!(ok, 1, "one successful completion: {node}");
        for attempt in attempts.iter().filter(|a| !a["error"].is_null()) {
            assert_eq!(attempt["error"]["kind"], "lost", "{node}");
            lost += 1;
        }
    }
    lost
}

#[test]
fn three_workers_share_a_run_of_2000_nodes_and_a_killed_one_costs_only_its_attempts() {
    let env = Env::new().on_postgres();
    let file = env.write("layered.toml", &layered(20, 100, 10));
    let mut workers: Vec<WorkerProcess> = (0..3).map(|_| WorkerProcess::start(&env, 2)).collect();

    // The run's own process is one more worker.
    let run = env
        .flow()
        .env("FLOW_STORE_LEASE", LEASE)
        .args(["run", file.to_str().unwrap(), "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let run_id = loop {
        let found = sql(&env, "SELECT run_id FROM flow_runs");
        if !found.is_empty() {
            break found;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    env.wait_for_status(&run_id, "a quarter done", |status| succeeded(status) >= 500);
    let victim = workers[0].id.clone();
    workers[0].kill();
    // What the killed worker held stays claimed until its lease lapses.
    let held: usize = sql(
        &env,
        &format!("SELECT count(*) FROM flow_tasks WHERE worker = '{victim}' AND state = 'claimed'"),
    )
    .parse()
    .unwrap();

    let output = run.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let status = env.run(&["status", &run_id, "--json"]).success().json();
    assert_eq!(status["status"], "succeeded");
    assert_eq!(status["nodes"].as_array().unwrap().len(), 2000);
    let lost = one_success_each(&status);
    eprintln!("the killed worker held {held} attempts");
    assert_eq!(
        lost, held,
        "each attempt the killed worker held is recorded as lost, and only those"
    );
    let left: usize = sql(&env, "SELECT count(*) FROM flow_tasks")
        .parse()
        .unwrap();
    assert_eq!(left, 0, "finished tasks are deleted once read");
    // The others took part, and stop cleanly.
    for worker in workers.drain(1..) {
        let said = worker.stop();
        let claimed: usize = said
            .split("stopped; ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count in: {said}"));
        assert!(claimed > 0, "{said}");
        assert!(said.contains(" 0 refused"), "{said}");
    }
}

#[test]
fn a_submitted_run_is_taken_up_by_a_worker_and_by_another_when_that_one_dies() {
    let env = Env::new().on_postgres();
    // Strict: an attempt's start is stored before it is handed over, so
    // the worker that takes the run over sees it.
    let mut nodes = String::from(
        "[workflow]\nid = \"slow\"\nplugins = \"plugins\"\ndurability = \"strict\"\n\n",
    );
    for i in 0..3 {
        nodes.push_str(&format!(
            "[nodes.n{i}]\naction = \"misbehave\"\ninput = {{ mode = \"sleep\", ms = 400 }}\n"
        ));
        if i > 0 {
            nodes.push_str(&format!("depends_on = [\"n{}\"]\n", i - 1));
        }
    }
    // A worker's attempt carries the outputs it reads in its request.
    nodes.push_str(
        "[nodes.data]\naction = \"echo\"\ninput = { word = \"dispatched\" }\ndepends_on = [\"n2\"]\n\
         [nodes.digest]\naction = \"hash\"\ninput = { from = \"data/word\" }\ndepends_on = [\"data\"]\n",
    );
    let file = env.write("slow.toml", &nodes);
    let submitted = env
        .run(&["run", "--submit", file.to_str().unwrap(), "--json"])
        .success()
        .json();
    let run_id = submitted["run_id"].as_str().unwrap().to_string();
    assert_eq!(submitted["status"], "queued");
    let queued = env.run(&["status", &run_id]).success();
    assert!(
        queued
            .stdout
            .contains("queued: waiting for a `flow worker`"),
        "{}",
        queued.stdout
    );

    let mut first = WorkerProcess::start(&env, 2);
    // Killed while it runs the first node (400 ms long).
    let claimed = Instant::now() + Duration::from_secs(60);
    while sql(
        &env,
        &format!(
            "SELECT count(*) FROM flow_tasks WHERE worker = '{}' AND state = 'claimed'",
            first.id
        ),
    ) == "0"
    {
        assert!(
            Instant::now() < claimed,
            "the worker never claimed the first node"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    first.kill();
    let second = WorkerProcess::start(&env, 2);
    let status = env.wait_for_status(&run_id, "succeeded", |status| {
        status["status"] == "succeeded"
    });
    // The node the first worker ran when it died: its attempt is lost.
    assert_eq!(one_success_each(&status), 1, "{status}");
    assert_eq!(status["resumes"], 2, "taken up twice: {status}");
    let digest = node(&status, "digest");
    assert_eq!(digest["output"]["bytes"], 10, "{digest}");
    drop(second);
}

#[test]
fn a_worker_needs_a_shared_store_and_plugins() {
    let env = Env::new();
    let no_store = env.run(&["worker", "--plugins", "plugins"]).expect_code(2);
    assert!(
        no_store
            .stderr
            .contains("flow worker serves runs kept in PostgreSQL"),
        "{}",
        no_store.stderr
    );
    let submit = env.run(&["run", "--submit", "nothing.toml"]).expect_code(2);
    assert!(
        submit.stderr.contains("--submit hands the run"),
        "{}",
        submit.stderr
    );
    let env = Env::empty().on_postgres();
    let empty = env.run(&["worker", "--plugins", "plugins"]).expect_code(2);
    assert!(
        empty.stderr.contains("no plugins in plugins"),
        "{}",
        empty.stderr
    );
}

/// A chain of `n` nodes that sleep `ms` each.
fn chain(n: usize, ms: u64) -> String {
    let mut text = String::from("[workflow]\nid = \"chain\"\nplugins = \"plugins\"\n\n");
    for i in 0..n {
        text.push_str(&format!(
            "[nodes.n{i}]\naction = \"misbehave\"\ninput = {{ mode = \"sleep\", ms = {ms} }}\n"
        ));
        if i > 0 {
            text.push_str(&format!("depends_on = [\"n{}\"]\n", i - 1));
        }
    }
    text
}

/// Starts `flow run FILE`; returns it once it printed its run id.
fn spawn_run(env: &Env, file: &str) -> (Child, String) {
    let mut command = env.flow();
    command
        .env("FLOW_STORE_LEASE", LEASE)
        .args(["run", file])
        .stderr(Stdio::piped());
    crate::support::spawn_run(command)
}

#[test]
fn a_run_is_cancelled_from_another_process_and_a_queued_one_at_once() {
    let env = Env::new().on_postgres();
    let file = env.write("chain.toml", &chain(20, 300));
    let file = file.to_str().unwrap();

    let queued = env
        .run(&["run", "--submit", file, "--json"])
        .success()
        .json();
    let queued = queued["run_id"].as_str().unwrap();
    let said = env.run(&["cancel", queued]).success();
    assert!(
        said.stderr.contains("was queued: it is cancelled"),
        "{}",
        said.stderr
    );
    let status = env.run(&["status", queued, "--json"]).success().json();
    assert_eq!(status["status"], "cancelled");

    let (child, run_id) = spawn_run(&env, file);
    // Twenty nodes of 300 ms: it runs for a while once it started.
    env.wait_for_status(&run_id, "running", |status| status["status"] == "running");
    let said = env.run(&["cancel", &run_id]).success();
    assert!(said.stderr.contains("is stopping"), "{}", said.stderr);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{output:?}");
    let status = env.run(&["status", &run_id, "--json"]).success().json();
    assert_eq!(status["status"], "cancelled");
    assert_eq!(node(&status, "n19")["status"], "pending", "{status}");
    let again = env.run(&["cancel", &run_id]).expect_code(2);
    assert!(
        again.stderr.contains("is not running (it cancelled)"),
        "{}",
        again.stderr
    );
}

#[test]
fn a_run_goes_on_across_a_restart_of_postgresql() {
    let env = Env::new().on_postgres();
    let file = env.write("chain.toml", &chain(8, 100));
    let (child, run_id) = spawn_run(&env, file.to_str().unwrap());
    env.wait_for_status(&run_id, "two nodes done", |status| succeeded(status) >= 2);
    flow_test_artifacts::postgres::server().restart();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let status = env.run(&["status", &run_id, "--json"]).success().json();
    assert_eq!(status["status"], "succeeded");
    // An attempt whose lease lapsed while the server was away is lost and
    // runs again; each node still succeeds once.
    one_success_each(&status);
}

#[test]
fn a_run_no_live_worker_can_take_up_stays_queued_and_status_says_why() {
    let env = Env::new().on_postgres();
    let file = env.write("chain.toml", &chain(2, 10));
    let submitted = env
        .run(&["run", "--submit", file.to_str().unwrap(), "--json"])
        .success()
        .json();
    let run_id = submitted["run_id"].as_str().unwrap().to_string();
    let status = env.run(&["status", &run_id]).success();
    assert!(
        status
            .stdout
            .contains("waiting   no `flow worker` of this store is live"),
        "{}",
        status.stdout
    );

    // A worker without the run's plugin cannot take it up.
    let plugin = env.plugins().join("misbehave.wasm");
    let saved = std::fs::read(&plugin).unwrap();
    std::fs::remove_file(&plugin).unwrap();
    let lacking = WorkerProcess::start(&env, 1);
    let status = env.run(&["status", &run_id]).success();
    assert!(
        status.stdout.contains("status    queued"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains(&format!(
            "worker {} cannot take the run up: it lacks misbehave (",
            lacking.id
        )),
        "{}",
        status.stdout
    );

    // One that has it does.
    std::fs::write(&plugin, saved).unwrap();
    let _able = WorkerProcess::start(&env, 1);
    let status = env.wait_for_status(&run_id, "succeeded", |status| {
        status["status"] == "succeeded"
    });
    assert_eq!(one_success_each(&status), 0);
    drop(lacking);
}

#[test]
fn a_worker_uses_its_own_hosts_secrets_and_no_value_reaches_the_database() {
    let env = Env::new().on_postgres();
    env.add_plugin(&flow_test_artifacts::test_plugins_dir().join("reach.wasm"));
    let value = "w0rker-s3cret-value";
    let mut nodes = String::from("[workflow]\nid = \"secret\"\nplugins = \"plugins\"\n\n");
    for (id, via) in [("logged", "log"), ("printed", "print")] {
        nodes.push_str(&format!(
            "[nodes.{id}]\naction = \"reach\"\n\
             input = {{ mode = \"leak\", name = \"API_TOKEN\", via = \"{via}\" }}\n\
             secrets = [\"API_TOKEN\"]\n\n"
        ));
    }
    nodes.push_str(
        "[nodes.returned]\naction = \"reach\"\ninput = { mode = \"env\" }\nsecrets = [\"API_TOKEN\"]\n",
    );
    let file = env.write("secret.toml", &nodes);
    // Submitted from a host without the secret; the worker has it.
    let submitted = env
        .run(&["run", "--submit", file.to_str().unwrap(), "--json"])
        .success()
        .json();
    let run_id = submitted["run_id"].as_str().unwrap().to_string();
    let mut worker = env
        .flow()
        .env("FLOW_SECRET_API_TOKEN", value)
        .args(["worker", "--plugins", "plugins"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = env.wait_for_status(&run_id, "succeeded", |status| {
        status["status"] == "succeeded"
    });
    let _ = worker.kill();
    let _ = worker.wait();
    assert_eq!(
        node(&status, "returned")["output"]["vars"]["API_TOKEN"],
        "***",
        "{status}"
    );
    let text = status.to_string();
    assert!(!text.contains(value), "{text}");
    let logs = env.run(&["logs", &run_id]).success();
    assert!(logs.stdout.contains("the secret is ***"), "{}", logs.stdout);
    assert!(!logs.stdout.contains(value), "{}", logs.stdout);
    for table in ["flow_runs", "flow_nodes", "flow_attempts", "flow_tasks"] {
        let found = sql(
            &env,
            &format!("SELECT count(*) FROM {table} t WHERE t::text LIKE '%{value}%'"),
        );
        assert_eq!(found, "0", "the value is in {table}");
    }
}

/// The metrics a worker serves, fetched with `token` when given.
fn scrape(worker: &WorkerProcess, token: Option<&str>) -> (u16, String) {
    let said = worker.said();
    let url = said
        .lines()
        .find_map(|line| line.strip_prefix("metrics at "))
        .unwrap_or_else(|| panic!("no metrics address in: {said}"))
        .replace("0.0.0.0", "127.0.0.1");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent.get(&url);
    if let Some(token) = token {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    let mut reply = request.call().unwrap();
    let status = reply.status().as_u16();
    (status, reply.body_mut().read_to_string().unwrap())
}

#[test]
fn a_worker_serves_its_metrics_on_loopback_and_elsewhere_only_with_a_token() {
    let env = Env::new().on_postgres();
    let refused = env
        .run(&[
            "worker",
            "--plugins",
            "plugins",
            "--metrics-listen",
            "0.0.0.0:0",
        ])
        .expect_code(2);
    assert!(
        refused
            .stderr
            .contains("refusing to serve metrics on 0.0.0.0:0 without --token-file"),
        "{}",
        refused.stderr
    );

    let worker = WorkerProcess::start_with(&env, 2, &["--metrics-listen", "127.0.0.1:0"]);
    let file = env.write("chain.toml", &chain(3, 10));
    let submitted = env
        .run(&["run", "--submit", file.to_str().unwrap(), "--json"])
        .success()
        .json();
    let run_id = submitted["run_id"].as_str().unwrap();
    env.wait_for_status(run_id, "succeeded", |status| {
        status["status"] == "succeeded"
    });
    // The run's record is written before its process counts it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let (status, text) = scrape(&worker, None);
        assert_eq!(status, 200, "{text}");
        if text.contains("flow_runs_total") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    for expected in [
        "# HELP flow_worker_claims_total Attempts this worker claimed",
        "flow_worker_claims_total 3",
        "flow_worker_reports_total{outcome=\"accepted\"} 3",
        "flow_worker_heartbeats_total{outcome=\"renewed\"}",
        "flow_worker_runs_taken_up_total 1",
        "flow_worker_attempt_duration_seconds_count{action=\"misbehave\",outcome=\"succeeded\"} 3",
        "flow_runs_total{workflow=\"chain\",status=\"succeeded\"} 1",
    ] {
        assert!(text.contains(expected), "{expected} in:\n{text}");
    }
    drop(worker);

    // Anywhere but loopback: only with a token the file lists.
    let token = env
        .run(&["token", "--token-file", "tokens"])
        .success()
        .stdout
        .trim()
        .to_string();
    let worker = WorkerProcess::start_with(
        &env,
        1,
        &["--metrics-listen", "0.0.0.0:0", "--token-file", "tokens"],
    );
    let (status, text) = scrape(&worker, None);
    assert_eq!(status, 401, "{text}");
    let (status, _) = scrape(&worker, Some("flow_not-a-token"));
    assert_eq!(status, 401);
    let (status, text) = scrape(&worker, Some(&token));
    assert_eq!(status, 200);
    assert!(text.contains("flow_worker_heartbeats_total"), "{text}");
}

#[test]
fn a_stopped_worker_gives_back_the_attempts_it_claimed_ahead() {
    let env = Env::new().on_postgres();
    // Short attempts, which a worker claims ahead of its free slots.
    let mut text =
        String::from("[workflow]\nid = \"wide\"\nplugins = \"plugins\"\nmax_concurrency = 16\n\n");
    for i in 0..300 {
        text.push_str(&format!(
            "[nodes.n{i}]\naction = \"misbehave\"\ninput = {{ mode = \"sleep\", ms = 20 }}\n"
        ));
    }
    let file = env.write("wide.toml", &text);
    // However slow the machine, the worker counts its attempts as short.
    let worker = WorkerProcess::start_with(&env, 1, &["--claim-ahead-below", "1h"]);
    let (child, run_id) = spawn_run(&env, file.to_str().unwrap());
    // The worker holds more than it runs.
    let deadline = Instant::now() + Duration::from_secs(60);
    while sql(
        &env,
        &format!(
            "SELECT count(*) >= 2 FROM flow_tasks WHERE worker = '{}' AND state = 'claimed'",
            worker.id
        ),
    ) != "t"
    {
        assert!(Instant::now() < deadline, "the worker never claimed ahead");
        std::thread::sleep(Duration::from_millis(5));
    }
    let said = worker.stop();
    assert!(said.contains("given back unstarted"), "{said}");
    eprintln!("{said}");
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let status = env.run(&["status", &run_id, "--json"]).success().json();
    assert_eq!(
        one_success_each(&status),
        0,
        "what the worker gave back ran elsewhere, and none of it was lost"
    );
}
