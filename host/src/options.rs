//! The design's WorkflowOptions: how a workflow runs, and how each node's
//! attempts are bounded and retried.
//!
//! A workflow file sets workflow-wide options in `[workflow]`, node options
//! for every node in `[defaults]`, and overrides them per node; options given
//! on the command line ([`Overrides`]) have the last word.

use std::time::Duration;

use crate::runtime::Limits;

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

/// Parses a fuel budget: a positive integer, or `unlimited` (`None`).
pub fn parse_fuel(text: &str) -> Result<Option<u64>, String> {
    match text {
        "unlimited" => Ok(None),
        _ => match text.replace('_', "").parse::<u64>() {
            Ok(fuel) if fuel > 0 => Ok(Some(fuel)),
            _ => Err(format!(
                "expected a positive integer or \"unlimited\", not \"{text}\""
            )),
        },
    }
}

/// Smallest memory limit: one WebAssembly page.
pub const MIN_MEMORY: u64 = 64 * 1024;

/// Parses a memory limit: bytes, or a number with a unit (`64MiB`, `1GB`).
pub fn parse_memory(text: &str) -> Result<usize, String> {
    let bytes = text
        .trim()
        .parse::<bytesize::ByteSize>()
        .map_err(|_| {
            format!("invalid size \"{text}\"; write e.g. \"512KiB\", \"64MiB\", \"1GiB\"")
        })?
        .as_u64();
    if bytes < MIN_MEMORY {
        return Err(format!(
            "{bytes} bytes is less than one WebAssembly page; the smallest limit is 64KiB"
        ));
    }
    usize::try_from(bytes).map_err(|_| "the size is too large for this machine".to_string())
}

/// Parses a duration with a unit (`500ms`, `30s`, `2m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|error| {
        format!("invalid duration \"{text}\" ({error}); write a number and a unit, e.g. \"500ms\", \"30s\", \"2m\"")
    })
}

/// Options given on the command line, applied over the workflow file's.
/// Stored with a run, so that a resumed run keeps them.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Overrides {
    /// `--max-concurrency`.
    #[serde(with = "text")]
    pub max_concurrency: Option<Concurrency>,
    /// `--schedule`.
    #[serde(with = "text")]
    pub schedule: Option<Schedule>,
    /// `--durability`.
    #[serde(with = "text")]
    pub durability: Option<Durability>,
    /// `--persistence-interval`.
    #[serde(with = "text")]
    pub persistence_interval: Option<Duration>,
    /// `--retries`.
    pub retries: Option<u32>,
    /// `--retry-delay`.
    #[serde(with = "text")]
    pub retry_delay: Option<Duration>,
    /// `--fuel`; `Some(None)` for no limit.
    #[serde(with = "text")]
    pub fuel: Option<Option<u64>>,
    /// `--timeout`.
    #[serde(with = "text")]
    pub timeout: Option<Duration>,
    /// `--memory`, in bytes.
    pub memory: Option<usize>,
}

