//! The host's check of an action's output: the 1.1 MB document of the
//! `http` plugin's thousand responses, as serde_json writes it (one pass
//! over its bytes) and as a pretty printer writes it (read and written
//! again in compact form).

use std::time::{Duration, Instant};

use flow_host::report::JsonText;

/// Checks timed per run.
const CHECKS: u32 = 10;

/// Compact, as Rust actions write it.
pub fn compact() -> serde_json::Value {
    time(&document().to_string())
}

/// With spaces and new lines, as many JSON libraries write it by default.
pub fn spaced() -> serde_json::Value {
    time(&serde_json::to_string_pretty(&document()).unwrap())
}

/// A thousand responses of 1 KiB of JSON each, with their status and
/// headers.
fn document() -> serde_json::Value {
    let items: Vec<serde_json::Value> = (0..20)
        .map(|i| serde_json::json!({ "id": i, "name": format!("item number {i:02}"), "tags": ["a", "b"] }))
        .collect();
    let response = serde_json::json!({
        "status": 200,
        "headers": { "connection": "close", "content-length": "1031", "content-type": "application/json" },
        "body": { "items": items },
    });
    serde_json::json!({ "responses": vec![response; 1000] })
}

fn time(text: &str) -> serde_json::Value {
    let mut walls: Vec<Duration> = Vec::new();
    for _ in 0..super::runs() {
        // As the engine checks an attempt's output: text it owns.
        let texts: Vec<String> = (0..CHECKS).map(|_| text.to_string()).collect();
        let started = Instant::now();
        for text in texts {
            std::hint::black_box(JsonText::parse_owned(text, 64 << 20).unwrap());
        }
        walls.push(started.elapsed() / CHECKS);
    }
    super::whole_row(1, super::median(&mut walls))
}
