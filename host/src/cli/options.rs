//! Command-line options that override a workflow's.

use std::time::Duration;

use clap::Args;
use flow_host::options::{self, Concurrency, Durability, Overrides, Schedule};

/// The options of `flow run` that override the workflow file.
#[derive(Debug, Args)]
#[command(next_help_heading = "Options over the workflow file's (for every node)")]
pub struct OptionArgs {
    /// Attempts running at once: a number, or `auto` for one per core
    #[arg(long, value_name = "N|auto", value_parser = str::parse::<Concurrency>)]
    max_concurrency: Option<Concurrency>,

    /// Order of ready nodes: `eager` (critical path first) or `levels`
    #[arg(long, value_name = "eager|levels", value_parser = str::parse::<Schedule>)]
    schedule: Option<Schedule>,

    /// When state reaches the disk: `strict` (each completion, before
    /// dependents start) or `batched`
    #[arg(long, value_name = "strict|batched", value_parser = str::parse::<Durability>)]
    durability: Option<Durability>,

    /// With batched durability, how often to flush, e.g. `100ms`
    #[arg(long, value_name = "DURATION", value_parser = options::parse_duration)]
    persistence_interval: Option<Duration>,

    /// Retries after a retryable failure
    #[arg(long, value_name = "N")]
    retries: Option<u32>,

    /// Delay before the first retry, e.g. `200ms`
    #[arg(long, value_name = "DURATION", value_parser = options::parse_duration)]
    retry_delay: Option<Duration>,

    /// Fuel per attempt: a number, or `unlimited`
    #[arg(long, value_name = "N|unlimited", value_parser = parse_fuel)]
    fuel: Option<Fuel>,

    /// Wall-clock limit per attempt, e.g. `30s`
    #[arg(long, value_name = "DURATION", value_parser = options::parse_duration)]
    timeout: Option<Duration>,

    /// Memory limit per instance, e.g. `128MiB`
    #[arg(long, value_name = "SIZE", value_parser = options::parse_memory)]
    memory: Option<usize>,
}

/// A fuel budget; `None` is unlimited. (A newtype, since clap reads
/// `Option<Option<_>>` as a flag with an optional value.)
#[derive(Debug, Clone, Copy)]
struct Fuel(Option<u64>);

fn parse_fuel(text: &str) -> Result<Fuel, String> {
    options::parse_fuel(text).map(Fuel)
}

impl OptionArgs {
    /// The overrides these flags make.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            max_concurrency: self.max_concurrency,
            schedule: self.schedule,
            durability: self.durability,
            persistence_interval: self.persistence_interval,
            retries: self.retries,
            retry_delay: self.retry_delay,
            fuel: self.fuel.map(|fuel| fuel.0),
            timeout: self.timeout,
            memory: self.memory,
        }
    }
}
