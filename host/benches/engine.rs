//! `make bench`: the engine's own cost, measured on generated workflows.
//!
//! Each scenario runs in a child process of its own (this binary with
//! `--scenario NAME`), so that its peak memory is its own. The parent prints
//! the machine and one table. Numbers are medians of several runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[path = "engine/checks.rs"]
mod checks;
#[path = "engine/expressions.rs"]
mod expressions;
#[path = "engine/native.rs"]
mod native;
#[path = "engine/outbound.rs"]
mod outbound;
#[path = "engine/records.rs"]
mod records;
#[path = "engine/serve.rs"]
mod serve;
#[path = "engine/workers.rs"]
mod workers;

use flow_host::observe::{Metric, MetricsCollector};
use flow_host::{
    CompileCache, MemoryStore, PluginRegistry, Runtime, RuntimeConfig, SledStore, WorkflowEngine,
    WorkflowSpec, WorkflowStore,
};

/// The allocator of the `flow` binary, so that the rows run in this process
/// measure what `flow` does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs of each scenario; the median is reported. `BENCH_RUNS` overrides.
fn runs() -> usize {
    std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--scenario") {
        let name = &args[at + 1];
        let result = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(scenario(name));
        println!("{}", serde_json::to_string(&result).unwrap());
        return;
    }
    let filter = args.iter().skip(1).find(|a| !a.starts_with('-'));
    println!("{}", machine());
    println!();
    println!(
        "{:<28} {:>6} {:>11} {:>10} {:>11} {:>9} {:>11} {:>8} {:>9}",
        "scenario",
        "nodes",
        "median",
        "per node",
        "engine/node",
        "peak RSS",
        "written/run",
        "fsyncs/node",
        "sandbox"
    );
    // Per node of each row so far, for the sandbox column of native rows.
    let mut per_node = std::collections::HashMap::new();
    for name in SCENARIOS {
        if filter.is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let output = Command::new(std::env::current_exe().unwrap())
            .args(["--scenario", name])
            .output()
            .unwrap();
        if !output.status.success() {
            eprintln!(
                "{name} failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            continue;
        }
        let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        if result["serve"] == true {
            serve::print(&result);
            continue;
        }
        let us = result["per_node_us"].as_f64().unwrap();
        per_node.insert(*name, us);
        // A native row: what the sandbox adds to each attempt of the same
        // workflow run by the WebAssembly no-op.
        let sandbox = native::wasm_row(name)
            .and_then(|wasm| per_node.get(wasm))
            .map_or("-".into(), |wasm| format!("{:.1} µs", wasm - us));
        println!(
            "{:<28} {:>6} {:>11} {:>10} {:>11} {:>9} {:>11} {:>8} {:>9}",
            name,
            result["nodes"].as_u64().unwrap(),
            format!("{:.2} ms", result["median_ms"].as_f64().unwrap()),
            format!("{:.1} µs", result["per_node_us"].as_f64().unwrap()),
            result["engine_per_node_us"]
                .as_f64()
                .map_or("-".into(), |us| format!("{us:.1} µs")),
            format!("{:.0} MB", result["peak_rss_mb"].as_f64().unwrap()),
            result["written_mb"]
                .as_f64()
                .map_or("-".into(), |mb| format!("{mb:.2} MB")),
            result["flushes_per_node"]
                .as_f64()
                .map_or("-".into(), |f| format!("{f:.2}")),
            sandbox,
        );
        if let Some(ratio) = result["ratio"].as_f64() {
            println!(
                "  {:<26} plugin {ratio:.2} times native ({:.2} ms), run by turns",
                "",
                result["native_ms"].as_f64().unwrap_or_default()
            );
        }
    }
}

