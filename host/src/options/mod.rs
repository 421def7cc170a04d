//! The design's WorkflowOptions: how a workflow runs, and how each node's
//! attempts are bounded and retried.
//!
//! A workflow file sets workflow-wide options in `[workflow]`, node options
//! for every node in `[defaults]`, and overrides them per node; options given
//! on the command line ([`Overrides`]) have the last word.
//!
//! Every option is defined once, in [`OPTIONS`]: its key, where it goes,
//! the values it takes, its default and what it means. The workflow file's
//! parser, the command line's flags, the overrides stored with a run and
//! the documentation all read that table.

mod overrides;
mod table;
pub(crate) mod values;

use std::time::Duration;

use crate::runtime::{Grants, Limits};

pub use overrides::Overrides;
pub use table::{OPTIONS, OptionError, OptionSpec, OptionValue, Scope};
pub use values::{MAX_DURATION, parse_duration, parse_positive_duration, parse_size};

/// Options of a whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowOptions {
    /// Upper bound on attempts running at once.
    pub max_concurrency: Concurrency,
    /// The order nodes start in.
    pub schedule: Schedule,
    /// Whether observers and metrics collectors are told what happens.
    pub observability: bool,
    /// Log filter for the run (`info`, `warn,flow::plugin=debug`, ...), used
    /// when the command line and the environment say nothing.
    pub log_level: Option<String>,
    /// When state changes reach the disk.
    pub durability: Durability,
    /// With batched durability, how often writes are flushed.
    pub persistence_interval: Duration,
}

impl Default for WorkflowOptions {
    fn default() -> Self {
        Self {
            max_concurrency: Concurrency::Auto,
            schedule: Schedule::Eager,
            observability: true,
            log_level: None,
            durability: Durability::Batched,
            persistence_interval: Duration::from_millis(100),
        }
    }
}

/// When state changes reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// A node's completion is flushed before the engine acts on it (before
    /// its dependents start); nodes that finish together share one flush.
    Strict,
    /// Writes are flushed as a group every `persistence_interval` and when
    /// the run ends; after a crash, nodes completed since the last flush run
    /// again.
    #[default]
    Batched,
}

impl std::str::FromStr for Durability {
    type Err = String;

    /// `strict` or `batched`.
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "strict" => Ok(Durability::Strict),
            "batched" => Ok(Durability::Batched),
            _ => Err(format!(
                "expected \"strict\" or \"batched\", not \"{text}\""
            )),
        }
    }
}

/// How many attempts may run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Concurrency {
    /// As many as the machine has cores.
    #[default]
    Auto,
    /// At most this many (at least 1).
    Fixed(usize),
}

impl Concurrency {
    /// The number of workers this setting means on this machine.
    pub fn workers(self) -> usize {
        match self {
            Concurrency::Fixed(n) => n.max(1),
            Concurrency::Auto => std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// The order in which ready nodes start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Schedule {
    /// A node starts as soon as its dependencies are done; among ready
    /// nodes, the one with the longest path still ahead of it goes first.
    #[default]
    Eager,
    /// Level by level: a level starts when the previous one has finished.
    Levels,
}

/// Options of one node: how its attempts are bounded and retried.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeOptions {
    /// When and how long to wait before trying again.
    pub retry: RetryPolicy,
    /// The bounds of every attempt.
    pub limits: Limits,
    /// When the node fails, run its dependents anyway: they see its error.
    pub continue_on_error: bool,
    /// When a dependency is skipped by its `when` condition, run anyway.
    pub run_if_skipped: bool,
    /// For a `map` node: elements that may run at once (0: as many as the
    /// workflow's `max_concurrency`).
    pub map_concurrency: u32,
    /// For a `map` node: elements that may fail without failing the node
    /// (their places in its output are `null`).
    pub map_tolerance: u32,
    /// What it may reach beyond its input: HTTP destinations, directories,
    /// environment variables and secrets. Nothing by default.
    pub grants: Grants,
}

/// Retries with exponential backoff.
///
/// The delay before retry `n` (1 for the second attempt) is
/// `delay * backoff^(n-1)`, moved at random by up to `jitter` of itself
/// either way, and never more than `max_delay`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts after the first one, for retryable failures.
    pub retries: u32,
    /// Delay before the first retry.
    pub delay: Duration,
    /// Factor applied to the delay for each further retry (at least 1).
    pub backoff: f64,
    /// Upper bound on any delay.
    pub max_delay: Duration,
    /// Fraction (0 to 1) by which a delay is moved at random, so that
    /// many failing nodes do not retry in lockstep.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: 0,
            delay: Duration::from_millis(100),
            backoff: 2.0,
            max_delay: Duration::from_secs(30),
            jitter: 0.1,
        }
    }
}

