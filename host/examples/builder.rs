//! A workflow built in code instead of read from a file: the orders
//! example's first half (an order, its totals, a digest), run on the
//! plugins of a directory and kept in memory.
//!
//! ```text
//! cargo run --release --example builder -- target/plugins
//! ```

use std::sync::Arc;
use std::time::Duration;

use flow_host::{CompileCache, MemoryStore, Runtime, RuntimeConfig, WorkflowEngine, WorkflowSpec};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let plugins_dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/plugins".into());

    // The same checks as a workflow file: a mistake is reported by node.
    let workflow = WorkflowSpec::builder("orders-in-code")
        .description("Totals an order and fingerprints the totals")
        .max_concurrency(4)
        .default_option("retries", 2)
        .node("order", "echo")
        .input(json!({ "id": "A-1042", "amounts": [12.5, 3.0, 7.25, 30.0] }))
        .node("totals", "math")
        .depends_on(["order"])
        .input(json!({ "from": "order/amounts", "ops": ["count", "sum", "mean"] }))
        .timeout(Duration::from_secs(5))
        .node("digest", "hash")
        .depends_on(["totals"])
        .input(json!({ "from": "totals" }))
        .build()?;
    // What a workflow file with the same content would say.
    println!("{}", workflow.to_toml());

    let runtime = Arc::new(Runtime::new(RuntimeConfig::default())?);
    let cache = match CompileCache::default_dir() {
        Some(dir) => CompileCache::open(runtime.engine(), dir)?,
        None => CompileCache::disabled(runtime.engine()),
    };
    let plugins = Arc::new(runtime.load_plugins(&[plugins_dir], &cache).await?);
    let engine = WorkflowEngine::new(runtime, Arc::new(MemoryStore::new()));
    let report = engine.execute(Arc::new(workflow), plugins).await?;

    println!("run {} {}", report.run_id, report.status);
    for node in &report.nodes {
        let output = node.output.as_ref().map(ToString::to_string);
        println!(
            "  {} {}: {}",
            node.id,
            node.status,
            output.unwrap_or_default()
        );
    }
    Ok(())
}
