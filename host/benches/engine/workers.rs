//! Several processes on one run through PostgreSQL: the 10,000-node layered
//! workflow run by 1, 2 and 4 `flow worker` processes on a PostgreSQL
//! server of the bench's own (the same workflow on sled, by `flow run`, for
//! comparison), and the time from a worker's death to its attempt running
//! on another worker.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The lease of the takeover row.
const LEASE: Duration = Duration::from_secs(1);

fn flow(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flow"));
    command
        .current_dir(dir)
        .env("FLOW_CACHE_DIR", super::cache_dir())
        .env_remove("FLOW_DB")
        .env_remove("FLOW_LOG")
        .stderr(Stdio::null());
    command
}

/// Starts a `flow worker`; returns once it is ready.
fn worker(dir: &Path, url: &str, concurrency: usize, lease: Option<Duration>) -> Child {
    let mut command = flow(dir);
    command
        .env("FLOW_STORE", url)
        .args(["worker", "--plugins", "plugins", "--max-concurrency"])
        .arg(concurrency.to_string())
        .stdout(Stdio::piped());
    if let Some(lease) = lease {
        command.env("FLOW_STORE_LEASE", format!("{}ms", lease.as_millis()));
    }
    let mut child = command.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.ends_with(": ready\n"), "{line}");
    child
}

/// Worker processes, killed when dropped (also when a scenario panics).
struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The layered workflow of the engine rows, with room for every worker.
fn workflow(dir: &Path) -> std::path::PathBuf {
    let text = super::layered(100, 100, "batched").replacen(
        "[defaults]",
        "plugins = \"plugins\"\nmax_concurrency = 64\n[defaults]",
        1,
    );
    let file = dir.join("layered.toml");
    std::fs::write(&file, text).unwrap();
    file
}

/// `flow run` of the workflow on sled: the row to compare with.
pub async fn sled() -> serde_json::Value {
    let setup = super::setup(true).await;
    let dir = setup.dir.path();
    let file = workflow(dir);
    let started = Instant::now();
    let status = flow(dir)
        .env("FLOW_DB", dir.join("db"))
        .arg("run")
        .arg(&file)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    super::whole_row(10_000, started.elapsed())
}

/// `workers` processes of eight attempts each on one submitted run: the
/// time from the submission to the run's end; the median of three runs,
/// each on a database of its own.
pub async fn postgres(workers: usize) -> serde_json::Value {
    let setup = super::setup(true).await;
    let dir = setup.dir.path();
    let file = workflow(dir);
    let server = flow_test_artifacts::postgres::server();
    let mut walls: Vec<Duration> = (0..3)
        .map(|_| submitted_run(dir, &file, &server.database(), workers))
        .collect();
    walls.sort();
    super::whole_row(10_000, walls[1])
}

/// One run of the workflow by `workers` new worker processes.
fn submitted_run(dir: &Path, file: &Path, url: &str, workers: usize) -> Duration {
    let children = Workers((0..workers).map(|_| worker(dir, url, 8, None)).collect());
    // Read through the store, not by a client process per look, which
    // would take a share of the CPU it measures.
    let store = flow_host::store::PostgresStore::open(url, Default::default()).unwrap();
    let started = Instant::now();
    let output = flow(dir)
        .env("FLOW_STORE", url)
        .args(["run", "--submit", "--json"])
        .arg(file)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let submitted: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let run_id = submitted["run_id"].as_str().unwrap();
    loop {
        let run = flow_host::store::WorkflowStore::run(&store, run_id)
            .unwrap()
            .unwrap();
        if run.status.is_finished() {
            assert_eq!(run.status, flow_host::report::RunStatus::Succeeded);
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let wall = started.elapsed();
    drop(children);
    wall
}

/// A worker is killed while it runs a node (and holds the run); the time
/// until that node's next attempt starts on another worker, with a lease
/// of one second. Reported as the row's median, over one node.
pub async fn takeover() -> serde_json::Value {
    let setup = super::setup(true).await;
    let dir = setup.dir.path();
    let file = dir.join("slow.toml");
    std::fs::write(
        &file,
        "[workflow]\nid = \"slow\"\nplugins = \"plugins\"\ndurability = \"strict\"\n\
         [nodes.slow]\naction = \"misbehave\"\ninput = { mode = \"sleep\", ms = 3000 }\n",
    )
    .unwrap();
    let server = flow_test_artifacts::postgres::server();
    let url = server.database();
    let mut workers = Workers(vec![worker(dir, &url, 1, Some(LEASE))]);
    let status = flow(dir)
        .env("FLOW_STORE", &url)
        .args(["run", "--submit"])
        .arg(&file)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    while server.query(
        &url,
        "SELECT count(*) FROM flow_tasks WHERE state = 'claimed'",
    ) == "0"
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    workers.0.push(worker(dir, &url, 1, Some(LEASE)));
    let first = &mut workers.0[0];
    let _ = first.kill();
    let killed = Instant::now();
    let _ = first.wait();
    // The second worker takes the run over (the first held it) and claims
    // the node's next attempt.
    while server.query(
        &url,
        "SELECT count(*) FROM flow_tasks WHERE state = 'claimed' AND attempt >= 2",
    ) == "0"
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let wall = killed.elapsed();
    drop(workers);
    let mut row = super::whole_row(1, wall);
    row["lease_ms"] = serde_json::json!(LEASE.as_millis());
    row
}
