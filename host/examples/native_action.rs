//! A native action (Rust, in the host's process) beside WebAssembly
//! plugins: `echo` (a plugin) hands an order to `vat` (native), whose
//! result `hash` (a plugin) fingerprints. The run's status is then read
//! back by id, as any other run's.
//!
//! ```text
//! cargo run --release --example native_action -- target/plugins
//! ```
//!
//! A native action gets retries, timeouts, cancellation, records, logs,
//! observers and metrics like a plugin, but no sandbox: no fuel or memory
//! limit, and it reaches whatever the process can.

use std::sync::Arc;

use flow_host::runtime::{Action, ActionContext, ActionError, LogLevel, PluginInfo};
use flow_host::{CompileCache, MemoryStore, Runtime, RuntimeConfig, WorkflowEngine, WorkflowSpec};
use futures_util::future::BoxFuture;
use serde_json::{Value, json};

/// Adds value-added tax to the amounts of its dependency `order`.
struct Vat {
    rate: f64,
}

impl Action for Vat {
    fn describe(&self) -> PluginInfo {
        PluginInfo {
            name: "vat".into(),
            version: "1.0.0".into(),
            description: "Adds VAT to an order's amounts".into(),
        }
    }

    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext,
        request: &'a str,
    ) -> BoxFuture<'a, Result<String, ActionError>> {
        Box::pin(async move {
            let request: Value = serde_json::from_str(request)
                .map_err(|error| ActionError::Fatal(format!("bad request: {error}")))?;
            let amounts = request["deps"]["order"]["amounts"]
                .as_array()
                .ok_or_else(|| ActionError::Fatal("the order has no `amounts`".into()))?;
            let gross: Vec<f64> = amounts
                .iter()
                .filter_map(Value::as_f64)
                .map(|net| (net * (1.0 + self.rate) * 100.0).round() / 100.0)
                .collect();
            ctx.log(
                LogLevel::Info,
                format!("{} amounts at {}% VAT", gross.len(), self.rate * 100.0),
            );
            Ok(json!({ "gross": gross }).to_string())
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let plugins_dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/plugins".into());

    let runtime = Arc::new(Runtime::new(RuntimeConfig::default())?);
    let cache = match CompileCache::default_dir() {
        Some(dir) => CompileCache::open(runtime.engine(), dir)?,
        None => CompileCache::disabled(runtime.engine()),
    };
    let mut plugins = runtime.load_plugins(&[plugins_dir], &cache).await?;
    // Names are shared with the plugins: a clash is an error.
    plugins.add_native(Arc::new(Vat { rate: 0.2 }))?;

    let workflow = WorkflowSpec::builder("vat")
        .node("order", "echo")
        .input(json!({ "id": "A-1042", "amounts": [12.5, 3.0, 7.25] }))
        .node("gross", "vat")
        .depends_on(["order"])
        .retries(2)
        .node("digest", "hash")
        .depends_on(["gross"])
        .input(json!({ "from": "gross" }))
        .build()?;

    let engine = WorkflowEngine::new(runtime, Arc::new(MemoryStore::new()));
    let report = engine
        .execute(Arc::new(workflow), Arc::new(plugins))
        .await?;
    for node in &report.nodes {
        let output = node.output.as_ref().map(ToString::to_string);
        println!(
            "{} {}: {}",
            node.id,
            node.status,
            output.unwrap_or_default()
        );
    }

    // The design's GetStatus: the same answer while it runs (live) and
    // after (from the store).
    let status = engine.status(&report.run_id)?;
    println!("run {} {}", status.run_id, status.status);
    for (node, state, attempts) in &status.nodes {
        println!("  {node}: {state} after {attempts} attempt(s)");
    }
    Ok(())
}
