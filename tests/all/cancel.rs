//! Cancellation: through the library's handle, and by signal to `flow run`.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use flow_host::{Event, NodeStatus, Observer, RunStatus, WorkflowStore};
use tokio::sync::Notify;

use crate::support::{Env, Library, workflow};

/// Wakes the test once a given node's attempt has started.
struct Started {
    node: &'static str,
    notify: Notify,
}

impl Observer for Started {
    fn on_event(&self, event: &Event<'_>) {
        if let Event::AttemptStarted { node, .. } = event
            && *node == self.node
        {
            self.notify.notify_one();
        }
    }
}

const SLEEPY: &str = "[workflow]\nid = \"sleepy\"\nplugins = \"plugins\"\n\
    [nodes.nap]\naction = \"misbehave\"\ninput = { mode = \"sleep\", ms = 600000 }\n\
    [nodes.after]\naction = \"echo\"\ndepends_on = [\"nap\"]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_through_the_handle_stops_running_attempts() {
    let library = Library::new().await;
    let spec = library.workflow(SLEEPY);
    let started = Arc::new(Started {
        node: "nap",
        notify: Notify::new(),
    });
    let (engine, store) = library.engine();
    let handle = engine
        .with_observer(started.clone())
        .start(spec, library.plugins.clone())
        .unwrap();
    started.notify.notified().await;

    let status = handle.status();
    assert_eq!(status.status, RunStatus::Running);
    assert_eq!(status.nodes[0], ("nap".to_string(), NodeStatus::Running, 1));
    assert_eq!(
        status.nodes[1],
        ("after".to_string(), NodeStatus::Pending, 0)
    );

    // Cancel from another thread, as a signal handler or a UI would.
    let canceller = handle.canceller();
    std::thread::spawn(move || canceller.cancel())
        .join()
        .unwrap();
    let report = tokio::time::timeout(Duration::from_secs(30), handle.wait())
        .await
        .expect("the run stops when cancelled")
        .unwrap();
    assert_eq!(report.status, RunStatus::Cancelled);
    assert_eq!(report.node("nap").unwrap().status, NodeStatus::Cancelled);
    assert_eq!(report.node("after").unwrap().status, NodeStatus::Pending);

    let run = store.run(&report.run_id).unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Cancelled);
    assert!(run.finished_at.is_some());
    let nodes = store.nodes(&report.run_id).unwrap();
    assert_eq!(nodes[0].status, NodeStatus::Cancelled);
    let attempt = &store.attempts(&report.run_id, "nap").unwrap()[0];
    assert_eq!(
        attempt.error.as_ref().map(|failure| failure.kind),
        Some(flow_host::FailureKind::Cancelled)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_during_a_retry_delay_stops_the_wait() {
    let library = Library::new().await;
    let spec = library.workflow(
        "[workflow]\nid = \"w\"\n[nodes.busy]\naction = \"flaky\"\ninput = { fail_times = 3 }\nretries = 3\nretry_delay = \"10m\"\n",
    );
    let started = Arc::new(Started {
        node: "busy",
        notify: Notify::new(),
    });
    let (engine, _) = library.engine();
    let handle = engine
        .with_observer(started.clone())
        .start(spec, library.plugins.clone())
        .unwrap();
    started.notify.notified().await;
    handle.cancel();
    let report = tokio::time::timeout(Duration::from_secs(30), handle.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.status, RunStatus::Cancelled);
    assert_eq!(report.node("busy").unwrap().status, NodeStatus::Cancelled);
}

/// Starts `flow run` on the sleepy workflow and returns once its first
/// line (the run's header) is out, with the process and the run id.
fn start_sleepy(env: &Env) -> (std::process::Child, String) {
    let file = env.write("sleepy.toml", SLEEPY);
    let mut command = env.flow();
    command
        .args(["run", file.to_str().unwrap()])
        .stderr(Stdio::piped());
    crate::support::spawn_run(command)
}

fn signal(child: &std::process::Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn sigint_cancels_the_run_and_says_how_to_continue() {
    let env = Env::new();
    let (child, run_id) = start_sleepy(&env);
    signal(&child, "INT");
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("cancelling run {run_id}")),
        "{stderr}"
    );
    assert!(
        stdout.contains(&format!("continue it with: flow resume {run_id}")),
        "{stdout}"
    );

    let status = env.run(&["status", &run_id, "--json"]).success().json();
    assert_eq!(status["status"], "cancelled");
}

#[test]
fn sigterm_cancels_too() {
    let env = Env::new();
    let (child, run_id) = start_sleepy(&env);
    signal(&child, "TERM");
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130));
    let status = env.run(&["status", &run_id, "--json"]).success().json();
    assert_eq!(status["status"], "cancelled");
}

#[test]
fn a_second_sigint_exits_at_once() {
    let env = Env::new();
    let (child, _) = start_sleepy(&env);
    signal(&child, "INT");
    signal(&child, "INT");
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130));
}

#[test]
fn continue_on_error_lets_dependents_run_and_see_the_error() {
    let env = Env::new();
    let file = env.write(
        "tolerant.toml",
        &workflow(
            "[nodes.bad]\naction = \"flaky\"\ninput = { fatal = \"no data today\" }\ncontinue_on_error = true\n\
             [nodes.good]\naction = \"echo\"\ninput = { x = 1 }\n\
             [nodes.report]\naction = \"misbehave\"\ndepends_on = [\"bad\", \"good\"]\ninput = { mode = \"inspect\" }\n",
        ),
    );
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .success()
        .json();
    assert_eq!(
        report["status"], "succeeded",
        "failures with continue_on_error do not fail the run"
    );
    let seen = &crate::support::node(&report, "report")["output"];
    assert_eq!(seen["deps"], serde_json::json!({"good": {"x": 1}}));
    assert_eq!(
        seen["errors"],
        serde_json::json!({"bad": "fatal error: no data today"})
    );
}