const SCENARIOS: &[&str] = &[
    "chain-100/memory",
    "chain-100/batched",
    "chain-100/strict",
    "chain-100/native-noop",
    "fanout-1000+join/batched",
    "fanout-1000+join/native-noop",
    "fanout-1000+join/strict",
    "layered-10000/batched",
    "layered-10000/strict",
    "cpu-10MB/native",
    "cpu-10MB/wasm-fuel",
    "cpu-10MB/wasm-no-fuel",
    "slow-branch/eager",
    "slow-branch/levels",
    "flow-run-3-nodes/warm",
    "expressions/path",
    "expressions/template",
    "expressions/input_jq",
    "map-10000/batched",
    "map-10000/strict",
    "output-20MB+200-readers",
    "output-20MB+0-readers",
    "output-check-1MB/compact",
    "output-check-1MB/spaced",
    "chain-100000/batched",
    "chain-100000/resume-last",
    "status-100000/json",
    "status-100000/text",
    "load/rust-echo/cold",
    "load/rust-echo/warm",
    "attempt/rust-echo",
    "attempt/rust-echo+grants",
    "http-1000/native-sequential",
    "http-1000/wasm-sequential",
    "http-1000/native-16",
    "http-1000/wasm-16",
    "http-1000/by-turns-sequential",
    "http-1000/by-turns-16",
    "http-1000/nodes-sequential",
    "http-1000/nodes-16",
    "load/python-words/cold",
    "load/python-fetch-py/after-words",
    "load/python-words/warm",
    "attempt/python-words",
    "load/js-template/cold",
    "load/js-fetch-js/after-template",
    "load/js-template/warm",
    "attempt/js-template",
    "serve/api",
    "workers-10000/sled",
    "workers-10000/postgres-1",
    "workers-10000/postgres-2",
    "workers-10000/postgres-4",
    "workers/takeover-lease-1s",
];

/// The machine, as the table's header says it.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let kb: u64 = text
                .lines()
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some(format!("{:.0} GiB", kb as f64 / 1024.0 / 1024.0))
        })
        .unwrap_or_default();
    format!(
        "machine: {cpu}, {cores} cores, {memory} RAM; {} runs per scenario, median",
        runs()
    )
}

/// Adds up attempt durations, for the engine's share of the time.
#[derive(Default)]
struct AttemptTime(AtomicU64);

impl MetricsCollector for AttemptTime {
    fn record(&self, metric: &Metric<'_>) {
        if let Metric::AttemptFinished { duration, .. } = metric {
            self.0
                .fetch_add(duration.as_nanos() as u64, Ordering::Relaxed);
        }
    }
}

struct Setup {
    dir: tempfile::TempDir,
    runtime: Arc<Runtime>,
    plugins: Arc<PluginRegistry>,
}

async fn setup(fuel_metering: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let plugins_dir = dir.path().join("plugins");
    std::fs::create_dir(&plugins_dir).unwrap();
    for name in ["noop", "cpu", "misbehave"] {
        let file = flow_test_artifacts::test_plugins_dir().join(format!("{name}.wasm"));
        std::fs::copy(&file, plugins_dir.join(format!("{name}.wasm"))).unwrap();
    }
    for name in ["echo", "hash", "http", "json", "math"] {
        let file = flow_test_artifacts::plugins_dir().join(format!("{name}.wasm"));
        std::fs::copy(&file, plugins_dir.join(format!("{name}.wasm"))).unwrap();
    }
    let runtime = Arc::new(
        // Sized as `flow run` sizes it: one instance slot per worker.
        Runtime::new(RuntimeConfig {
            fuel_metering,
            ..RuntimeConfig::for_workers(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            )
        })
        .unwrap(),
    );
    let cache = CompileCache::open(runtime.engine(), cache_dir()).unwrap();
    let mut plugins = runtime.load_plugins(&[&plugins_dir], &cache).await.unwrap();
    plugins.add_native(Arc::new(native::Noop)).unwrap();
    let plugins = Arc::new(plugins);
    Setup {
        dir,
        runtime,
        plugins,
    }
}

fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-compile-cache")
}

