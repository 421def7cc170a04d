//! Logging to stderr with tracing, as text for people or JSON for machines.

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

/// What is logged when nothing says otherwise: warnings, and what plugins
/// log at info and above.
const DEFAULT_FILTER: &str = "warn,flow::plugin=info";

/// How log records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One readable line per record (coloured on a terminal).
    Text,
    /// One JSON object per line, with a timestamp, the level, the target,
    /// the message and every field (workflow, run, node, attempt, ...).
    Json,
}

/// Lets a workflow's `log_level` apply when the user gave no filter.
pub struct LogControl {
    handle: reload::Handle<EnvFilter, Registry>,
    explicit: bool,
}

/// Sets up the subscriber: `--log-level` (or `FLOW_LOG`) first, then
/// `RUST_LOG`, then the default.
pub fn init(level: Option<&str>, format: LogFormat) -> LogControl {
    let explicit = level
        .map(String::from)
        .or_else(|| std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty()));
    let filter = match &explicit {
        Some(text) => EnvFilter::try_new(expand(text)).unwrap_or_else(|error| {
            eprintln!("warning: ignoring the log filter `{text}`: {error}");
            EnvFilter::new(DEFAULT_FILTER)
        }),
        None => EnvFilter::new(DEFAULT_FILTER),
    };
    let (filter, handle) = reload::Layer::new(filter);
    let output = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .without_time()
            .with_target(false)
            .compact()
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .init();
    LogControl {
        handle,
        explicit: explicit.is_some(),
    }
}

/// A bare level applies to flow and its plugins; the libraries below stay
/// at warnings (name them to hear more: `info,sled=debug`). Directives
/// pass through unchanged.
fn expand(filter: &str) -> String {
    let level = filter.trim();
    let bare = ["off", "error", "warn", "info", "debug", "trace"]
        .iter()
        .any(|name| name.eq_ignore_ascii_case(level));
    if bare {
        format!("warn,flow={level},flow_host={level}")
    } else {
        filter.to_string()
    }
}

impl LogControl {
    /// Uses the workflow's `log_level`, unless the user chose a filter.
    pub fn workflow_default(&self, level: Option<&str>) {
        let (false, Some(level)) = (self.explicit, level) else {
            return;
        };
        if let Ok(filter) = EnvFilter::try_new(expand(level)) {
            let _ = self.handle.reload(filter);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn a_bare_level_is_for_flow_and_its_plugins() {
        assert_eq!(expand("debug"), "warn,flow=debug,flow_host=debug");
        assert_eq!(expand("INFO"), "warn,flow=INFO,flow_host=INFO");
        assert_eq!(expand("info,sled=debug"), "info,sled=debug");
    }
}
