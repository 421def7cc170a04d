//! The extension points: observers (events in order), middleware around
//! every attempt, metrics collectors, and observability switched off.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use flow_host::exec::{AttemptInfo, Middleware, Next};
use flow_host::observe::{Metric, MetricsCollector};
use flow_host::runtime::AttemptReport;
use flow_host::{Event, NodeStatus, Observer, RunStatus};
use futures_util::future::BoxFuture;

use crate::support::Library;

#[derive(Default)]
struct Log(Mutex<Vec<String>>);

impl Observer for Log {
    fn on_event(&self, event: &Event<'_>) {
        let line = match event {
            Event::RunStarted { nodes, .. } => format!("run started ({nodes} nodes)"),
            Event::AttemptStarted { node, attempt } => format!("{node} attempt {attempt} started"),
            Event::AttemptFinished {
                node,
                attempt,
                error,
                ..
            } => {
                format!(
                    "{node} attempt {attempt} {}",
                    if error.is_some() {
                        "failed"
                    } else {
                        "succeeded"
                    }
                )
            }
            Event::RetryScheduled { node, delay, .. } => format!("{node} retry in {delay:?}"),
            Event::NodeFinished { node } => format!("{} {}", node.id, node.status.name()),
            Event::RunFinished { report } => format!("run {}", report.status),
            _ => return,
        };
        self.0.lock().unwrap().push(line);
    }
}

const CHAIN: &str = "[workflow]\nid = \"chain\"\n\
    [nodes.first]\naction = \"flaky\"\ninput = { fail_times = 1 }\nretries = 1\nretry_delay = \"1ms\"\nretry_jitter = 0\n\
    [nodes.second]\naction = \"echo\"\ndepends_on = [\"first\"]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observers_see_every_event_in_order() {
    let library = Library::new().await;
    let log = Arc::new(Log::default());
    let (engine, _) = library.engine();
    let engine = engine.with_observer(log.clone());
    engine
        .execute(library.workflow(CHAIN), library.plugins.clone())
        .await
        .unwrap();
    assert_eq!(
        *log.0.lock().unwrap(),
        [
            "run started (2 nodes)",
            "first attempt 1 started",
            "first attempt 1 failed",
            "first retry in 1ms",
            "first attempt 2 started",
            "first attempt 2 succeeded",
            "first succeeded",
            "second attempt 1 started",
            "second attempt 1 succeeded",
            "second succeeded",
            "run succeeded",
        ]
    );
}

/// Counts the attempts it wraps, and answers for the node `mocked` itself.
#[derive(Default)]
struct Wrapper {
    seen: Mutex<Vec<(String, u32)>>,
    timed: AtomicUsize,
}

impl Middleware for Wrapper {
    fn around<'a>(
        &'a self,
        attempt: AttemptInfo<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, AttemptReport> {
        Box::pin(async move {
            self.seen
                .lock()
                .unwrap()
                .push((attempt.node_id.to_string(), attempt.attempt));
            if attempt.node_id == "mocked" {
                return AttemptReport::new(Ok(r#"{"mocked":true}"#.to_string()));
            }
            let started = std::time::Instant::now();
            let report = next.run().await;
            if started.elapsed() >= report.elapsed {
                self.timed.fetch_add(1, Ordering::SeqCst);
            }
            report
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn middleware_wraps_every_attempt() {
    let library = Library::new().await;
    let spec = library.workflow(&format!(
        "{CHAIN}[nodes.mocked]\naction = \"flaky\"\ninput = {{ fatal = \"never runs\" }}\n"
    ));
    let outer = Arc::new(Wrapper::default());
    let inner = Arc::new(Wrapper::default());
    let (engine, _) = library.engine();
    let report = engine
        .with_middleware(outer.clone())
        .with_middleware(inner.clone())
        .execute(spec, library.plugins.clone())
        .await
        .unwrap();
    let mut seen = outer.seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("first".to_string(), 1),
            ("first".to_string(), 2),
            ("mocked".to_string(), 1),
            ("second".to_string(), 1)
        ]
    );
    assert!(
        inner
            .seen
            .lock()
            .unwrap()
            .iter()
            .all(|(node, _)| node != "mocked"),
        "the outer one answered"
    );
    assert_eq!(
        outer.timed.load(Ordering::SeqCst),
        3,
        "the wrapper timed each real attempt"
    );
    assert_eq!(
        report.node("mocked").unwrap().output.as_deref(),
        Some(r#"{"mocked":true}"#)
    );
    assert_eq!(report.status, RunStatus::Succeeded);
}

#[derive(Default)]
struct Counts {
    attempts: AtomicUsize,
    retries: AtomicUsize,
    nodes: AtomicUsize,
    waits: AtomicUsize,
    runs: Mutex<Vec<RunStatus>>,
}

impl MetricsCollector for Counts {
    fn record(&self, metric: &Metric<'_>) {
        match metric {
            Metric::AttemptFinished { .. } => self.attempts.fetch_add(1, Ordering::SeqCst),
            Metric::RetryScheduled { .. } => self.retries.fetch_add(1, Ordering::SeqCst),
            Metric::NodeFinished { .. } => self.nodes.fetch_add(1, Ordering::SeqCst),
            Metric::WorkerWait { .. } => self.waits.fetch_add(1, Ordering::SeqCst),
            Metric::RunFinished { status, .. } => {
                self.runs.lock().unwrap().push(*status);
                0
            }
            _ => 0,
        };
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_collectors_get_the_measurements() {
    let library = Library::new().await;
    let counts = Arc::new(Counts::default());
    let (engine, _) = library.engine();
    engine
        .with_metrics(counts.clone())
        .execute(library.workflow(CHAIN), library.plugins.clone())
        .await
        .unwrap();
    assert_eq!(counts.attempts.load(Ordering::SeqCst), 3);
    assert_eq!(counts.retries.load(Ordering::SeqCst), 1);
    assert_eq!(counts.nodes.load(Ordering::SeqCst), 2);
    assert_eq!(counts.waits.load(Ordering::SeqCst), 2);
    assert_eq!(*counts.runs.lock().unwrap(), [RunStatus::Succeeded]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observability_off_silences_observers_and_metrics() {
    let library = Library::new().await;
    let log = Arc::new(Log::default());
    let counts = Arc::new(Counts::default());
    let (engine, _) = library.engine();
    let spec =
        library.workflow(&CHAIN.replace("id = \"chain\"", "id = \"chain\"\nobservability = false"));
    let report = engine
        .with_observer(log.clone())
        .with_metrics(counts.clone())
        .execute(spec, library.plugins.clone())
        .await
        .unwrap();
    assert_eq!(report.node("second").unwrap().status, NodeStatus::Succeeded);
    assert!(log.0.lock().unwrap().is_empty());
    assert_eq!(counts.attempts.load(Ordering::SeqCst), 0);
}
