//! A small HTTP/1.1 server on 127.0.0.1 for the capability tests: it
//! records what it receives and answers by path.
//!
//! - `/json`: a JSON object of about 1 KiB;
//! - `/echo`: the request as JSON (`method`, `path`, `headers`, `body`);
//! - `/redirect?to=URL`: 302 to `URL`;
//! - `/big?bytes=N`: `N` bytes with their length;
//! - `/stream?bytes=N`: `N` bytes, chunked (no length);
//! - `/rates.json`: the example site's file;
//! - `/hang`: reads the request and never answers;
//! - `/gather?n=N`: answers once `N` requests to it wait together (200,
//!   JSON), or after 10 s alone (503);
//! - anything else: 404.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The server; it stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

/// Requests waiting at `/gather`, and how many of them ever arrived.
#[derive(Default)]
struct Gather {
    arrived: Mutex<usize>,
    changed: Condvar,
}

impl TestServer {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen_in, stop_in) = (seen.clone(), stop.clone());
        let gather = Arc::new(Gather::default());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop_in.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (seen, stop, gather) = (seen_in.clone(), stop_in.clone(), gather.clone());
                std::thread::spawn(move || serve(stream, &seen, &stop, &gather));
            }
        });
        Self { addr, seen, stop }
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The grant of this server: `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        self.url("")
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The requests received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(stream: TcpStream, seen: &Mutex<Vec<Seen>>, stop: &AtomicBool, gather: &Gather) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.trim_end().split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let request = Seen {
        method,
        path,
        headers,
        body,
    };
    seen.lock().unwrap().push(request.clone());

    let query = |key: &str| -> Option<String> {
        let (_, query) = request.path.split_once('?')?;
        query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == key).then(|| v.to_string())
        })
    };
    let route = request.path.split('?').next().unwrap_or("").to_string();
    let mut out = stream;
    let respond = |out: &mut TcpStream, status: &str, extra: &str, body: &[u8]| {
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n",
            body.len()
        );
        let _ = out.write_all(head.as_bytes());
        let _ = out.write_all(body);
    };
    match route.as_str() {
        "/json" => {
            let items: Vec<serde_json::Value> = (0..16)
                .map(|i| serde_json::json!({"id": i, "name": format!("item number {i}"), "tags": ["a", "b"]}))
                .collect();
            let body = serde_json::json!({ "items": items }).to_string();
            respond(
                &mut out,
                "200 OK",
                "content-type: application/json\r\n",
                body.as_bytes(),
            );
        }
        "/echo" => {
            let body = serde_json::json!({
                "method": request.method,
                "path": request.path,
                "headers": request.headers.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
                "body": String::from_utf8_lossy(&request.body),
            })
            .to_string();
            respond(
                &mut out,
                "200 OK",
                "content-type: application/json\r\n",
                body.as_bytes(),
            );
        }
        "/redirect" => {
            let to = query("to").unwrap_or_default();
            respond(&mut out, "302 Found", &format!("location: {to}\r\n"), b"");
        }
        "/big" => {
            let bytes = query("bytes").and_then(|b| b.parse().ok()).unwrap_or(0);
            respond(&mut out, "200 OK", "", &vec![b'x'; bytes]);
        }
        "/stream" => {
            let bytes: usize = query("bytes").and_then(|b| b.parse().ok()).unwrap_or(0);
            let _ = out.write_all(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
            );
            let chunk = vec![b'x'; 16 * 1024];
            let mut left = bytes;
            while left > 0 {
                let n = left.min(chunk.len());
                let _ = write!(out, "{n:x}\r\n");
                if out.write_all(&chunk[..n]).is_err() || out.write_all(b"\r\n").is_err() {
                    return;
                }
                left -= n;
            }
            let _ = out.write_all(b"0\r\n\r\n");
        }
        "/rates.json" => {
            let site = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../examples/data/site/rates.json"
            );
            let body = std::fs::read(site).unwrap();
            respond(
                &mut out,
                "200 OK",
                "content-type: application/json\r\n",
                &body,
            );
        }
        "/gather" => {
            let n: usize = query("n").and_then(|n| n.parse().ok()).unwrap_or(1);
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut arrived = gather.arrived.lock().unwrap();
            *arrived += 1;
            gather.changed.notify_all();
            while *arrived < n && Instant::now() < deadline {
                arrived = gather
                    .changed
                    .wait_timeout(arrived, Duration::from_millis(100))
                    .unwrap()
                    .0;
            }
            let together = *arrived >= n;
            drop(arrived);
            if together {
                let body = serde_json::json!({ "together": n }).to_string();
                respond(
                    &mut out,
                    "200 OK",
                    "content-type: application/json\r\n",
                    body.as_bytes(),
                );
            } else {
                respond(&mut out, "503 Service Unavailable", "", b"alone");
            }
        }
        "/hang" => {
            while !stop.load(Ordering::SeqCst) {
                std::thread::park_timeout(std::time::Duration::from_millis(50));
            }
        }
        _ => respond(&mut out, "404 Not Found", "", b"not found"),
    }
}
