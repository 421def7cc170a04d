//! `flow serve` under load: request latencies with 32 concurrent clients
//! over a database of 100,000 runs, runs started over the API per second,
//! and the server's memory at rest.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flow_host::{SledStore, WorkflowStore};

const CLIENTS: usize = 32;

/// 100,000 finished runs of 3 nodes (headers only) and one run of 10,000
/// nodes with their records.
fn fill(db: &Path, dir: &Path) {
    let store = SledStore::open(db).unwrap();
    let path = dir.join("three.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    for i in 0..100_000u64 {
        let id = ulid::Ulid::from_parts(1_700_000_000_000 + i, 0).to_string();
        let mut run = super::records::run(&id, "three", 3, &path);
        run.sinks = Some(vec!["c".into()]);
        store.create_run(&run, &text).unwrap();
    }
    super::records::big_run(&store, BIG, &dir.join("big.toml"), 10_000);
}

/// The id of the run of 10,000 nodes.
const BIG: &str = "01BIG0000000000000000000000";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// One GET of `path` alone (the first: what the server keeps is made by
/// it), then `requests` GETs spread over 32 clients; the first's latency
/// and the others', sorted.
fn load(url: &str, path: &str, requests: usize) -> (Duration, Vec<Duration>) {
    let started = Instant::now();
    let response = agent().get(format!("{url}{path}")).call().unwrap();
    assert_eq!(response.status(), 200);
    response
        .into_body()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap();
    let first = started.elapsed();
    let per_client = requests.div_ceil(CLIENTS);
    let handles: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let target = format!("{url}{path}");
            std::thread::spawn(move || {
                let agent = agent();
                let mut times = Vec::with_capacity(per_client);
                for _ in 0..per_client {
                    let started = Instant::now();
                    let mut response = agent.get(&target).call().unwrap();
                    let body = response
                        .body_mut()
                        .with_config()
                        .limit(1 << 30)
                        .read_to_vec()
                        .unwrap();
                    assert_eq!(response.status(), 200, "{}", String::from_utf8_lossy(&body));
                    times.push(started.elapsed());
                }
                times
            })
        })
        .collect();
    let mut all: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort();
    (first, all)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let at = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[at].as_secs_f64() * 1e3
}

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The scenario: its rows.
pub fn api(plugins: &Path, cache: &Path) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join("workflows");
    std::fs::create_dir(&workflows).unwrap();
    std::fs::write(
        workflows.join("three.toml"),
        "[workflow]\nid = \"three\"\n\
         [nodes.a]\naction = \"echo\"\ninput = { x = [1, 2, 3] }\n\
         [nodes.b]\naction = \"math\"\ndepends_on = [\"a\"]\ninput = { from = \"a/x\" }\n\
         [nodes.c]\naction = \"hash\"\ndepends_on = [\"b\"]\ninput = { from = \"b\" }\n",
    )
    .unwrap();
    let db = dir.path().join("db");
    fill(&db, &workflows);

    let mut child = Command::new(env!("CARGO_BIN_EXE_flow"))
        .args(["serve", "--listen", "127.0.0.1:0", "--quiet"])
        .arg("--workflows")
        .arg(&workflows)
        .arg("--plugins")
        .arg(plugins)
        .env("FLOW_DB", &db)
        .env("FLOW_CACHE_DIR", cache)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("flow serve: listening on ")
        .unwrap()
        .to_string();
    let pid = child.id();
    std::thread::sleep(Duration::from_millis(500));
    let idle_mb = rss_mb(pid);

    let list = load(&url, "/api/v1/runs?limit=50", 3_200);
    let deep = load(
        &url,
        &format!(
            "/api/v1/runs?limit=50&cursor={}",
            ulid::Ulid::from_parts(1_700_000_050_000, 0)
        ),
        3_200,
    );
    let detail = load(&url, &format!("/api/v1/runs/{BIG}"), 320);
    let page = load(&url, &format!("/api/v1/runs/{BIG}/nodes?limit=50"), 3_200);
    let states = load(&url, &format!("/api/v1/runs/{BIG}/nodes?limit=10000"), 320);
    let node = load(&url, &format!("/api/v1/runs/{BIG}/nodes/n5000"), 3_200);

    // 1,000 runs started over the API by 32 clients; done when every one
    // has ended.
    let watcher = agent();
    let started = Instant::now();
    let handles: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let url = url.clone();
            std::thread::spawn(move || {
                let agent = agent();
                for _ in 0..(1_000 / CLIENTS + usize::from(client < 1_000 % CLIENTS)) {
                    let response = agent
                        .post(format!("{url}/api/v1/workflows/three/runs"))
                        .send_empty()
                        .unwrap();
                    assert_eq!(response.status(), 201);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    loop {
        let health: serde_json::Value = watcher
            .get(format!("{url}/healthz"))
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        if health["runs_active"] == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = started.elapsed();
    let peak = {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();
    let row = |name: &str, (first, times): &(Duration, Vec<Duration>)| {
        serde_json::json!({
            "name": name, "requests": times.len(),
            "first_ms": first.as_secs_f64() * 1e3,
            "p50_ms": percentile(times, 0.5), "p99_ms": percentile(times, 0.99),
        })
    };
    serde_json::json!({
        "serve": true,
        "rows": [
            row("GET /runs?limit=50 (100,000 runs)", &list),
            row("GET /runs?limit=50&cursor= (middle)", &deep),
            row("GET /runs/{id} (10,000 nodes)", &detail),
            row("GET /runs/{id}/nodes?limit=50 (same run)", &page),
            row("GET /runs/{id}/nodes?limit=10000 (same)", &states),
            row("GET /runs/{id}/nodes/{node} (same)", &node),
        ],
        "runs_per_s": 1_000.0 / elapsed.as_secs_f64(),
        "idle_rss_mb": idle_mb,
        "peak_rss_mb": peak,
    })
}

/// Prints the scenario's rows.
pub fn print(result: &serde_json::Value) {
    println!();
    println!("flow serve, {CLIENTS} concurrent clients:");
    println!(
        "{:<44} {:>9} {:>10} {:>10} {:>10}",
        "request", "count", "first", "p50", "p99"
    );
    for row in result["rows"].as_array().unwrap() {
        println!(
            "{:<44} {:>9} {:>10} {:>10} {:>10}",
            row["name"].as_str().unwrap(),
            row["requests"],
            format!("{:.2} ms", row["first_ms"].as_f64().unwrap()),
            format!("{:.2} ms", row["p50_ms"].as_f64().unwrap()),
            format!("{:.2} ms", row["p99_ms"].as_f64().unwrap()),
        );
    }
    println!(
        "1,000 runs of 3 nodes started over the API: {:.0} runs/s; idle RSS {:.0} MB (100,000 runs stored), peak {:.0} MB",
        result["runs_per_s"].as_f64().unwrap(),
        result["idle_rss_mb"].as_f64().unwrap(),
        result["peak_rss_mb"].as_f64().unwrap(),
    );
}
