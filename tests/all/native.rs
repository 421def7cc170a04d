//! Native actions beside WebAssembly plugins: built workflows, retries,
//! timeouts, cancel, observers, and a crash with resume.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flow_host::exec::{AttemptInfo, Middleware, Next, Sleeper};
use flow_host::runtime::{
    Action, ActionContext, ActionError, AttemptReport, LogLevel, PluginError, PluginInfo,
};
use flow_host::{
    CompileCache, Event, FailureKind, MemoryStore, NodeStatus, Observer, PluginRegistry, RunStatus,
    Runtime, RuntimeConfig, SledStore, WorkflowEngine, WorkflowSpec, WorkflowStore,
};
use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use crate::support::{Env, shared_cache};

fn info(name: &str) -> PluginInfo {
    PluginInfo {
        name: name.into(),
        version: "1.0.0".into(),
        description: format!("the native action {name}"),
    }
}

/// Doubles `deps.*.n` and `input.n`, logging what it does.
struct Double;

impl Action for Double {
    fn describe(&self) -> PluginInfo {
        info("double")
    }

    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext,
        request: &'a str,
    ) -> BoxFuture<'a, Result<String, ActionError>> {
        Box::pin(async move {
            let request: Value =
                serde_json::from_str(request).map_err(|e| ActionError::Fatal(e.to_string()))?;
            let n = request["deps"]
                .as_object()
                .and_then(|deps| deps.values().find_map(|dep| dep["n"].as_i64()))
                .or_else(|| request["input"]["n"].as_i64())
                .ok_or_else(|| ActionError::Fatal("no n in the input or deps".into()))?;
            ctx.log(
                LogLevel::Info,
                format!("{} doubles {n}", ctx.context().node_id),
            );
            Ok(json!({ "n": 2 * n }).to_string())
        })
    }
}

/// Fails retryably until its `succeed_on`th attempt.
struct Flaky {
    succeed_on: u32,
    calls: AtomicU32,
}

impl Action for Flaky {
    fn describe(&self) -> PluginInfo {
        info("flaky-native")
    }

    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext,
        _: &'a str,
    ) -> BoxFuture<'a, Result<String, ActionError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let attempt = ctx.context().attempt;
        Box::pin(async move {
            if attempt < self.succeed_on {
                Err(ActionError::Retryable(format!("busy on attempt {attempt}")))
            } else {
                Ok(json!({ "attempt": attempt }).to_string())
            }
        })
    }
}

/// Waits forever (until dropped), noting that it started and that it was
/// dropped; with a `marker`, writes the run id there when it starts.
#[derive(Default)]
struct Hang {
    started: tokio::sync::Notify,
    dropped: Arc<AtomicBool>,
    marker: Option<std::path::PathBuf>,
}

struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Action for Hang {
    fn describe(&self) -> PluginInfo {
        info("hang")
    }

    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext,
        _: &'a str,
    ) -> BoxFuture<'a, Result<String, ActionError>> {
        let guard = SetOnDrop(self.dropped.clone());
        Box::pin(async move {
            let _guard = guard;
            if let Some(marker) = &self.marker {
                std::fs::write(marker, &ctx.context().run_id).unwrap();
            }
            self.started.notify_one();
            std::future::pending::<()>().await;
            unreachable!()
        })
    }
}

/// Panics in its attempt.
struct Panics;

impl Action for Panics {
    fn describe(&self) -> PluginInfo {
        info("panics")
    }

    fn run<'a>(
        &'a self,
        _: &'a ActionContext,
        _: &'a str,
    ) -> BoxFuture<'a, Result<String, ActionError>> {
        Box::pin(async move { panic!("the native action broke") })
    }
}

/// The example plugins and these native actions.
async fn registry(natives: Vec<Arc<dyn Action>>) -> (Arc<Runtime>, Arc<PluginRegistry>) {
    let runtime = Arc::new(Runtime::new(RuntimeConfig::default()).unwrap());
    let cache = CompileCache::open(runtime.engine(), shared_cache()).unwrap();
    let mut plugins = runtime
        .load_plugins(&[crate::support::example_plugins()], &cache)
        .await
        .unwrap();
    for native in natives {
        plugins.add_native(native).unwrap();
    }
    (runtime, Arc::new(plugins))
}