async fn scenario(name: &str) -> serde_json::Value {
    match name {
        "chain-100/memory" => {
            engine_scenario_in(100, chain(100, "batched"), true, Keep::Memory).await
        }
        "chain-100/batched" => engine_scenario(100, chain(100, "batched"), true).await,
        "chain-100/strict" => engine_scenario(100, chain(100, "strict"), true).await,
        "chain-100/native-noop" => {
            engine_scenario(100, native::with_native_noop(chain(100, "batched")), true).await
        }
        "fanout-1000+join/native-noop" => {
            let text = native::with_native_noop(fanout(1000, "batched"));
            engine_scenario(1001, text, true).await
        }
        "fanout-1000+join/batched" => engine_scenario(1001, fanout(1000, "batched"), true).await,
        "fanout-1000+join/strict" => engine_scenario(1001, fanout(1000, "strict"), true).await,
        "layered-10000/batched" => {
            engine_scenario(10_000, layered(100, 100, "batched"), true).await
        }
        "layered-10000/strict" => engine_scenario(10_000, layered(100, 100, "strict"), true).await,
        "cpu-10MB/native" => native_cpu(),
        "cpu-10MB/wasm-fuel" => engine_scenario(1, cpu_workflow(), true).await,
        "cpu-10MB/wasm-no-fuel" => engine_scenario(1, cpu_workflow(), false).await,
        "slow-branch/eager" => engine_scenario(12, slow_branch("eager"), true).await,
        "slow-branch/levels" => engine_scenario(12, slow_branch("levels"), true).await,
        "flow-run-3-nodes/warm" => flow_run_warm().await,
        "output-check-1MB/compact" => checks::compact(),
        "output-check-1MB/spaced" => checks::spaced(),
        "expressions/path" => expressions::path(),
        "expressions/template" => expressions::template(),
        "expressions/input_jq" => expressions::program(),
        "map-10000/batched" => engine_scenario(10_000, map(10_000, "batched"), true).await,
        "map-10000/strict" => engine_scenario(10_000, map(10_000, "strict"), true).await,
        "output-20MB+200-readers" => engine_scenario(201, large_output(20 << 20, 200), true).await,
        "output-20MB+0-readers" => engine_scenario(1, large_output(20 << 20, 0), true).await,
        "chain-100000/batched" => {
            let mut text = chain(100_000, "batched");
            text = text.replacen("[defaults]", "max_concurrency = 2\n[defaults]", 1);
            engine_scenario_runs(100_000, text, true, Keep::Sled, 1).await
        }
        "chain-100000/resume-last" => resume_last(100_000).await,
        "status-100000/json" => status_of_big_run(100_000, true).await,
        "status-100000/text" => status_of_big_run(100_000, false).await,
        "serve/api" => {
            let setup = setup(true).await;
            serve::api(&setup.dir.path().join("plugins"), &cache_dir())
        }
        "workers-10000/sled" => workers::sled().await,
        "workers-10000/postgres-1" => workers::postgres(1).await,
        "workers-10000/postgres-2" => workers::postgres(2).await,
        "workers-10000/postgres-4" => workers::postgres(4).await,
        "workers/takeover-lease-1s" => workers::takeover().await,
        "http-1000/native-sequential" => outbound::native(1).await,
        "http-1000/native-16" => outbound::native(16).await,
        "http-1000/wasm-sequential" => outbound::wasm(1).await,
        "http-1000/wasm-16" => outbound::wasm(16).await,
        "http-1000/by-turns-sequential" => outbound::by_turns(1).await,
        "http-1000/by-turns-16" => outbound::by_turns(16).await,
        "http-1000/nodes-sequential" => outbound::nodes(1).await,
        "http-1000/nodes-16" => outbound::nodes(16).await,
        other if other.starts_with("load/") || other.starts_with("attempt/") => {
            language(other).await
        }
        other => panic!("unknown scenario {other}"),
    }
}

/// Where a scenario keeps its runs.
#[derive(Clone, Copy, PartialEq)]
enum Keep {
    Sled,
    Memory,
}

async fn engine_scenario(nodes: usize, text: String, fuel_metering: bool) -> serde_json::Value {
    engine_scenario_in(nodes, text, fuel_metering, Keep::Sled).await
}

