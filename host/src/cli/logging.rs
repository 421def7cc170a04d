//! Logging to stderr with tracing, as text for people or JSON for machines.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use indicatif::ProgressBar;

use clap::ValueEnum;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

use super::UsageError;

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

/// What is logged with `--quiet` when nothing says otherwise.
const QUIET_FILTER: &str = "error";

/// Sets up the subscriber: `--log-level` (or `FLOW_LOG`) first, then
/// `RUST_LOG`, then the default (errors only with `quiet`).
pub fn init(level: Option<&str>, format: LogFormat, quiet: bool) -> Result<LogControl, UsageError> {
    let (explicit, source) = match level {
        Some(level) => (Some(level.to_string()), "--log-level (or FLOW_LOG)"),
        None => (
            std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty()),
            "RUST_LOG",
        ),
    };
    let filter = match &explicit {
        Some(text) => EnvFilter::try_new(expand(text)).map_err(|error| {
            UsageError(format!(
                "the log filter `{text}` given by {source} is invalid: {error}; use a level (error, warn, info, debug, trace) or directives such as `warn,flow::plugin=debug`"
            ))
        })?,
        None if quiet => EnvFilter::new(QUIET_FILTER),
        None => EnvFilter::new(DEFAULT_FILTER),
    };
    let (filter, handle) = reload::Layer::new(filter);
    let output = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(|| LogWriter)
            .with_ansi(std::io::stderr().is_terminal())
            .without_time()
            .with_target(false)
            .compact()
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(|| LogWriter)
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
    Ok(LogControl {
        handle,
        explicit: explicit.is_some() || quiet,
    })
}

/// The live progress line, if one is on screen: log records are written
/// with it out of the way.
static LIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Writes log records around `bar` until [`suspend_for_none`].
pub fn suspend_for(bar: ProgressBar) {
    *LIVE.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar);
}

/// Writes log records straight to stderr again.
pub fn suspend_for_none() {
    *LIVE.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// stderr, clearing the live progress line (if any) for each record.
struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let live = LIVE.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match live {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(bytes))?,
            None => std::io::stderr().write_all(bytes)?,
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
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
