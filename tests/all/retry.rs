//! Retries: which failures are retried, how often, after which delays.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flow_host::exec::{AttemptFailure, ErrorHandler, RetryDecision, Sleeper};
use flow_host::{NodeStatus, WorkflowStore};
use futures_util::future::BoxFuture;

use crate::support::{Env, Library, node, workflow};

/// Records the delays it is asked to wait, and returns at once.
#[derive(Default)]
struct RecordingSleeper(Mutex<Vec<Duration>>);

impl Sleeper for RecordingSleeper {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.0.lock().unwrap().push(duration);
        Box::pin(async {})
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_chooses_the_documented_delays() {
    let library = Library::new().await;
    let spec = library.workflow(
        "[workflow]\nid = \"w\"\n[nodes.busy]\naction = \"flaky\"\ninput = { fail_times = 4 }\n\
         retries = 4\nretry_delay = \"100ms\"\nretry_backoff = 2\nretry_max_delay = \"300ms\"\nretry_jitter = 0\n",
    );
    let sleeper = Arc::new(RecordingSleeper::default());
    let (engine, store) = library.engine();
    let started = std::time::Instant::now();
    let report = engine
        .with_sleeper(sleeper.clone())
        .execute(spec, library.plugins.clone())
        .await
        .unwrap();
    let busy = report.node("busy").unwrap();
    assert_eq!(busy.status, NodeStatus::Succeeded);
    assert_eq!(busy.attempts, 5);
    let delays: Vec<u128> = sleeper
        .0
        .lock()
        .unwrap()
        .iter()
        .map(Duration::as_millis)
        .collect();
    assert_eq!(delays, [100, 200, 300, 300]);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "the sleeper replaced real waiting"
    );

    let attempts = store.attempts(&report.run_id, "busy").unwrap();
    let recorded: Vec<Option<u64>> = attempts.iter().map(|a| a.retry_delay_ms).collect();
    assert_eq!(recorded, [Some(100), Some(200), Some(300), Some(300), None]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jitter_keeps_delays_within_their_fraction() {
    let library = Library::new().await;
    let spec = library.workflow(
        "[workflow]\nid = \"w\"\n[nodes.busy]\naction = \"flaky\"\ninput = { fail_times = 3 }\n\
         retries = 3\nretry_delay = \"1s\"\nretry_backoff = 1\nretry_jitter = 0.5\n",
    );
    let sleeper = Arc::new(RecordingSleeper::default());
    let (engine, _) = library.engine();
    engine
        .with_sleeper(sleeper.clone())
        .execute(spec, library.plugins.clone())
        .await
        .unwrap();
    for delay in sleeper.0.lock().unwrap().iter() {
        assert!((500..=1500).contains(&delay.as_millis()), "{delay:?}");
    }
}

#[test]
fn retries_run_out_with_the_last_error_and_the_count() {
    let env = Env::new();
    let file = env.write(
        "busy.toml",
        &workflow("[nodes.busy]\naction = \"flaky\"\ninput = { fail_times = 5 }\nretries = 2\nretry_delay = \"1ms\"\n"),
    );
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .expect_code(1)
        .json();
    let busy = node(&report, "busy");
    assert_eq!(busy["attempts"], 3);
    assert_eq!(
        busy["error"]["message"],
        "retryable error: attempt 3 of 5 fails on purpose"
    );
    assert_eq!(
        report["error"],
        "node `busy` failed after 3 attempts: retryable error: attempt 3 of 5 fails on purpose"
    );
}

#[test]
fn fatal_errors_are_not_retried() {
    let env = Env::new();
    let file = env.write(
        "fatal.toml",
        &workflow("[defaults]\nretries = 5\nretry_delay = \"1ms\"\n[nodes.bad]\naction = \"flaky\"\ninput = { fatal = \"no\" }\n"),
    );
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .expect_code(1)
        .json();
    assert_eq!(node(&report, "bad")["attempts"], 1);
}

#[test]
fn timeouts_are_retried() {
    let env = Env::new();
    let file = env.write(
        "slow.toml",
        &workflow("[nodes.slow]\naction = \"misbehave\"\ninput = { mode = \"sleep\", ms = 60000 }\ntimeout = \"100ms\"\nretries = 1\nretry_delay = \"1ms\"\n"),
    );
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .expect_code(1)
        .json();
    assert_eq!(node(&report, "slow")["attempts"], 2);
    assert_eq!(
        node(&report, "slow")["error"]["message"],
        "timed out after 100ms"
    );
}

#[test]
fn retries_show_as_they_happen() {
    let env = Env::new();
    let file = env.write(
        "busy.toml",
        &workflow("[nodes.busy]\naction = \"flaky\"\ninput = { fail_times = 1 }\nretries = 1\nretry_delay = \"1ms\"\nretry_jitter = 0\n"),
    );
    let run = env.run(&["run", file.to_str().unwrap()]).success();
    assert!(
        run.stdout.contains("  retry    busy  flaky  attempt 1 failed: retryable error: attempt 1 of 1 fails on purpose; retrying in 1.0 ms"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(", 2 attempts"), "{}", run.stdout);
    let status = env.run(&["status"]).success().stdout;
    assert!(
        status.contains("failed attempts:\n  busy  #1  "),
        "{status}"
    );
    assert!(status.contains("retried after 1.0 ms"), "{status}");
}

/// Gives up on everything, and retries fatal errors of the node `stubborn`
/// once.
struct Strict;

impl ErrorHandler for Strict {
    fn on_attempt_failed(
        &self,
        failure: &AttemptFailure<'_>,
        _proposed: RetryDecision,
    ) -> RetryDecision {
        if failure.node == "stubborn" && failure.attempt == 1 {
            RetryDecision::Retry {
                after: Duration::ZERO,
            }
        } else {
            RetryDecision::GiveUp
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_handler_overrides_the_policy() {
    let library = Library::new().await;
    let spec = library.workflow(
        "[workflow]\nid = \"w\"\n[defaults]\nretries = 5\ncontinue_on_error = true\n\
         [nodes.busy]\naction = \"flaky\"\ninput = { fail_times = 3 }\n\
         [nodes.stubborn]\naction = \"flaky\"\ninput = { fatal = \"no\" }\n",
    );
    let (engine, _) = library.engine();
    let report = engine
        .with_error_handler(Arc::new(Strict))
        .execute(spec, library.plugins.clone())
        .await
        .unwrap();
    assert_eq!(
        report.node("busy").unwrap().attempts,
        1,
        "retryable, but the handler gave up"
    );
    assert_eq!(
        report.node("stubborn").unwrap().attempts,
        2,
        "fatal, but the handler retried"
    );
}