async fn engine_scenario_in(
    nodes: usize,
    text: String,
    fuel_metering: bool,
    keep: Keep,
) -> serde_json::Value {
    engine_scenario_runs(nodes, text, fuel_metering, keep, runs()).await
}

async fn engine_scenario_runs(
    nodes: usize,
    text: String,
    fuel_metering: bool,
    keep: Keep,
    runs: usize,
) -> serde_json::Value {
    let setup = setup(fuel_metering).await;
    let spec = Arc::new(WorkflowSpec::parse(Path::new("bench.toml"), text).unwrap());
    let workers = spec.options.max_concurrency.workers();
    let store: Arc<dyn WorkflowStore> = match keep {
        Keep::Sled => Arc::new(SledStore::open(&setup.dir.path().join("db")).unwrap()),
        Keep::Memory => Arc::new(MemoryStore::new()),
    };
    let mut walls = Vec::new();
    let mut engine_share = Vec::new();
    let mut flushes = 0;
    // Peak memory of one run: later runs add their records to the same
    // database.
    let mut first_rss = None;
    for _ in 0..runs {
        let attempts = Arc::new(AttemptTime::default());
        let engine = WorkflowEngine::new(setup.runtime.clone(), store.clone())
            .with_metrics(attempts.clone());
        let started = Instant::now();
        let report = engine
            .execute(spec.clone(), setup.plugins.clone())
            .await
            .unwrap();
        let wall = started.elapsed();
        assert_eq!(
            report.status,
            flow_host::RunStatus::Succeeded,
            "{:?}",
            report.error
        );
        flushes = report.flushes;

        let in_plugins = Duration::from_nanos(attempts.0.load(Ordering::Relaxed));
        // The engine's share: wall time not explained by attempts spread
        // over the workers that could run them.
        let parallel = workers.min(nodes).max(1) as u32;
        engine_share.push(wall.saturating_sub(in_plugins / parallel));
        walls.push(wall);
        if first_rss.is_none() {
            first_rss = Some(peak_rss_mb());
        }
    }
    let share = median(&mut engine_share);
    let median = median(&mut walls);
    serde_json::json!({
        "nodes": nodes,
        "median_ms": median.as_secs_f64() * 1e3,
        "per_node_us": median.as_secs_f64() * 1e6 / nodes as f64,
        "engine_per_node_us": share.as_secs_f64() * 1e6 / nodes as f64,
        "peak_rss_mb": first_rss.unwrap_or_else(peak_rss_mb),
        "written_mb": written_mb() / runs as f64,
        "flushes_per_node": flushes as f64 / nodes as f64,
    })
}

/// A node whose output is `bytes` long, read by `readers` nodes.
fn large_output(bytes: usize, readers: usize) -> String {
    let mut text = header("large", "");
    text.push_str(&format!(
        "[nodes.big]\naction = \"misbehave\"\ninput = {{ mode = \"big\", bytes = {bytes} }}\n"
    ));
    for i in 0..readers {
        text.push_str(&format!(
            "[nodes.r{i}]\naction = \"noop\"\ndepends_on = [\"big\"]\n"
        ));
    }
    text
}