/// Options stored as the text the command line takes (`"250ms"`, `"auto"`).
mod text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub trait Text: Sized {
        fn to_text(&self) -> String;
        fn from_text(text: &str) -> Result<Self, String>;
    }

    impl Text for std::time::Duration {
        fn to_text(&self) -> String {
            humantime::format_duration(*self).to_string()
        }
        fn from_text(text: &str) -> Result<Self, String> {
            super::parse_duration(text)
        }
    }

    impl Text for Option<u64> {
        fn to_text(&self) -> String {
            self.map_or("unlimited".to_string(), |fuel| fuel.to_string())
        }
        fn from_text(text: &str) -> Result<Self, String> {
            super::parse_fuel(text)
        }
    }

    macro_rules! parsed {
        ($($ty:ty => |$v:ident| $show:expr),* $(,)?) => {$(
            impl Text for $ty {
                fn to_text(&self) -> String {
                    let $v = self;
                    $show
                }
                fn from_text(text: &str) -> Result<Self, String> {
                    text.parse()
                }
            }
        )*};
    }

    parsed! {
        super::Concurrency => |c| match c {
            super::Concurrency::Auto => "auto".to_string(),
            super::Concurrency::Fixed(n) => n.to_string(),
        },
        super::Schedule => |s| match s {
            super::Schedule::Eager => "eager".to_string(),
            super::Schedule::Levels => "levels".to_string(),
        },
        super::Durability => |d| match d {
            super::Durability::Strict => "strict".to_string(),
            super::Durability::Batched => "batched".to_string(),
        },
    }

    pub fn serialize<T: Text, S: Serializer>(
        value: &Option<T>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => serializer.serialize_some(&value.to_text()),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Text, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<T>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| T::from_text(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

impl Overrides {
    /// These overrides with `newer`'s set values on top.
    pub fn merged_with(&self, newer: &Overrides) -> Overrides {
        Overrides {
            max_concurrency: newer.max_concurrency.or(self.max_concurrency),
            schedule: newer.schedule.or(self.schedule),
            durability: newer.durability.or(self.durability),
            persistence_interval: newer.persistence_interval.or(self.persistence_interval),
            retries: newer.retries.or(self.retries),
            retry_delay: newer.retry_delay.or(self.retry_delay),
            fuel: newer.fuel.or(self.fuel),
            timeout: newer.timeout.or(self.timeout),
            memory: newer.memory.or(self.memory),
        }
    }

    /// Applies the overrides to a workflow's options.
    pub fn apply_workflow(&self, options: &mut WorkflowOptions) {
        if let Some(concurrency) = self.max_concurrency {
            options.max_concurrency = concurrency;
        }
        if let Some(schedule) = self.schedule {
            options.schedule = schedule;
        }
        if let Some(durability) = self.durability {
            options.durability = durability;
        }
        if let Some(interval) = self.persistence_interval {
            options.persistence_interval = interval;
        }
    }

    /// Applies the overrides to a node's options.
    pub fn apply_node(&self, options: &mut NodeOptions) {
        if let Some(retries) = self.retries {
            options.retry.retries = retries;
        }
        if let Some(delay) = self.retry_delay {
            options.retry.delay = delay;
        }
        if let Some(fuel) = self.fuel {
            options.limits.fuel = fuel;
        }
        if let Some(timeout) = self.timeout {
            options.limits.timeout = timeout;
        }
        if let Some(memory) = self.memory {
            options.limits.memory = memory;
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

    #[test]
    fn command_line_values() {
        assert_eq!("auto".parse::<Concurrency>().unwrap(), Concurrency::Auto);
        assert_eq!("3".parse::<Concurrency>().unwrap(), Concurrency::Fixed(3));
        assert!("0".parse::<Concurrency>().is_err());
        assert_eq!("levels".parse::<Schedule>().unwrap(), Schedule::Levels);
        assert_eq!(parse_fuel("1_000").unwrap(), Some(1000));
        assert_eq!(parse_fuel("unlimited").unwrap(), None);
        assert!(parse_fuel("0").is_err());
        assert_eq!(parse_memory("64MiB").unwrap(), 64 << 20);
        assert!(
            parse_memory("1KiB")
                .unwrap_err()
                .contains("smallest limit is 64KiB")
        );
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
    }

    #[test]
    fn overrides_are_stored_as_command_line_text() {
        let overrides = Overrides {
            max_concurrency: Some(Concurrency::Fixed(3)),
            schedule: Some(Schedule::Levels),
            durability: Some(Durability::Strict),
            timeout: Some(Duration::from_millis(1500)),
            fuel: Some(None),
            ..Overrides::default()
        };
        let json = serde_json::to_value(&overrides).unwrap();
        assert_eq!(json["max_concurrency"], "3");
        assert_eq!(json["timeout"], "1s 500ms");
        assert_eq!(json["fuel"], "unlimited");

        let back: Overrides = serde_json::from_value(json).unwrap();
        assert_eq!(back, overrides);
        let empty: Overrides = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, Overrides::default());
    }

    #[test]
    fn overrides_have_the_last_word() {
        let overrides = Overrides {
            retries: Some(7),
            fuel: Some(None),
            timeout: Some(Duration::from_secs(1)),
            ..Overrides::default()
        };
        let mut node = NodeOptions::default();
        overrides.apply_node(&mut node);
        assert_eq!(node.retry.retries, 7);
        assert_eq!(node.limits.fuel, None);
        assert_eq!(node.limits.timeout, Duration::from_secs(1));
        assert_eq!(node.limits.memory, Limits::default().memory);
    }
}