impl RetryPolicy {
    /// The delay before retry `retry` (1-based). `unit` is a random number
    /// in `[0, 1)`; 0.5 gives the delay without jitter.
    ///
    /// ```
    /// use std::time::Duration;
    /// use flow_host::options::RetryPolicy;
    ///
    /// let policy = RetryPolicy {
    ///     retries: 5,
    ///     delay: Duration::from_millis(100),
    ///     backoff: 2.0,
    ///     max_delay: Duration::from_millis(300),
    ///     jitter: 0.0,
    /// };
    /// let delays: Vec<_> = (1..=3).map(|n| policy.delay_before(n, 0.5).as_millis()).collect();
    /// assert_eq!(delays, [100, 200, 300]);
    /// ```
    pub fn delay_before(&self, retry: u32, unit: f64) -> Duration {
        let exponent = retry.saturating_sub(1).min(1024) as i32;
        let base = self.delay.as_secs_f64() * self.backoff.max(1.0).powi(exponent);
        let spread = self.jitter.clamp(0.0, 1.0) * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        let seconds = (base * (1.0 + spread)).min(self.max_delay.as_secs_f64());
        Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(self.max_delay)
    }
}

impl std::str::FromStr for Concurrency {
    type Err = String;

    /// `auto` or a positive integer.
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "auto" => Ok(Concurrency::Auto),
            _ => match text.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(Concurrency::Fixed(n)),
                _ => Err(format!(
                    "expected a positive integer or \"auto\", not \"{text}\""
                )),
            },
        }
    }
}

impl std::str::FromStr for Schedule {
    type Err = String;

    /// `eager` or `levels`.
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "eager" => Ok(Schedule::Eager),
            "levels" => Ok(Schedule::Levels),
            _ => Err(format!("expected \"eager\" or \"levels\", not \"{text}\"")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(jitter: f64) -> RetryPolicy {
        RetryPolicy {
            retries: 10,
            delay: Duration::from_millis(100),
            backoff: 3.0,
            max_delay: Duration::from_secs(2),
            jitter,
        }
    }

    #[test]
    fn delays_grow_exponentially_up_to_the_cap() {
        let delays: Vec<u128> = (1..=5)
            .map(|n| policy(0.0).delay_before(n, 0.9).as_millis())
            .collect();
        assert_eq!(delays, [100, 300, 900, 2000, 2000]);
    }

    #[test]
    fn jitter_moves_the_delay_both_ways_within_its_fraction() {
        let p = policy(0.2);
        assert_eq!(p.delay_before(1, 0.0).as_millis(), 80);
        assert_eq!(p.delay_before(1, 0.5).as_millis(), 100);
        assert_eq!(p.delay_before(1, 1.0).as_millis(), 120);
        assert_eq!(
            p.delay_before(10, 1.0),
            Duration::from_secs(2),
            "the cap holds after jitter"
        );
    }

    #[test]
    fn huge_retry_numbers_do_not_overflow() {
        assert_eq!(
            policy(0.0).delay_before(u32::MAX, 0.5),
            Duration::from_secs(2)
        );
    }
}