/// Resuming a chain of `n` nodes of which all but the last succeeded: the
/// cost of reading back what a run did, against running it (the
/// `chain-100000/batched` row).
async fn resume_last(n: usize) -> serde_json::Value {
    let setup = setup(true).await;
    let text = chain(n, "batched").replacen("[defaults]", "max_concurrency = 2\n[defaults]", 1);
    let spec = Arc::new(WorkflowSpec::parse(Path::new("bench.toml"), text).unwrap());
    let store = Arc::new(SledStore::open(&setup.dir.path().join("db")).unwrap());
    let engine = WorkflowEngine::new(setup.runtime.clone(), store.clone());
    let report = engine
        .execute(spec.clone(), setup.plugins.clone())
        .await
        .unwrap();
    let mut walls = Vec::new();
    for _ in 0..runs().min(3) {
        // The last node fails, as if the run had stopped there.
        let last = format!("n{}", n - 1);
        let mut node = store
            .nodes(&report.run_id)
            .unwrap()
            .into_iter()
            .find(|node| node.node_id == last)
            .unwrap();
        node.status = flow_host::NodeStatus::Failed;
        node.output = None;
        node.error = Some(flow_host::Failure::new(
            flow_host::FailureKind::Fatal,
            "stopped here for the bench",
        ));
        store.put_node(&report.run_id, &node, None).unwrap();
        let mut run = store.run(&report.run_id).unwrap().unwrap();
        run.status = flow_host::RunStatus::Failed;
        run.failed_nodes = 1;
        store.update_run(&run).unwrap();
        store.flush().unwrap();

        let started = Instant::now();
        let resumed = engine
            .resume(spec.clone(), setup.plugins.clone(), &report.run_id, false)
            .unwrap()
            .wait()
            .await
            .unwrap();
        walls.push(started.elapsed());
        assert_eq!(resumed.status, flow_host::RunStatus::Succeeded);
    }
    whole_row(n, median(&mut walls))
}

/// `flow status` of a stored run of `n` nodes, each with an attempt that
/// logged a line, as a whole process.
async fn status_of_big_run(n: usize, json: bool) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    {
        let store = SledStore::open(&db).unwrap();
        records::big_run(
            &store,
            "01BIGRUN00000000000000000",
            &dir.path().join("big.toml"),
            n,
        );
    }
    let mut walls = Vec::new();
    for _ in 0..runs().min(5) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_flow"));
        command.args(["status", "01BIGRUN"]).env("FLOW_DB", &db);
        if json {
            command.arg("--json");
        }
        let started = Instant::now();
        let status = command
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        walls.push(started.elapsed());
        assert!(status.success());
    }
    whole_row(n, median(&mut walls))
}

fn native_cpu() -> serde_json::Value {
    let mut walls = Vec::new();
    for _ in 0..runs() {
        let started = Instant::now();
        std::hint::black_box(flow_test_plugin_cpu::work(std::hint::black_box(10 << 20)));
        walls.push(started.elapsed());
    }
    whole_row(1, median(&mut walls))
}

/// `flow run` of a three-node workflow with a warm compile cache: the
/// whole process, as a user sees it.
async fn flow_run_warm() -> serde_json::Value {
    let setup = setup(true).await;
    let workflow = setup.dir.path().join("three.toml");
    std::fs::write(
        &workflow,
        "[workflow]\nid = \"three\"\nplugins = \"plugins\"\n\
         [nodes.a]\naction = \"echo\"\ninput = { x = [1, 2, 3] }\n\
         [nodes.b]\naction = \"math\"\ndepends_on = [\"a\"]\ninput = { from = \"a/x\" }\n\
         [nodes.c]\naction = \"hash\"\ndepends_on = [\"b\"]\ninput = { from = \"b\" }\n",
    )
    .unwrap();
    let run = || {
        let status = Command::new(env!("CARGO_BIN_EXE_flow"))
            .arg("run")
            .arg(&workflow)
            .env("FLOW_DB", setup.dir.path().join("db"))
            .env("FLOW_CACHE_DIR", cache_dir())
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    };
    run(); // warms the compile cache for this binary's engine
    let mut walls = Vec::new();
    for _ in 0..runs() {
        let started = Instant::now();
        run();
        walls.push(started.elapsed());
    }
    whole_row(3, median(&mut walls))
}

