//! Logging to the host.
//!
//! Records go to the `flow` host's log, tagged with the workflow, run, node
//! and attempt that wrote them. Anything written to stdout or stderr is
//! captured too, but these functions keep the level.

use crate::__private::bindings::flow::plugin::host;
use crate::__private::bindings::flow::plugin::types::LogLevel;

fn write(level: LogLevel, message: &str) {
    #[cfg(target_family = "wasm")]
    host::log(level, message);
    #[cfg(not(target_family = "wasm"))]
    {
        // Native builds (unit tests of a plugin) have no host: print instead.
        let _ = host::log;
        eprintln!("[{level:?}] {message}");
    }
}

/// Writes a trace-level record.
pub fn trace(message: &str) {
    write(LogLevel::Trace, message);
}

/// Writes a debug-level record.
pub fn debug(message: &str) {
    write(LogLevel::Debug, message);
}

/// Writes an info-level record.
pub fn info(message: &str) {
    write(LogLevel::Info, message);
}

/// Writes a warning.
pub fn warn(message: &str) {
    write(LogLevel::Warn, message);
}

/// Writes an error-level record.
pub fn error(message: &str) {
    write(LogLevel::Error, message);
}
