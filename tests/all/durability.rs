//! Crashes and resumes: SIGKILL at random moments, resume after cancel and
//! after failure, refusal when the workflow or a plugin changed, runs left
//! by a dead process.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Env, node, workflow};

/// Six levels of 24 nodes on two workers: each node of the first five
/// sleeps 80 to 95 ms (in a host call, so the run takes about as long on a
/// busy machine), and each of the last level merges the outputs of two
/// nodes above it, so that stored outputs must feed their dependents.
fn crash_workflow(durability: &str) -> String {
    let mut text = format!(
        "[workflow]\nid = \"crash\"\nplugins = \"plugins\"\nmax_concurrency = 2\ndurability = \"{durability}\"\npersistence_interval = \"20ms\"\n"
    );
    for level in 0..6 {
        for i in 0..24 {
            let deps = format!(
                "[\"l{}n{i}\", \"l{}n{}\"]",
                level.max(1) - 1,
                level.max(1) - 1,
                (i + 7) % 24
            );
            if level == 5 {
                text.push_str(&format!(
                    "[nodes.l{level}n{i}]\naction = \"json\"\ndepends_on = {deps}\n"
                ));
                text.push_str(&format!(
                    "input = {{ merge = [\"l4n{}\", \"l4n{i}\"] }}\n",
                    (i + 7) % 24
                ));
                continue;
            }
            let ms = 80 + (level * 24 + i) % 16;
            text.push_str(&format!(
                "[nodes.l{level}n{i}]\naction = \"misbehave\"\ninput = {{ mode = \"sleep\", ms = {ms} }}\n"
            ));
            if level > 0 {
                text.push_str(&format!("depends_on = {deps}\n"));
            }
        }
    }
    text
}

fn kill(child: &mut Child) -> bool {
    let alive = child.try_wait().unwrap().is_none();
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    alive
}

/// Starts `flow run`, and returns once it printed its run id.
fn spawn_run(env: &Env, file: &str) -> (Child, String) {
    let mut command = env.flow();
    command.args(["run", file]).stderr(Stdio::null());
    crate::support::spawn_run(command)
}

fn crash_and_resume(durability: &str) {
    let env = Env::new();
    let file = env.write("crash.toml", &crash_workflow(durability));
    let file = file.to_str().unwrap();

    // The reference: an uninterrupted run.
    let reference = env.run(&["run", file, "--json"]).success().json();

    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64
        });
    eprintln!("crash test ({durability}): seed {seed} (set CRASH_SEED to replay)");
    let mut rng = fastrand::Rng::with_seed(seed);

    let (mut child, run_id) = spawn_run(&env, file);
    let mut kills = 0;
    let mut lives = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        // About 5 s of sleeping nodes on two workers and at most 250 ms per
        // life: the run cannot finish before the twentieth kill.
        std::thread::sleep(Duration::from_millis(rng.u64(50..250)));
        if kill(&mut child) {
            kills += 1;
        }
        lives += 1;
        if kills >= 20 || Instant::now() > deadline {
            break;
        }
        child = env
            .flow()
            .args(["resume", &run_id])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(env.path().join("resume.err")).unwrap())
            .spawn()
            .unwrap();
    }
    let last_error = std::fs::read_to_string(env.path().join("resume.err")).unwrap_or_default();
    assert!(
        kills >= 20,
        "only {kills} kills landed in {lives} lives; the last resume said: {last_error}"
    );

    // Let it finish.
    let last = env.run(&["resume", &run_id, "--json"]);
    if last.code != 0 {
        // The run may have completed in the life before the last kill.
        assert!(
            last.stderr
                .contains("succeeded; there is nothing to resume"),
            "{}",
            last.stderr
        );
    }

    let status = env.run(&["status", &run_id, "--json"]).success().json();
    assert_eq!(status["status"], "succeeded", "{status}");
    // Kills during start-up land before the resume is recorded.
    let resumes = status["resumes"].as_u64().unwrap();
    eprintln!("{kills} kills, {resumes} resumes recorded");
    assert!(resumes >= 1);

    let nodes = status["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 144);
    for stored in nodes {
        let id = stored["id"].as_str().unwrap();
        assert_eq!(
            stored["output"],
            node(&reference, id)["output"],
            "output of {id}"
        );
        // A completion is written atomically with its attempt record; two
        // completed attempts would mean a flushed completion ran again.
        let completed = stored["attempt_records"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["error"].is_null() && !a["elapsed_ms"].is_null())
            .count();
        assert_eq!(
            completed, 1,
            "node {id} completed {completed} times: {stored}"
        );
    }
}