/// Loading a plugin with an empty compile cache (`cold`), a full one
/// (`warm`), or one holding only what another plugin of its language left
/// (`after-<plugin>`), and one attempt of it (instantiation and call).
async fn language(name: &str) -> serde_json::Value {
    let (plugin, input) = if name.contains("rust-echo") {
        ("echo", r#"{"input":{"greeting":"hi"},"deps":{}}"#)
    } else if name.contains("python-words") {
        (
            "words",
            r#"{"input":{"text":"the flow and the flow"},"deps":{}}"#,
        )
    } else {
        (
            "template",
            r#"{"input":{"template":"Hello {{ name }}","data":{"name":"Ada"}},"deps":{}}"#,
        )
    };
    let file = flow_test_artifacts::plugins_dir().join(format!("{plugin}.wasm"));
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let mut samples = Vec::new();
    if let Some(after) = name.split("/after-").nth(1) {
        // A second plugin of the language, compiled with an empty compile
        // cache but for the functions the first one left there.
        let first = flow_test_artifacts::plugins_dir().join(format!("{after}.wasm"));
        let second = name
            .split('/')
            .nth(1)
            .and_then(|n| n.split_once('-'))
            .unwrap()
            .1;
        let second = flow_test_artifacts::test_plugins_dir().join(format!("{second}.wasm"));
        for _ in 0..runs().min(3) {
            let dir = tempfile::tempdir().unwrap();
            let cache = CompileCache::open(runtime.engine(), dir.path().to_path_buf()).unwrap();
            runtime.load_plugin(&first, &cache).await.unwrap();
            let started = Instant::now();
            runtime.load_plugin(&second, &cache).await.unwrap();
            samples.push(started.elapsed());
        }
    } else if name.ends_with("/cold") {
        // Compiling takes seconds for Python and JavaScript: fewer runs.
        for _ in 0..runs().min(3) {
            let dir = tempfile::tempdir().unwrap();
            let cache = CompileCache::open(runtime.engine(), dir.path().to_path_buf()).unwrap();
            let started = Instant::now();
            runtime.load_plugin(&file, &cache).await.unwrap();
            samples.push(started.elapsed());
        }
    } else {
        let cache = CompileCache::open(runtime.engine(), cache_dir()).unwrap();
        let loaded = runtime.load_plugin(&file, &cache).await.unwrap();
        if name.ends_with("/warm") {
            for _ in 0..runs() {
                let started = Instant::now();
                runtime.load_plugin(&file, &cache).await.unwrap();
                samples.push(started.elapsed());
            }
        } else {
            let limits = flow_host::Limits::default();
            // With grants: an HTTP destination, a directory, variables and
            // a secret, set up for every attempt though none is used.
            let scratch = tempfile::tempdir().unwrap();
            let mut grants = flow_host::runtime::Grants::default();
            if name.ends_with("+grants") {
                grants.http = vec!["https://api.example.com/v1/".parse().unwrap()];
                grants.files = vec![flow_host::runtime::FileGrant {
                    host: scratch.path().to_path_buf(),
                    guest: "/data".into(),
                    write: false,
                }];
                grants.env = [("REGION".to_string(), "eu".to_string())].into();
                grants.secrets = vec!["API_TOKEN".into()];
            }
            let mut secrets = flow_host::runtime::Secrets::new();
            secrets.insert("API_TOKEN", "bench-token");
            for attempt in 0..(runs() * 10) as u32 {
                let call = flow_host::runtime::Invocation {
                    workflow_id: "bench",
                    run_id: "bench",
                    node_id: "n",
                    attempt: attempt + 1,
                    input,
                    dependencies: &[],
                    access: flow_host::runtime::Access {
                        grants: &grants,
                        base: scratch.path(),
                        secrets: &secrets,
                    },
                };
                let report = runtime.run(&loaded, call, &limits).await;
                assert!(report.result.is_ok(), "{:?}", report.result);
                samples.push(report.elapsed);
            }
        }
    }
    whole_row(1, median(&mut samples))
}

/// The row of a scenario timed as a whole: no engine share, no store.
fn whole_row(nodes: usize, median: Duration) -> serde_json::Value {
    serde_json::json!({
        "nodes": nodes,
        "median_ms": median.as_secs_f64() * 1e3,
        "per_node_us": median.as_secs_f64() * 1e6 / nodes as f64,
        "peak_rss_mb": peak_rss_mb(),
    })
}

fn header(id: &str, extra: &str) -> String {
    format!("[workflow]\nid = \"{id}\"\n{extra}\n[defaults]\nretries = 0\n")
}

fn durability(mode: &str) -> String {
    format!("durability = \"{mode}\"")
}

fn chain(n: usize, mode: &str) -> String {
    let mut text = header("chain", &durability(mode));
    for i in 0..n {
        text.push_str(&format!("[nodes.n{i}]\naction = \"noop\"\n"));
        if i > 0 {
            text.push_str(&format!("depends_on = [\"n{}\"]\n", i - 1));
        }
    }
    text
}

/// A list of `n` numbers, and a node mapped over it, 8 elements at once.
fn map(n: usize, mode: &str) -> String {
    let mut text = header("map", &format!("{}\nmax_concurrency = 8", durability(mode)));
    text.push_str(&format!(
        "[nodes.list]\naction = \"noop\"\n\
         [nodes.each]\naction = \"noop\"\ndepends_on = [\"list\"]\n\
         map = '[range({n})]'\nmap_concurrency = 8\n"
    ));
    text
}

fn fanout(n: usize, mode: &str) -> String {
    let mut text = header("fanout", &durability(mode));
    for i in 0..n {
        text.push_str(&format!("[nodes.n{i}]\naction = \"noop\"\n"));
    }
    let all: Vec<String> = (0..n).map(|i| format!("\"n{i}\"")).collect();
    text.push_str(&format!(
        "[nodes.join]\naction = \"noop\"\ndepends_on = [{}]\n",
        all.join(",")
    ));
    text
}

/// `levels` levels of `width` nodes, each with one to three parents in the
/// level above, chosen with a fixed seed.
fn layered(levels: usize, width: usize, mode: &str) -> String {
    let mut rng = fastrand::Rng::with_seed(42);
    let mut text = header("layered", &durability(mode));
    for level in 0..levels {
        for i in 0..width {
            text.push_str(&format!("[nodes.l{level}_{i}]\naction = \"noop\"\n"));
            if level > 0 {
                let mut parents: Vec<usize> =
                    (0..rng.usize(1..=3)).map(|_| rng.usize(0..width)).collect();
                parents.sort_unstable();
                parents.dedup();
                let parents: Vec<String> = parents
                    .iter()
                    .map(|p| format!("\"l{}_{p}\"", level - 1))
                    .collect();
                text.push_str(&format!("depends_on = [{}]\n", parents.join(",")));
            }
        }
    }
    text
}

fn cpu_workflow() -> String {
    format!(
        "{}[nodes.cpu]\naction = \"cpu\"\nfuel = \"unlimited\"\ninput = {{ bytes = {} }}\n",
        header("cpu", ""),
        10 << 20
    )
}

/// A slow branch of three 100 ms nodes beside a fast branch of nine 10 ms
/// nodes, on two workers: the level schedule makes the fast branch wait for
/// the slow one at every level.
fn slow_branch(schedule: &str) -> String {
    let mut text = header(
        "slow",
        &format!("schedule = \"{schedule}\"\nmax_concurrency = 2"),
    );
    for i in 0..3 {
        text.push_str(&format!(
            "[nodes.slow{i}]\naction = \"misbehave\"\ninput = {{ mode = \"sleep\", ms = 100 }}\n"
        ));
        if i > 0 {
            text.push_str(&format!("depends_on = [\"slow{}\"]\n", i - 1));
        }
    }
    for i in 0..9 {
        text.push_str(&format!(
            "[nodes.fast{i}]\naction = \"misbehave\"\ninput = {{ mode = \"sleep\", ms = 10 }}\n"
        ));
        if i > 0 {
            text.push_str(&format!("depends_on = [\"fast{}\"]\n", i - 1));
        }
    }
    text
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// Peak resident memory of this process, from /proc.
fn peak_rss_mb() -> f64 {
    status_kb("VmHWM:") as f64 / 1024.0
}

fn status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Bytes this process caused to be written to storage, from /proc.
fn written_mb() -> f64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("write_bytes:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0) as f64
        / 1e6
}