/// Records the delays the engine asks for, without waiting.
#[derive(Default)]
struct Delays(Mutex<Vec<Duration>>);

impl Sleeper for Delays {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.0.lock().unwrap().push(duration);
        Box::pin(async {})
    }
}

/// Records node events, and which attempts middleware saw.
#[derive(Default)]
struct Seen(Mutex<Vec<String>>);

impl Observer for Seen {
    fn on_event(&self, event: &Event<'_>) {
        let line = match event {
            Event::AttemptStarted { node, attempt } => format!("start {node} {attempt}"),
            Event::NodeFinished { node } => format!("finish {} {}", node.id, node.status),
            _ => return,
        };
        self.0.lock().unwrap().push(line);
    }
}

impl Middleware for Seen {
    fn around<'a>(
        &'a self,
        attempt: AttemptInfo<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, AttemptReport> {
        self.0
            .lock()
            .unwrap()
            .push(format!("around {} ({})", attempt.node_id, attempt.action));
        next.run()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_built_workflow_mixes_native_and_wasm_actions() {
    let (runtime, plugins) = registry(vec![Arc::new(Double)]).await;
    let workflow = WorkflowSpec::builder("mixed")
        .node("start", "echo")
        .input(json!({ "n": 21 }))
        .node("twice", "double")
        .depends_on(["start"])
        .node("show", "echo")
        .depends_on(["twice"])
        .input(json!({ "done": true }))
        .build()
        .unwrap();
    let seen = Arc::new(Seen::default());
    let store = Arc::new(MemoryStore::new());
    let engine = WorkflowEngine::new(runtime, store.clone())
        .with_observer(seen.clone())
        .with_middleware(seen.clone());
    let report = engine.execute(Arc::new(workflow), plugins).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    let twice = report.nodes.iter().find(|n| n.id == "twice").unwrap();
    assert_eq!(twice.output.as_ref().unwrap().to_string(), r#"{"n":42}"#);
    // No fuel for a native action; the WASM ones are metered.
    assert_eq!(twice.fuel_used, None);
    assert!(report.nodes[0].fuel_used.is_some());

    let seen = seen.0.lock().unwrap().clone();
    for expected in [
        "around twice (double)",
        "start twice 1",
        "finish twice succeeded",
    ] {
        assert!(
            seen.contains(&expected.to_string()),
            "{expected} not in {seen:?}"
        );
    }
    let attempts = store.attempts(&report.run_id, "twice").unwrap();
    assert_eq!(attempts[0].logs[0].text, "twice doubles 21");

    let status = engine.status(&report.run_id).unwrap();
    assert_eq!(status.status, RunStatus::Succeeded);
    assert_eq!(
        status.nodes,
        [
            ("start".to_string(), NodeStatus::Succeeded, 1),
            ("twice".to_string(), NodeStatus::Succeeded, 1),
            ("show".to_string(), NodeStatus::Succeeded, 1),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_action_that_fails_retryably_is_retried_with_backoff() {
    let flaky = Arc::new(Flaky {
        succeed_on: 4,
        calls: AtomicU32::new(0),
    });
    let (runtime, plugins) = registry(vec![flaky.clone()]).await;
    let workflow = WorkflowSpec::builder("retry")
        .node("busy", "flaky-native")
        .retries(5)
        .option("retry_delay", "100ms")
        .option("retry_jitter", 0.0)
        .build()
        .unwrap();
    let delays = Arc::new(Delays::default());
    let engine =
        WorkflowEngine::new(runtime, Arc::new(MemoryStore::new())).with_sleeper(delays.clone());
    let report = engine.execute(Arc::new(workflow), plugins).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded);
    assert_eq!(report.nodes[0].attempts, 4);
    assert_eq!(flaky.calls.load(Ordering::SeqCst), 4);
    assert_eq!(
        *delays.0.lock().unwrap(),
        [100, 200, 400].map(Duration::from_millis)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_native_action_is_stopped_by_its_timeout() {
    let hang = Arc::new(Hang::default());
    let (runtime, plugins) = registry(vec![hang.clone()]).await;
    let workflow = WorkflowSpec::builder("hangs")
        .node("stuck", "hang")
        .timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let engine = WorkflowEngine::new(runtime, Arc::new(MemoryStore::new()));
    let report = engine.execute(Arc::new(workflow), plugins).await.unwrap();
    assert_eq!(report.status, RunStatus::Failed);
    let error = report.nodes[0].error.as_ref().unwrap();
    assert_eq!(error.kind, FailureKind::Timeout);
    assert!(hang.dropped.load(Ordering::SeqCst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_native_action_is_stopped_by_cancel() {
    let hang = Arc::new(Hang::default());
    let (runtime, plugins) = registry(vec![hang.clone()]).await;
    let workflow = WorkflowSpec::builder("hangs")
        .node("stuck", "hang")
        .node("after", "echo")
        .depends_on(["stuck"])
        .build()
        .unwrap();
    let engine = WorkflowEngine::new(runtime, Arc::new(MemoryStore::new()));
    let run = engine.start(Arc::new(workflow), plugins).unwrap();
    hang.started.notified().await;
    // While it runs, its status by id is the live one.
    let live = engine.status(run.run_id()).unwrap();
    assert_eq!(live.status, RunStatus::Running);
    assert_eq!(live.nodes[0].1, NodeStatus::Running);
    assert_eq!(live.nodes[1].1, NodeStatus::Pending);
    run.cancel();
    let report = run.wait().await.unwrap();
    assert_eq!(report.status, RunStatus::Cancelled);
    assert_eq!(report.nodes[0].status, NodeStatus::Cancelled);
    assert!(hang.dropped.load(Ordering::SeqCst));
    let stored = engine.status(&report.run_id).unwrap();
    assert_eq!(stored.status, RunStatus::Cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_native_action_fails_its_node_not_the_host() {
    let (runtime, plugins) = registry(vec![Arc::new(Panics)]).await;
    let workflow = WorkflowSpec::builder("panics")
        .node("boom", "panics")
        .retries(3)
        .build()
        .unwrap();
    let engine = WorkflowEngine::new(runtime, Arc::new(MemoryStore::new()));
    let report = engine.execute(Arc::new(workflow), plugins).await.unwrap();
    let node = &report.nodes[0];
    assert_eq!(node.status, NodeStatus::Failed);
    // Not retried: a panic repeats.
    assert_eq!(node.attempts, 1);
    let error = node.error.as_ref().unwrap();
    assert_eq!(error.kind, FailureKind::Trap);
    assert!(
        error.message.contains("the native action broke"),
        "{}",
        error.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_names_are_shared_with_plugins() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let cache = CompileCache::open(runtime.engine(), shared_cache()).unwrap();
    let mut plugins = runtime
        .load_plugins(&[crate::support::example_plugins()], &cache)
        .await
        .unwrap();
    struct FakeEcho;
    impl Action for FakeEcho {
        fn describe(&self) -> PluginInfo {
            info("echo")
        }
        fn run<'a>(
            &'a self,
            _: &'a ActionContext,
            _: &'a str,
        ) -> BoxFuture<'a, Result<String, ActionError>> {
            Box::pin(async { Ok("{}".into()) })
        }
    }
    let error = plugins.add_native(Arc::new(FakeEcho)).unwrap_err();
    assert!(matches!(error, PluginError::NameTaken { .. }));
    assert!(error.to_string().contains("echo.wasm"), "{error}");
    plugins.add_native(Arc::new(Double)).unwrap();
    let error = plugins.add_native(Arc::new(Double)).unwrap_err();
    assert!(
        error.to_string().contains("the native action double 1.0.0"),
        "{error}"
    );
    assert!(plugins.get("double").unwrap().is_native());
    assert!(!plugins.get("echo").unwrap().is_native());
}

/// The workflow of the crash test: a WASM node, a native one that hangs
/// in the first process, a WASM node after it.
fn crash_workflow() -> Arc<WorkflowSpec> {
    Arc::new(
        WorkflowSpec::builder("crash")
            .option("durability", "strict")
            .node("first", "echo")
            .input(json!({ "n": 5 }))
            .node("middle", "hang")
            .depends_on(["first"])
            .node("last", "echo")
            .depends_on(["middle"])
            .build()
            .unwrap(),
    )
}

/// The process the crash test kills: runs the crash workflow on the sled
/// database `FLOW_CRASH_DB` until `middle` hangs. Run only by that test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by a_mixed_run_resumes_after_a_crash, in a process it kills"]
async fn crash_child() {
    let db = std::env::var_os("FLOW_CRASH_DB").expect("FLOW_CRASH_DB");
    let hang = Arc::new(Hang {
        marker: Some(Path::new(&db).with_extension("started")),
        ..Hang::default()
    });
    let (runtime, plugins) = registry(vec![hang]).await;
    let store = Arc::new(SledStore::open(Path::new(&db)).unwrap());
    let engine = WorkflowEngine::new(runtime, store);
    let _ = engine.execute(crash_workflow(), plugins).await;
    unreachable!("the run hangs until the process is killed");
}

/// `middle` resumed: it passes its dependency's output on.
struct Pass;

impl Action for Pass {
    fn describe(&self) -> PluginInfo {
        info("hang")
    }

    fn run<'a>(
        &'a self,
        _: &'a ActionContext,
        request: &'a str,
    ) -> BoxFuture<'a, Result<String, ActionError>> {
        Box::pin(async move {
            let request: Value = serde_json::from_str(request).unwrap();
            Ok(request["deps"]["first"].to_string())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_run_resumes_after_a_crash_and_shows_in_flow_status() {
    let env = Env::empty();
    let db = env.path().join("db");
    let marker = db.with_extension("started");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["native::crash_child", "--exact", "--ignored", "--quiet"])
        .env("FLOW_CRASH_DB", &db)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Until the native node has started (bounded: a minute).
    let mut waited = Duration::ZERO;
    while !marker.exists() {
        assert!(
            waited < Duration::from_secs(60),
            "the child never started `middle`"
        );
        assert!(child.try_wait().unwrap().is_none(), "the child ended early");
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let run_id = std::fs::read_to_string(&marker).unwrap();

    // The command line has no native actions: it says where to resume.
    let refused = env.run(&[
        "resume",
        &run_id,
        "--db",
        db.to_str().unwrap(),
        "--plugins",
        flow_test_artifacts::plugins_dir().to_str().unwrap(),
    ]);
    assert_ne!(refused.code, 0);
    for expected in [
        "is of a workflow built in code",
        "WorkflowEngine::resume",
        "node `middle` uses action `hang`, which no plugin provides",
    ] {
        assert!(
            refused.stderr.contains(expected),
            "{expected} not in {}",
            refused.stderr
        );
    }

    let (runtime, plugins) = registry(vec![Arc::new(Pass)]).await;
    let store = Arc::new(SledStore::open(&db).unwrap());
    let engine = WorkflowEngine::new(runtime, store.clone());
    let before = engine.status(&run_id).unwrap();
    assert_eq!(before.status, RunStatus::Interrupted);
    assert_eq!(before.nodes[0].1, NodeStatus::Succeeded);
    assert_eq!(
        before.nodes[2],
        ("last".to_string(), NodeStatus::Pending, 0)
    );

    let report = engine
        .resume(crash_workflow(), plugins, &run_id, false)
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    let middle = report.nodes.iter().find(|n| n.id == "middle").unwrap();
    assert_eq!(middle.output.as_ref().unwrap().to_string(), r#"{"n":5}"#);
    // `first` did not run again; `middle`'s first attempt was lost.
    let attempts = store.attempts(&run_id, "first").unwrap();
    assert_eq!(attempts.len(), 1);
    let middle = store.attempts(&run_id, "middle").unwrap();
    assert_eq!(middle.len(), 2);
    assert_eq!(middle[0].error.as_ref().unwrap().kind, FailureKind::Lost);
    drop(engine);
    drop(store);

    let status = env
        .run(&["status", &run_id, "--db", db.to_str().unwrap(), "--json"])
        .success()
        .json();
    assert_eq!(status["status"], "succeeded");
    assert_eq!(status["workflow_id"], "crash");
    let middle = crate::support::node(&status, "middle");
    assert_eq!(middle["action"], "hang");
    assert_eq!(middle["attempts"], 2);
    let text = env
        .run(&["status", &run_id, "--db", db.to_str().unwrap()])
        .success();
    assert!(text.stdout.contains("middle"), "{}", text.stdout);
}
