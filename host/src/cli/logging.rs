//! Logging to stderr with tracing.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// What is logged when neither `--log-level` nor `RUST_LOG` says: warnings,
/// and what plugins log at info and above.
const DEFAULT_FILTER: &str = "warn,flow::plugin=info";

/// Sets up the subscriber: `--log-level` first, then `RUST_LOG`, then the
/// default.
pub fn init(level: Option<&str>) {
    let filter = level
        .map(String::from)
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| DEFAULT_FILTER.to_string());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|error| {
        eprintln!("warning: ignoring the log filter `{filter}`: {error}");
        EnvFilter::new(DEFAULT_FILTER)
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .with_target(false)
        .compact()
        .init();
}
