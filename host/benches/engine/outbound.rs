//! Outbound HTTP: a thousand GETs of a 1 KiB JSON body from a local server,
//! by the `http` plugin (all from one attempt, and one node per request)
//! and by native Rust (hyper, a connection per request, as the host makes
//! them), each in a process of its own and, for their ratio, both by turns
//! in one.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use flow_host::{MemoryStore, RunStatus, WorkflowEngine, WorkflowSpec};

use super::{Keep, engine_scenario_runs, header, median, runs, setup, whole_row};

/// Requests per run.
pub const REQUESTS: usize = 1000;

/// A server on 127.0.0.1 answering every request with the same 1 KiB of
/// JSON, then closing the connection.
pub async fn serve() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let items: Vec<String> = (0..20)
        .map(|i| format!("{{\"id\":{i},\"name\":\"item number {i:02}\",\"tags\":[\"a\",\"b\"]}}"))
        .collect();
    let body = format!("{{\"items\":[{}]}}", items.join(","));
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let response = response.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buffer = [0; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buffer[..n]),
                    }
                }
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

/// The workflow: one `http` node per request, `concurrency` at once.
fn nodes_workflow(addr: SocketAddr, concurrency: usize) -> String {
    let mut text = header("http", &format!("max_concurrency = {concurrency}"));
    text.push_str(&format!("http = [\"http://{addr}\"]\n"));
    for i in 0..REQUESTS {
        text.push_str(&format!(
            "[nodes.get{i}]\naction = \"http\"\ninput = {{ url = \"http://{addr}/items\" }}\n"
        ));
    }
    text
}

/// The workflow: one `http` node sending every request, `in_flight` at
/// once.
fn batch_workflow(addr: SocketAddr, in_flight: usize) -> String {
    let mut text = header("http", "max_concurrency = 1");
    text.push_str(&format!("http = [\"http://{addr}\"]\n"));
    let request = format!("{{ url = \"http://{addr}/items\" }}");
    let requests = vec![request; REQUESTS].join(", ");
    text.push_str(&format!(
        "[nodes.get]\naction = \"http\"\ninput = {{ in_flight = {in_flight}, requests = [{requests}] }}\n"
    ));
    text
}

/// The requests sent by one attempt of the `http` plugin.
pub async fn wasm(in_flight: usize) -> serde_json::Value {
    let addr = serve().await;
    engine_scenario_runs(
        REQUESTS,
        batch_workflow(addr, in_flight),
        true,
        Keep::Memory,
        runs(),
    )
    .await
}

/// The requests made by as many nodes of the `http` plugin.
pub async fn nodes(concurrency: usize) -> serde_json::Value {
    let addr = serve().await;
    engine_scenario_runs(
        REQUESTS,
        nodes_workflow(addr, concurrency),
        true,
        Keep::Memory,
        runs(),
    )
    .await
}

/// The same requests from native Rust.
pub async fn native(concurrency: usize) -> serde_json::Value {
    let addr = serve().await;
    let mut samples = Vec::new();
    for _ in 0..runs() {
        samples.push(native_run(addr, concurrency).await);
    }
    whole_row(REQUESTS, median(&mut samples))
}

/// One run of the native requests, `concurrency` at once.
async fn native_run(addr: SocketAddr, concurrency: usize) -> Duration {
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|task| {
            // Every request once: the first tasks take one more when the
            // count does not divide evenly.
            let count = REQUESTS / concurrency + usize::from(task < REQUESTS % concurrency);
            tokio::spawn(async move {
                for _ in 0..count {
                    get(addr).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    started.elapsed()
}

/// The plugin's requests and the native ones by turns, in one process: a
/// run of each, again and again. The ratio is the median of each pair's,
/// so that the machine's drift over the minutes of a run (large on shared
/// machines) cancels out.
pub async fn by_turns(in_flight: usize) -> serde_json::Value {
    let addr = serve().await;
    let setup = setup(true).await;
    let spec = Arc::new(
        WorkflowSpec::parse(Path::new("bench.toml"), batch_workflow(addr, in_flight)).unwrap(),
    );
    let store = Arc::new(MemoryStore::new());
    let (mut plugin, mut native, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    // Three times the usual runs: each is short, and pairs are what count.
    for _ in 0..runs() * 3 {
        let native_wall = native_run(addr, in_flight).await;
        let engine = WorkflowEngine::new(setup.runtime.clone(), store.clone());
        let started = Instant::now();
        let report = engine
            .execute(spec.clone(), setup.plugins.clone())
            .await
            .unwrap();
        let plugin_wall = started.elapsed();
        assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
        ratios.push(plugin_wall.as_secs_f64() / native_wall.as_secs_f64());
        plugin.push(plugin_wall);
        native.push(native_wall);
    }
    ratios.sort_by(f64::total_cmp);
    let mut row = whole_row(REQUESTS, median(&mut plugin));
    row["ratio"] = ratios[ratios.len() / 2].into();
    row["native_ms"] = (median(&mut native).as_secs_f64() * 1e3).into();
    row
}

/// One GET on a connection of its own, its body read whole.
async fn get(addr: SocketAddr) {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(wasmtime_wasi_http::io::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = http::Request::get("/items")
        .header("host", addr.to_string())
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(body.len() > 1000, "{} bytes", body.len());
}
