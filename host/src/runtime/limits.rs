//! The bounds of one attempt: fuel, wall-clock time, memory, output.

use std::time::Duration;

use wasmtime::ResourceLimiter;

/// Limits applied to every attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Fuel (roughly, WebAssembly instructions) an attempt may use; `None`
    /// for no limit. The same input uses the same fuel on any machine.
    pub fuel: Option<u64>,
    /// Wall-clock time an attempt may take.
    pub timeout: Duration,
    /// Bytes of linear memory an instance may hold, all memories together.
    pub memory: usize,
    /// Bytes of stdout, and of stderr, kept per attempt.
    pub output: usize,
    /// Bytes of `log` messages kept per attempt.
    pub log: usize,
    /// Bytes of output an attempt may return.
    pub max_output: usize,
    /// HTTP requests an attempt may send.
    pub http_max_requests: u64,
    /// Bytes of one HTTP response body an attempt may receive.
    pub http_max_response: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: Some(DEFAULT_FUEL),
            timeout: Duration::from_secs(60),
            memory: 256 << 20,
            output: 64 << 10,
            log: 64 << 10,
            max_output: DEFAULT_MAX_OUTPUT,
            http_max_requests: 1000,
            http_max_response: 16 << 20,
        }
    }
}

/// Default fuel per attempt: ten billion units, some seconds of work.
pub const DEFAULT_FUEL: u64 = 10_000_000_000;

/// Default largest output of an attempt: 64 MiB.
pub const DEFAULT_MAX_OUTPUT: usize = 64 << 20;

impl Limits {
    /// The bounds of a plugin's `describe` call: a second and a billion
    /// units of fuel should describe anything, and 128 MiB holds the
    /// initial memory of the largest Python and JavaScript components.
    pub fn describe() -> Self {
        Self {
            fuel: Some(1_000_000_000),
            timeout: Duration::from_secs(10),
            memory: 128 << 20,
            output: 4 << 10,
            log: 4 << 10,
            max_output: 64 << 10,
            http_max_requests: 0,
            http_max_response: 0,
        }
    }
}

/// Caps the total linear memory of an instance.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    limit: usize,
    used: usize,
    /// Set when a growth was refused: the size asked for.
    pub(crate) refused: Option<usize>,
}

impl MemoryLimiter {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            used: 0,
            refused: None,
        }
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }
}

/// The error that ends an attempt whose memory would pass the limit.
#[derive(Debug, thiserror::Error)]
#[error("memory limit exceeded: the plugin asked for {} in all, the limit is {}", mib(*asked), mib(*limit))]
pub struct MemoryLimitExceeded {
    /// Bytes the instance would have held.
    pub asked: usize,
    /// The limit in bytes.
    pub limit: usize,
}

pub(crate) fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.used - current.min(self.used) + desired;
        if total > self.limit {
            self.refused = Some(total);
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                asked: total,
                limit: self.limit,
            }));
        }
        self.used = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memories_count_together() {
        let mut limiter = MemoryLimiter::new(100);
        assert!(limiter.memory_growing(0, 60, None).unwrap());
        assert!(limiter.memory_growing(0, 30, None).unwrap());
        assert!(limiter.memory_growing(30, 40, None).unwrap());
        let error = limiter.memory_growing(60, 70, None).unwrap_err();
        assert!(error.downcast_ref::<MemoryLimitExceeded>().is_some());
        assert_eq!(limiter.refused, Some(110));
    }
}