#[test]
fn sigkill_twenty_times_with_strict_durability_and_resume() {
    crash_and_resume("strict");
}

#[test]
fn sigkill_twenty_times_with_batched_durability_and_resume() {
    crash_and_resume("batched");
}

#[test]
fn a_killed_run_is_reported_interrupted_not_running() {
    let env = Env::new();
    let file = env.write(
        "sleepy.toml",
        &workflow(
            "[nodes.nap]\naction = \"misbehave\"\ninput = { mode = \"sleep\", ms = 600000 }\n",
        ),
    );
    let (mut child, run_id) = spawn_run(&env, file.to_str().unwrap());
    assert!(kill(&mut child));
    let list = env.run(&["list", "--json"]).success().json();
    assert_eq!(list["runs"][0]["status"], "interrupted");
    let status = env.run(&["status", &run_id]).success().stdout;
    assert!(
        status.contains(&format!("status    interrupted: the flow process running it stopped before the end; continue it with: flow resume {run_id}")),
        "{status}"
    );
}

#[test]
fn resume_after_cancel_skips_what_finished() {
    let env = Env::new();
    let file = env.write(
        "two.toml",
        &workflow(
            "[nodes.first]\naction = \"echo\"\ninput = { n = 1 }\n\
             [nodes.nap]\naction = \"misbehave\"\ndepends_on = [\"first\"]\n\
             input = { mode = \"sleep\", ms = 600000, first_attempt_only = true }\n",
        ),
    );
    let mut child = env
        .flow()
        .args(["run", file.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let header = lines.next().unwrap().unwrap();
    let run_id = header.split_whitespace().nth(1).unwrap().to_string();
    // `first` has finished once its line is out, and `nap` runs once its
    // start line is.
    let mut lines = lines.by_ref().map(Result::unwrap);
    assert!(lines.any(|line| line.starts_with("  ok       first")));
    assert!(lines.any(|line| line.starts_with("  start    nap")));
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    assert!(status.unwrap().success());
    assert_eq!(child.wait().unwrap().code(), Some(130));

    let resumed = env.run(&["resume", &run_id, "--json"]).success().json();
    assert_eq!(node(&resumed, "first")["attempts"], 1, "not run again");
    // Its time and fuel come from the earlier session.
    assert!(node(&resumed, "first")["elapsed_ms"].as_f64().unwrap() > 0.0);
    assert!(node(&resumed, "first")["fuel_used"].as_u64().unwrap() > 0);
    assert_eq!(
        node(&resumed, "first")["output"],
        serde_json::json!({"n": 1})
    );
    assert_eq!(node(&resumed, "nap")["attempts"], 2);
    assert_eq!(
        node(&resumed, "nap")["output"],
        serde_json::json!({"slept_ms": 0})
    );
    let status = status_of(&env, &run_id);
    let nap = stored(&status, "nap");
    assert_eq!(nap["attempt_records"][0]["error"]["kind"], "cancelled");
}

#[test]
fn an_attempt_running_when_flow_was_killed_is_recorded_as_lost() {
    let env = Env::new();
    let file = env.write(
        "lost.toml",
        "[workflow]\nid = \"lost\"\nplugins = \"plugins\"\ndurability = \"strict\"\n\
         [nodes.nap]\naction = \"misbehave\"\n\
         input = { mode = \"sleep\", ms = 600000, first_attempt_only = true }\n",
    );
    let mut child = env
        .flow()
        .args(["run", file.to_str().unwrap(), "--progress", "plain"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let header = lines.next().unwrap().unwrap();
    let run_id = header.split_whitespace().nth(1).unwrap().to_string();
    // With strict durability the attempt's start is on disk before the
    // plugin runs, and its line is printed after that.
    assert!(
        lines
            .by_ref()
            .map(Result::unwrap)
            .any(|line| line.starts_with("  start    nap"))
    );
    assert!(kill(&mut child));

    let resumed = env.run(&["resume", &run_id, "--json"]).success().json();
    assert_eq!(node(&resumed, "nap")["attempts"], 2, "{resumed}");
    let status = status_of(&env, &run_id);
    let attempts = stored(&status, "nap")["attempt_records"]
        .as_array()
        .unwrap();
    assert_eq!(attempts.len(), 2, "both runs of the node are recorded");
    assert_eq!(attempts[0]["error"]["kind"], "lost");
    assert!(attempts[1]["error"].is_null());
    let text = env.run(&["status", &run_id]).success().stdout;
    assert!(
        text.contains("#1  -  [lost] lost: the flow process stopped"),
        "{text}"
    );
}

fn status_of(env: &Env, run_id: &str) -> Value {
    env.run(&["status", run_id, "--json"]).success().json()
}

fn stored<'a>(status: &'a Value, id: &str) -> &'a Value {
    status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == id)
        .unwrap()
}

#[test]
fn resume_after_failure_gives_failed_nodes_fresh_attempts() {
    let env = Env::new();
    let file = env.write(
        "flaky.toml",
        &workflow(
            "[nodes.first]\naction = \"echo\"\ninput = { n = 1 }\n\
             [nodes.busy]\naction = \"flaky\"\ndepends_on = [\"first\"]\ninput = { fail_times = 2 }\n\
             [nodes.last]\naction = \"json\"\ndepends_on = [\"busy\"]\n",
        ),
    );
    let first = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .expect_code(1)
        .json();
    let run_id = first["run_id"].as_str().unwrap();
    assert_eq!(node(&first, "last")["status"], "skipped");

    let second = env.run(&["resume", run_id, "--json"]).expect_code(1).json();
    assert_eq!(second["run_id"], run_id, "the same run continues");
    assert_eq!(
        node(&second, "busy")["attempts"],
        2,
        "attempts are numbered after the earlier ones"
    );

    let third = env
        .run(&["resume", &run_id[..12], "--json"])
        .success()
        .json();
    assert_eq!(
        node(&third, "busy")["output"],
        serde_json::json!({"attempt": 3})
    );
    assert_eq!(
        node(&third, "last")["output"],
        serde_json::json!({"attempt": 3})
    );

    let status = status_of(&env, run_id);
    assert_eq!(status["resumes"], 2);
    assert_eq!(
        stored(&status, "first")["attempts"],
        1,
        "a node that succeeded never runs again"
    );
    assert_eq!(
        stored(&status, "busy")["attempt_records"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let again = env.run(&["resume", run_id]).expect_code(2);
    assert!(
        again
            .stderr
            .contains("succeeded; there is nothing to resume"),
        "{}",
        again.stderr
    );
}

#[test]
fn resume_refuses_a_changed_workflow_unless_forced() {
    let env = Env::new();
    let text = workflow("[nodes.bad]\naction = \"flaky\"\ninput = { fatal = \"no\" }\n");
    let file = env.write("w.toml", &text);
    let run_id = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .expect_code(1)
        .json()["run_id"]
        .as_str()
        .unwrap()
        .to_string();

    env.write(
        "w.toml",
        &text.replace("input = { fatal = \"no\" }", "input = { fail_times = 0 }"),
    );
    let refused = env.run(&["resume", &run_id]).expect_code(2);
    assert!(
        refused.stderr.contains(&format!(
            "run {run_id} was not resumed because the workflow file"
        )),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("w.toml changed (sha256 "),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("resume with --force"),
        "{}",
        refused.stderr
    );

    let forced = env
        .run(&["resume", &run_id, "--force", "--json"])
        .success()
        .json();
    assert_eq!(node(&forced, "bad")["status"], "succeeded");
}

#[test]
fn resume_refuses_a_changed_plugin() {
    let env = Env::new();
    let file = env.write(
        "w.toml",
        &workflow("[nodes.a]\naction = \"echo\"\n[nodes.bad]\naction = \"flaky\"\ndepends_on = [\"a\"]\ninput = { fatal = \"no\" }\n"),
    );
    let run_id = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .expect_code(1)
        .json()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    // The same plugin with a custom section appended: it behaves the same,
    // but it is not the same file.
    let path = env.plugins().join("flaky.wasm");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0, 5, 4, b'n', b'o', b't', b'e']);
    std::fs::write(&path, bytes).unwrap();
    let refused = env.run(&["resume", &run_id]).expect_code(2);
    assert!(
        refused.stderr.contains("plugin `flaky` changed (sha256 "),
        "{}",
        refused.stderr
    );
    assert!(
        !refused.stderr.contains("plugin `echo`"),
        "{}",
        refused.stderr
    );
}
