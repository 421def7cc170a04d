//! Middleware: code that wraps every attempt.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::runtime::AttemptReport;

/// The attempt a middleware wraps.
#[derive(Debug, Clone, Copy)]
pub struct AttemptInfo<'a> {
    /// `[workflow] id`.
    pub workflow_id: &'a str,
    /// The run.
    pub run_id: &'a str,
    /// The node.
    pub node_id: &'a str,
    /// Its action.
    pub action: &'a str,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// The JSON the action receives.
    pub input: &'a str,
}

/// Wraps every attempt: it can look at the attempt, time it, change its
/// report, or answer without running it.
///
/// ```
/// use std::time::Instant;
/// use flow_host::exec::{AttemptInfo, Middleware, Next};
/// use flow_host::runtime::AttemptReport;
/// use futures_util::future::BoxFuture;
///
/// struct Timing;
///
/// impl Middleware for Timing {
///     fn around<'a>(&'a self, attempt: AttemptInfo<'a>, next: Next<'a>) -> BoxFuture<'a, AttemptReport> {
///         Box::pin(async move {
///             let started = Instant::now();
///             let report = next.run().await;
///             eprintln!("{} attempt {}: {:?}", attempt.node_id, attempt.attempt, started.elapsed());
///             report
///         })
///     }
/// }
/// ```
pub trait Middleware: Send + Sync {
    /// Runs the attempt, usually by awaiting `next.run()`.
    fn around<'a>(
        &'a self,
        attempt: AttemptInfo<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, AttemptReport>;
}

/// The rest of the chain: the next middleware, or the attempt itself.
pub struct Next<'a> {
    rest: &'a [Arc<dyn Middleware>],
    attempt: AttemptInfo<'a>,
    inner: BoxFuture<'a, AttemptReport>,
}

impl<'a> Next<'a> {
    pub(crate) fn new(
        chain: &'a [Arc<dyn Middleware>],
        attempt: AttemptInfo<'a>,
        inner: BoxFuture<'a, AttemptReport>,
    ) -> Self {
        Self {
            rest: chain,
            attempt,
            inner,
        }
    }

    /// Runs the rest of the chain.
    pub fn run(self) -> BoxFuture<'a, AttemptReport> {
        match self.rest.split_first() {
            Some((first, rest)) => first.around(
                self.attempt,
                Next {
                    rest,
                    attempt: self.attempt,
                    inner: self.inner,
                },
            ),
            None => self.inner,
        }
    }
}
