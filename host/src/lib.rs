//! Flow Orchestrator's host: runs TOML workflows whose nodes are sandboxed
//! WebAssembly components.
//!
//! The layers, in the order data flows through them:
//!
//! - [`spec`]: the workflow file, parsed and validated with precise errors,
//!   or built in code ([`WorkflowSpec::builder`]);
//! - [`expr`]: jq expressions of inputs and conditions, compiled by `spec`
//!   and run by `exec`;
//! - [`dag`]: the dependency graph, its levels and cycles;
//! - [`options`]: how a workflow runs and how its attempts are bounded;
//! - [`exec`]: the [`WorkflowEngine`] that schedules nodes, retries them,
//!   records them, and its extension points; the dispatcher and worker
//!   that move attempts to other hosts;
//! - [`report`]: what runs produce and how they stand (statuses, failures,
//!   outputs, reports), shared by every layer;
//! - [`runtime`]: wasmtime, the plugin registry and the sandbox of an attempt;
//! - [`store`]: where runs are kept ([`SledStore`] on disk,
//!   [`PostgresStore`] shared by several hosts, [`MemoryStore`]);
//! - [`observe`]: observers of runs, metrics (Prometheus) and graphs.
//!
//! # Example
//!
//! Run a workflow file with the plugins of a directory, keep the run in
//! memory, print each node as it finishes, and cancel the run on Ctrl-C:
//!
//! ```no_run
//! use std::path::Path;
//! use std::sync::Arc;
//!
//! use flow_host::{
//!     CompileCache, Event, MemoryStore, Observer, Runtime, RuntimeConfig, WorkflowEngine,
//!     WorkflowSpec,
//! };
//!
//! struct Print;
//!
//! impl Observer for Print {
//!     fn on_event(&self, event: &Event<'_>) {
//!         if let Event::NodeFinished { node } = event {
//!             println!("{} {} after {} attempt(s)", node.id, node.status, node.attempts);
//!         }
//!     }
//! }
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let workflow = Arc::new(WorkflowSpec::load(Path::new("examples/orders.toml"))?);
//! let runtime = Arc::new(Runtime::new(RuntimeConfig::default())?);
//! // The `flow` command's cache of compiled plugins: a plugin compiles once,
//! // not on every start (seconds for a Python or JavaScript one).
//! let cache = match CompileCache::default_dir() {
//!     Some(dir) => CompileCache::open(runtime.engine(), dir)?,
//!     None => CompileCache::disabled(runtime.engine()),
//! };
//! let plugins = Arc::new(runtime.load_plugins(&["target/plugins"], &cache).await?);
//!
//! let engine = WorkflowEngine::new(runtime, Arc::new(MemoryStore::new()))
//!     .with_observer(Arc::new(Print));
//! let run = engine.start(workflow, plugins)?;
//! let canceller = run.canceller();
//! tokio::spawn(async move {
//!     let _ = tokio::signal::ctrl_c().await;
//!     canceller.cancel();
//! });
//! let report = run.wait().await?;
//! println!("run {} {}", report.run_id, report.status);
//! for (node, output) in report.outputs() {
//!     println!("{node}: {output}");
//! }
//! # Ok(())
//! # }
//! ```

//!
//! # More examples
//!
//! In `host/examples/`, each run by the test suite:
//!
//! - `builder.rs`: a workflow built in code with [`WorkflowSpec::builder`]
//!   instead of read from a file (`cargo run --release --example builder --
//!   target/plugins`);
//! - `native_action.rs`: an [`Action`](runtime::Action) written in Rust,
//!   registered with [`PluginRegistry::add_native`] beside the plugins, and
//!   a run's status read back with [`WorkflowEngine::status`]
//!   (`cargo run --release --example native_action -- target/plugins`).

pub mod dag;
pub mod exec;
pub mod expr;
pub mod observe;
pub mod options;
pub mod report;
pub mod runtime;
pub mod spec;
pub mod store;

pub use exec::{ExecError, WorkflowEngine};
pub use observe::{Event, Observer};
pub use report::{Failure, FailureKind, NodeReport, NodeStatus, RunReport, RunStatus};
pub use runtime::{CompileCache, Limits, PluginRegistry, Runtime, RuntimeConfig};
pub use spec::{SpecError, WorkflowSpec};
pub use store::{MemoryStore, PostgresStore, SledStore, WorkflowStore};
