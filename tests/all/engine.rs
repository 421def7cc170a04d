//! The library API: the engine with an observer, no binary involved.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use flow_host::{
    CompileCache, Event, MemoryStore, NodeStatus, Observer, RunStatus, Runtime, RuntimeConfig,
    WorkflowEngine, WorkflowSpec, WorkflowStore,
};

/// Counts attempts in flight and records the order nodes start and finish.
#[derive(Default)]
struct Recorder {
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    events: Mutex<Vec<String>>,
}

impl Observer for Recorder {
    fn on_event(&self, event: &Event<'_>) {
        let mut events = self.events.lock().unwrap();
        match event {
            Event::RunStarted { .. } => events.push("run started".into()),
            Event::AttemptStarted { node, .. } => {
                let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                self.peak.fetch_max(now, Ordering::SeqCst);
                events.push(format!("start {node}"));
            }
            Event::NodeFinished { node } => {
                if node.attempts > 0 {
                    self.in_flight.fetch_sub(1, Ordering::SeqCst);
                }
                events.push(format!("finish {}", node.id));
            }
            Event::RunFinished { .. } => events.push("run finished".into()),
            _ => {}
        }
    }
}

fn layered_workflow() -> String {
    // Three levels of eight nodes; each node depends on two of the level above.
    let mut text = String::from("[workflow]\nid = \"layers\"\nmax_concurrency = 3\n");
    for level in 0..3 {
        for i in 0..8 {
            text.push_str(&format!(
                "[nodes.l{level}n{i}]\naction = \"echo\"\ninput = {{ n = {i} }}\n"
            ));
            if level > 0 {
                let above = level - 1;
                text.push_str(&format!(
                    "depends_on = [\"l{above}n{i}\", \"l{above}n{}\"]\n",
                    (i + 3) % 8
                ));
            }
        }
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_pool_never_exceeds_max_concurrency_and_dependencies_come_first() {
    let spec = Arc::new(WorkflowSpec::parse(Path::new("layers.toml"), layered_workflow()).unwrap());
    let runtime = Arc::new(Runtime::new(RuntimeConfig::default()).unwrap());
    let cache = CompileCache::open(runtime.engine(), crate::support::shared_cache()).unwrap();
    let plugins = Arc::new(
        runtime
            .load_plugins(&[crate::support::example_plugins()], &cache)
            .await
            .unwrap(),
    );
    let store = Arc::new(MemoryStore::new());
    let recorder = Arc::new(Recorder::default());
    let engine = WorkflowEngine::new(runtime, store.clone()).with_observer(recorder.clone());

    let report = engine.execute(spec.clone(), plugins).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded);
    assert!(
        recorder.peak.load(Ordering::SeqCst) <= 3,
        "peak {}",
        recorder.peak.load(Ordering::SeqCst)
    );

    let events = recorder.events.lock().unwrap();
    assert_eq!(events.first().unwrap(), "run started");
    assert_eq!(events.last().unwrap(), "run finished");
    let position = |event: String| events.iter().position(|e| *e == event).unwrap();
    for (index, node) in spec.nodes.iter().enumerate() {
        assert!(position(format!("start {}", node.id)) < position(format!("finish {}", node.id)));
        for &dep in spec.dag.dependencies(index) {
            let dep = &spec.nodes[dep].id;
            assert!(
                position(format!("finish {dep}")) < position(format!("start {}", node.id)),
                "{} started before its dependency {dep} finished",
                node.id
            );
        }
    }

    // Everything the report says is in the store.
    let stored = store.nodes(&report.run_id).unwrap();
    assert_eq!(stored.len(), 24);
    assert!(
        stored
            .iter()
            .all(|node| node.status == NodeStatus::Succeeded)
    );
    assert_eq!(
        store.run(&report.run_id).unwrap().unwrap().status,
        RunStatus::Succeeded
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn strict_durability_flushes_each_completion_and_batched_flushes_at_the_end() {
    let library = crate::support::Library::new().await;
    let mut text = String::from("[workflow]\nid = \"w\"\nmax_concurrency = 4\nDURABILITY\n");
    for i in 0..20 {
        text.push_str(&format!("[nodes.n{i}]\naction = \"echo\"\n"));
    }
    let strict = library.workflow(&text.replace("DURABILITY", "durability = \"strict\""));
    let batched = library.workflow(&text.replace(
        "DURABILITY",
        "durability = \"batched\"\npersistence_interval = \"1h\"",
    ));
    let (engine, _) = library.engine();
    let report = engine
        .execute(strict, library.plugins.clone())
        .await
        .unwrap();
    // One flush per group of attempts starting together and per group of
    // nodes finishing together: at most two per node, plus the one at the
    // end of the run.
    assert!(
        (2..=41).contains(&report.flushes),
        "{} flushes",
        report.flushes
    );
    let report = engine
        .execute(batched, library.plugins.clone())
        .await
        .unwrap();
    assert_eq!(
        report.flushes, 1,
        "only the final flush within the interval"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_smaller_than_the_pool_of_workers_is_refused() {
    let library = crate::support::Library::new().await;
    let runtime = Arc::new(Runtime::new(RuntimeConfig::for_workers(2)).unwrap());
    let engine = WorkflowEngine::new(runtime, Arc::new(MemoryStore::new()));
    let spec = library
        .workflow("[workflow]\nid = \"w\"\nmax_concurrency = 40\n[nodes.a]\naction = \"echo\"\n");
    let error = engine
        .execute(spec, library.plugins.clone())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains(
            "runs 40 attempts at once, but the WebAssembly runtime has 32 instance slots"
        ),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durations_longer_than_a_clock_counts_are_no_crash_for_library_callers() {
    // A file refuses durations over 100 years; a program sets the fields
    // itself, so the engine must bear any `Duration`.
    let library = crate::support::Library::new().await;
    let mut spec = (*library.workflow(
        "[workflow]\nid = \"w\"\ndurability = \"batched\"\n[nodes.a]\naction = \"echo\"\n",
    ))
    .clone();
    spec.options.persistence_interval = std::time::Duration::MAX;
    for node in &mut spec.nodes {
        node.options.limits.timeout = std::time::Duration::MAX;
    }
    let (engine, store) = library.engine();
    let report = engine
        .execute(Arc::new(spec), library.plugins.clone())
        .await
        .unwrap();
    assert_eq!(
        store.run(&report.run_id).unwrap().unwrap().status,
        RunStatus::Succeeded
    );
}
