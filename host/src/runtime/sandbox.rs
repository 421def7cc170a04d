//! What an action can reach: nothing of the host but a bounded log.
//!
//! Each attempt gets a fresh WASI context with no preopened directories, no
//! environment variables, no arguments, a closed stdin and no network. Its
//! stdout and stderr go to bounded in-memory buffers, and its `log` calls to
//! a bounded list of records; the host writes both to its own log under the
//! attempt's node once the attempt ends.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{LogLevel, flow};
use super::limits::MemoryLimiter;

/// Longest log message kept; longer ones are cut.
pub const MAX_LOG_MESSAGE: usize = 4 * 1024;

/// Store data of one attempt.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) logs: GuestLogs,
}

impl HostState {
    pub(crate) fn new(capture: &Capture, limiter: MemoryLimiter, log_budget: usize) -> Self {
        let wasi = WasiCtx::builder()
            .stdout(capture.stdout.clone())
            .stderr(capture.stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter,
            logs: GuestLogs::new(log_budget),
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl flow::plugin::types::Host for HostState {}

impl flow::plugin::host::Host for HostState {
    fn log(&mut self, level: LogLevel, message: String) {
        self.logs.push(level, message);
    }
}

/// One record an action logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Its severity.
    pub level: LogLevel,
    /// Its text, cut to [`MAX_LOG_MESSAGE`] bytes.
    pub message: String,
}

/// The records of one attempt, up to a byte budget.
#[derive(Debug, Default)]
pub(crate) struct GuestLogs {
    pub(crate) records: Vec<LogRecord>,
    pub(crate) dropped: usize,
    budget: usize,
}

impl GuestLogs {
    fn new(budget: usize) -> Self {
        Self {
            budget,
            ..Self::default()
        }
    }

    fn push(&mut self, level: LogLevel, mut message: String) {
        truncate(&mut message, MAX_LOG_MESSAGE);
        if message.len() > self.budget {
            self.dropped += 1;
            return;
        }
        self.budget -= message.len();
        self.records.push(LogRecord { level, message });
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary, marking the cut.
pub(crate) fn truncate(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(" [cut]");
}

/// The stdout and stderr buffers of one attempt.
#[derive(Debug, Clone)]
pub(crate) struct Capture {
    pub(crate) stdout: BoundedPipe,
    pub(crate) stderr: BoundedPipe,
}

impl Capture {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            stdout: BoundedPipe::new(limit),
            stderr: BoundedPipe::new(limit),
        }
    }
}

/// An output stream that keeps the first `limit` bytes and counts the rest.
///
/// Unlike a pipe that fails when full, writes never fail: an action that
/// prints too much keeps running, and the host records how much was lost.
#[derive(Debug, Clone)]
pub(crate) struct BoundedPipe {
    inner: Arc<Mutex<PipeBuffer>>,
}

#[derive(Debug, Default)]
struct PipeBuffer {
    kept: Vec<u8>,
    dropped: usize,
    limit: usize,
}

impl BoundedPipe {
    fn new(limit: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(PipeBuffer {
                limit,
                ..PipeBuffer::default()
            })),
        }
    }

    fn write(&self, bytes: &[u8]) {
        let mut buffer = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let room = buffer.limit.saturating_sub(buffer.kept.len());
        let kept = bytes.len().min(room);
        buffer.kept.extend_from_slice(&bytes[..kept]);
        buffer.dropped += bytes.len() - kept;
    }

    /// The text kept (lossily decoded) and the number of bytes dropped.
    pub(crate) fn take(&self) -> (String, usize) {
        let mut buffer = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let text = String::from_utf8_lossy(&buffer.kept).into_owned();
        buffer.kept.clear();
        (text, std::mem::take(&mut buffer.dropped))
    }
}

impl IsTerminal for BoundedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for BoundedPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for BoundedPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        BoundedPipe::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for BoundedPipe {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for BoundedPipe {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        bytes: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        BoundedPipe::write(&self, bytes);
        std::task::Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_keeps_the_first_bytes_and_counts_the_rest() {
        let pipe = BoundedPipe::new(5);
        pipe.write(b"abc");
        pipe.write(b"defg");
        assert_eq!(pipe.take(), ("abcde".to_string(), 2));
    }

    #[test]
    fn logs_are_cut_and_bounded() {
        let mut logs = GuestLogs::new(MAX_LOG_MESSAGE + 16);
        logs.push(LogLevel::Info, "é".repeat(MAX_LOG_MESSAGE));
        assert!(logs.records[0].message.ends_with(" [cut]"));
        assert!(logs.records[0].message.len() <= MAX_LOG_MESSAGE + 6);
        logs.push(LogLevel::Info, "x".repeat(20));
        assert_eq!(logs.dropped, 1);
        logs.push(LogLevel::Warn, "short".into());
        assert_eq!(logs.records.len(), 2);
    }
}
