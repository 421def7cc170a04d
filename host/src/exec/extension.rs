//! The engine's extension points besides observers and metrics: error
//! handling, and the clock used between retries.

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::runtime::AttemptError;

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Try again after this delay.
    Retry {
        /// The delay before the next attempt.
        after: Duration,
    },
    /// Stop: the node fails with this attempt's error.
    GiveUp,
}

/// A failed attempt, as shown to an [`ErrorHandler`].
#[derive(Debug)]
pub struct AttemptFailure<'a> {
    /// The node.
    pub node: &'a str,
    /// Its action.
    pub action: &'a str,
    /// The attempt that failed, from 1.
    pub attempt: u32,
    /// Why it failed.
    pub error: &'a AttemptError,
}

/// Decides about failed attempts, over the node's retry policy.
///
/// The engine computes what the retry policy says (`proposed`: retry after a
/// backoff delay if the error is retryable and retries are left, else give
/// up); the handler returns the decision to follow.
pub trait ErrorHandler: Send + Sync {
    /// Called after every failed attempt.
    fn on_attempt_failed(
        &self,
        failure: &AttemptFailure<'_>,
        proposed: RetryDecision,
    ) -> RetryDecision;
}

/// Waits between attempts. Tests replace it to record delays without
/// waiting.
pub trait Sleeper: Send + Sync {
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// Sleeps on the tokio timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}
