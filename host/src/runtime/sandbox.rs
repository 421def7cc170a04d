//! What an action can reach: what its node is granted, and a bounded log.
//!
//! Each attempt gets a fresh WASI context with no arguments, a closed stdin,
//! no sockets, and only the environment variables, secrets, directories
//! and HTTP destinations its node is granted (see [`super::access`]). Its
//! stdout and stderr go to bounded in-memory buffers, and its `log` calls to
//! a bounded list of records; the host writes both to its own log under the
//! attempt's node once the attempt ends.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::filesystem::FsPerms;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::Limits;
use super::access::{Access, HttpAccess, SecretMode};
use super::bindings::{LogLevel, flow};
use super::limits::MemoryLimiter;
use crate::report::JsonText;

/// Longest log message kept; longer ones are cut.
pub const MAX_LOG_MESSAGE: usize = 4 * 1024;

/// Store data of one attempt.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    http_ctx: WasiHttpCtx,
    pub(crate) http: HttpAccess,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) logs: GuestLogs,
    /// The outputs the attempt may ask for, in id order.
    pub(crate) dependencies: Vec<(String, JsonText)>,
}

impl HostState {
    /// The sandbox of one call: stdout and stderr into `capture`, memory
    /// bounded by `limiter`, and what `access` grants: environment
    /// variables, secrets, preopened directories and HTTP destinations.
    pub(crate) fn new(
        capture: &Capture,
        limiter: MemoryLimiter,
        limits: &Limits,
        access: Access<'_>,
        deadline: Instant,
    ) -> Result<Self, String> {
        let grants = access.grants;
        let mut wasi = WasiCtx::builder();
        wasi.stdout(capture.stdout.clone())
            .stderr(capture.stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for (name, value) in &grants.env {
            wasi.env(name, value);
        }
        let mut placeholders = Vec::new();
        for name in &grants.secrets {
            let value = access
                .secrets
                .get(name)
                .ok_or_else(|| format!("the secret {name} is not set on this host"))?;
            match grants.secret_mode {
                SecretMode::Value => {
                    wasi.env(name, &**value);
                }
                SecretMode::Placeholder => {
                    let token = format!(
                        "flow-placeholder-{name}-{:016x}{:016x}",
                        fastrand::u64(..),
                        fastrand::u64(..)
                    );
                    wasi.env(name, &token);
                    placeholders.push((token, value.clone()));
                }
            }
        }
        for file in &grants.files {
            let host = file.host_dir(access.base);
            let perms = if file.write {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            wasi.preopened_dir(&host, &file.guest, perms)
                .map_err(|error| {
                    format!(
                        "cannot open the granted directory {} (for {}): {error}",
                        host.display(),
                        file.guest
                    )
                })?;
        }
        let http = HttpAccess::new(
            &grants.http,
            placeholders,
            limits.http_max_requests,
            limits.http_max_response,
            deadline,
        );
        Ok(Self {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            http_ctx: WasiHttpCtx::new(),
            http,
            limiter,
            logs: GuestLogs::new(limits.log),
            dependencies: Vec::new(),
        })
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

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http_ctx,
            table: &mut self.table,
            hooks: &mut self.http,
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
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            budget,
            ..Self::default()
        }
    }

    pub(crate) fn push(&mut self, level: LogLevel, mut message: String) {
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
