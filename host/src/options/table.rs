//! Every option, defined once: [`OPTIONS`].

use std::ops::Range;
use std::time::Duration;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeValue, ValueDeserializer};

use super::values::{
    Factor, Fraction, Fuel, HumanDuration, LogFilter, Memory, PositiveDuration, Size,
};
use super::{Concurrency, Durability, NodeOptions, Schedule, WorkflowOptions};
use crate::runtime::{FileGrant, SecretMode, valid_secret_name};

/// Where an option goes in a workflow file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// In `[workflow]`: for the whole run.
    Workflow,
    /// In `[defaults]` (every node) and in each node's table.
    Node,
}

/// One option of a workflow: how it is written, what it takes, what it
/// means.
pub struct OptionSpec {
    /// Its key in the workflow file; its command-line flag is the key with
    /// dashes (`retry_delay` -> `--retry-delay`).
    pub key: &'static str,
    /// Where it goes.
    pub scope: Scope,
    /// The values it takes, for people.
    pub values: &'static str,
    /// Its default, as the workflow file would write it.
    pub default: &'static str,
    /// What it does, in a line.
    pub doc: &'static str,
    /// The name of the flag's value when the option can be given on the
    /// command line (it then applies to every node).
    pub flag: Option<&'static str>,
    apply: Apply,
}

enum Apply {
    Workflow(fn(&mut WorkflowOptions, OptionValue<'_>) -> Result<(), OptionError>),
    Node(fn(&mut NodeOptions, OptionValue<'_>) -> Result<(), OptionError>),
}

impl std::fmt::Debug for OptionSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OptionSpec")
            .field("key", &self.key)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// A value given for an option.
#[derive(Debug, Clone)]
pub enum OptionValue<'a> {
    /// From the workflow file, with its place in the file.
    Toml(Spanned<DeValue<'a>>),
    /// From the command line (or stored with a run), as text: `30s`, `4`,
    /// `auto`. Text that reads as a TOML number or boolean is one.
    Text(&'a str),
}

/// Why a value does not fit its option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct OptionError {
    /// What is wrong.
    pub message: String,
    /// Where, for a value from a file.
    pub span: Option<Range<usize>>,
}

impl OptionValue<'_> {
    /// The value as a `T`, checked as `T` checks it.
    fn parse<T: DeserializeOwned>(self) -> Result<T, OptionError> {
        let error = |error: toml::de::Error| OptionError {
            message: error.message().to_string(),
            span: error.span(),
        };
        match self {
            OptionValue::Toml(value) => {
                T::deserialize(ValueDeserializer::from(value)).map_err(error)
            }
            OptionValue::Text(text) => {
                // `4`, `0.5`, `true` are TOML already; anything else is a string.
                let literal = match ValueDeserializer::parse(text) {
                    Ok(_) if !text.trim().is_empty() => text.to_string(),
                    _ => serde_json::Value::from(text).to_string(),
                };
                let deserializer = ValueDeserializer::parse(&literal).map_err(error)?;
                T::deserialize(deserializer).map_err(|e| OptionError {
                    message: e.message().to_string(),
                    span: None,
                })
            }
        }
    }
}

impl OptionSpec {
    /// The option called `key` in `scope`.
    pub fn find(scope: Scope, key: &str) -> Option<&'static OptionSpec> {
        OPTIONS
            .iter()
            .find(|option| option.scope == scope && option.key == key)
    }

    /// The keys of the options of `scope`.
    pub fn keys(scope: Scope) -> impl Iterator<Item = &'static str> + Clone {
        OPTIONS
            .iter()
            .filter(move |option| option.scope == scope)
            .map(|option| option.key)
    }

    /// The command-line flag, when there is one: `--retry-delay`.
    pub fn flag_name(&self) -> Option<String> {
        self.flag.map(|_| self.key.replace('_', "-"))
    }

    /// Sets this option of the workflow's options, if it is a workflow
    /// option, from `value`.
    pub fn apply_workflow(
        &self,
        options: &mut WorkflowOptions,
        value: OptionValue<'_>,
    ) -> Result<(), OptionError> {
        match self.apply {
            Apply::Workflow(apply) => apply(options, value),
            Apply::Node(_) => Ok(()),
        }
    }

    /// Sets this option of a node's options, if it is a node option.
    pub fn apply_node(
        &self,
        options: &mut NodeOptions,
        value: OptionValue<'_>,
    ) -> Result<(), OptionError> {
        match self.apply {
            Apply::Node(apply) => apply(options, value),
            Apply::Workflow(_) => Ok(()),
        }
    }

    /// Checks a value without keeping it.
    pub fn check(&self, value: OptionValue<'_>) -> Result<(), OptionError> {
        match self.apply {
            Apply::Workflow(apply) => apply(&mut WorkflowOptions::default(), value),
            Apply::Node(apply) => apply(&mut NodeOptions::default(), value),
        }
    }
}

fn duration_of(value: OptionValue<'_>) -> Result<Duration, OptionError> {
    value.parse::<HumanDuration>().map(|d| d.0)
}

fn positive(value: OptionValue<'_>) -> Result<Duration, OptionError> {
    value.parse::<PositiveDuration>().map(|d| d.0)
}

/// Every option of a workflow: the one definition that the workflow file's
/// parser, the command line, the overrides stored with a run and the
/// documentation read. A test checks that each default parses to the
/// value the option types default to.
pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        key: "max_concurrency",
        scope: Scope::Workflow,
        values: "a number >= 1, or \"auto\" (one per core)",
        default: "\"auto\"",
        doc: "attempts running at once",
        flag: Some("N|auto"),
        apply: Apply::Workflow(|o, v| {
            o.max_concurrency = v.parse::<Concurrency>()?;
            Ok(())
        }),
    },
    OptionSpec {
        key: "schedule",
        scope: Scope::Workflow,
        values: "\"eager\" or \"levels\"",
        default: "\"eager\"",
        doc: "eager: a node starts as soon as its dependencies are done, the longest path ahead first; levels: level by level",
        flag: Some("eager|levels"),
        apply: Apply::Workflow(|o, v| {
            o.schedule = v.parse::<Schedule>()?;
            Ok(())
        }),
    },
    OptionSpec {
        key: "observability",
        scope: Scope::Workflow,
        values: "true or false",
        default: "true",
        doc: "tell observers and metrics collectors what happens",
        flag: None,
        apply: Apply::Workflow(|o, v| {
            o.observability = v.parse::<bool>()?;
            Ok(())
        }),
    },
    OptionSpec {
        key: "log_level",
        scope: Scope::Workflow,
        values: "a level or filter directives",
        default: "\"warn,flow::plugin=info\"",
        doc: "log filter for the run, when the command line and the environment give none",
        flag: None,
        apply: Apply::Workflow(|o, v| {
            o.log_level = Some(v.parse::<LogFilter>()?.0);
            Ok(())
        }),
    },
    OptionSpec {
        key: "durability",
        scope: Scope::Workflow,
        values: "\"strict\" or \"batched\"",
        default: "\"batched\"",
        doc: "strict: a state change is on disk before the engine acts on it; batched: writes are flushed together every persistence_interval and at the end",
        flag: Some("strict|batched"),
        apply: Apply::Workflow(|o, v| {
            o.durability = v.parse::<Durability>()?;
            Ok(())
        }),
    },
    OptionSpec {
        key: "persistence_interval",
        scope: Scope::Workflow,
        values: "a duration",
        default: "\"100ms\"",
        doc: "with batched durability, how often to flush",
        flag: Some("DURATION"),
        apply: Apply::Workflow(|o, v| {
            o.persistence_interval = positive(v)?;
            Ok(())
        }),
    },
    OptionSpec {
        key: "retries",
        scope: Scope::Node,
        values: "a number",
        default: "0",
        doc: "attempts after the first, for retryable failures",
        flag: Some("N"),
        apply: Apply::Node(|o, v| {
            o.retry.retries = v.parse::<u32>()?;
            Ok(())
        }),
    },
    OptionSpec {
        key: "retry_delay",
        scope: Scope::Node,
        values: "a duration",
        default: "\"100ms\"",
        doc: "delay before the first retry",
        flag: Some("DURATION"),
        apply: Apply::Node(|o, v| {
            o.retry.delay = duration_of(v)?;
            Ok(())
        }),
    },
    OptionSpec {
        key: "retry_backoff",
        scope: Scope::Node,
        values: "a number >= 1",
        default: "2",
        doc: "factor applied to the delay for each further retry",
        flag: None,
        apply: Apply::Node(|o, v| {
            o.retry.backoff = v.parse::<Factor>()?.0;
            Ok(())
        }),
    },
    OptionSpec {
        key: "retry_max_delay",
        scope: Scope::Node,
        values: "a duration",
        default: "\"30s\"",
        doc: "upper bound on any delay",
        flag: None,
        apply: Apply::Node(|o, v| {
            o.retry.max_delay = duration_of(v)?;
            Ok(())
        }),
    },
    OptionSpec {
        key: "retry_jitter",
        scope: Scope::Node,
        values: "a number from 0 to 1",
        default: "0.1",
        doc: "fraction by which each delay is moved at random, either way",
        flag: None,
        apply: Apply::Node(|o, v| {
            o.retry.jitter = v.parse::<Fraction>()?.0;
            Ok(())
        }),
    },
    OptionSpec {
        key: "fuel",
        scope: Scope::Node,
        values: "a number >= 1, or \"unlimited\"",
        default: "10_000_000_000",
        doc: "deterministic CPU budget of an attempt",
        flag: Some("N|unlimited"),
        apply: Apply::Node(|o, v| {
            o.limits.fuel = v.parse::<Fuel>()?.0;
            Ok(())
        }),
    },
    OptionSpec {
        key: "timeout",
        scope: Scope::Node,
        values: "a duration",
        default: "\"60s\"",
        doc: "wall-clock limit of an attempt",
        flag: Some("DURATION"),
        apply: Apply::Node(|o, v| {
            o.limits.timeout = positive(v)?;
            Ok(())
        }),
    },
    OptionSpec {
        key: "memory",
        scope: Scope::Node,
        values: "a size >= 64KiB",
        default: "\"256MiB\"",
        doc: "linear memory of an instance, all memories together",
        flag: Some("SIZE"),
        apply: Apply::Node(|o, v| {
            o.limits.memory = v.parse::<Memory>()?.0;
            Ok(())
        }),
    },
    OptionSpec {
        key: "max_output",
        scope: Scope::Node,
        values: "a size",
        default: "\"64MiB\"",
        doc: "largest output an attempt may return",
        flag: Some("SIZE"),
        apply: Apply::Node(|o, v| {
            o.limits.max_output = v.parse::<Size>()?.0;
            Ok(())
        }),
    },
    OptionSpec {
        key: "http",
        scope: Scope::Node,
        values: "a list of URLs, or tables { url, methods, private }",
        default: "[]",
        doc: "destinations the node may send HTTP requests to (see [Grants](#grants))",
        flag: None,
        apply: Apply::Node(|o, v| {
            o.grants.http = v.parse()?;
            Ok(())
        }),
    },
    OptionSpec {
        key: "files",
        scope: Scope::Node,
        values: "a list of tables { host, guest, write }",
        default: "[]",
        doc: "directories the node may open, read-only unless `write = true`",
        flag: None,
        apply: Apply::Node(|o, v| {
            let files: Vec<FileGrant> = v.parse()?;
            for file in &files {
                file.check().map_err(|message| OptionError {
                    message,
                    span: None,
                })?;
            }
            o.grants.files = files;
            Ok(())
        }),
    },
    OptionSpec {
        key: "env",
        scope: Scope::Node,
        values: "a table of strings",
        default: "{}",
        doc: "environment variables the node sees",
        flag: None,
        apply: Apply::Node(|o, v| {
            o.grants.env = v.parse()?;
            Ok(())
        }),
    },
    OptionSpec {
        key: "secrets",
        scope: Scope::Node,
        values: "a list of names",
        default: "[]",
        doc: "secrets the node sees as environment variables; values come from the host",
        flag: None,
        apply: Apply::Node(|o, v| {
            let names: Vec<String> = v.parse()?;
            if let Some(bad) = names.iter().find(|name| !valid_secret_name(name)) {
                return Err(OptionError {
                    message: format!("\"{bad}\" cannot name a secret: use letters, digits and `_`"),
                    span: None,
                });
            }
            o.grants.secrets = names;
            Ok(())
        }),
    },
    OptionSpec {
        key: "secret_mode",
        scope: Scope::Node,
        values: "\"value\" or \"placeholder\"",
        default: "\"value\"",
        doc: "value: the node sees its secrets; placeholder: it sees tokens the host replaces in headers of granted requests",
        flag: None,
        apply: Apply::Node(|o, v| {
            o.grants.secret_mode = v.parse::<SecretMode>()?;
            Ok(())
        }),
    },
    OptionSpec {
        key: "http_max_requests",
        scope: Scope::Node,
        values: "a number",
        default: "1000",
        doc: "HTTP requests an attempt may send",
        flag: None,
        apply: Apply::Node(|o, v| {
            o.limits.http_max_requests = v.parse::<u64>()?;
            Ok(())
        }),
    },
    OptionSpec {
        key: "http_max_response",
        scope: Scope::Node,
        values: "a size",
        default: "\"16MiB\"",
        doc: "largest HTTP response body an attempt may receive",
        flag: Some("SIZE"),
        apply: Apply::Node(|o, v| {
            o.limits.http_max_response = v.parse::<Size>()?.0 as u64;
            Ok(())
        }),
    },
    OptionSpec {
        key: "continue_on_error",
        scope: Scope::Node,
        values: "true or false",
        default: "false",
        doc: "when the node fails, run its dependents anyway",
        flag: None,
        apply: Apply::Node(|o, v| {
            o.continue_on_error = v.parse::<bool>()?;
            Ok(())
        }),
    },
    OptionSpec {
        key: "run_if_skipped",
        scope: Scope::Node,
        values: "true or false",
        default: "false",
        doc: "when a dependency is skipped by its `when` condition, run the node anyway (without that dependency's output)",
        flag: None,
        apply: Apply::Node(|o, v| {
            o.run_if_skipped = v.parse::<bool>()?;
            Ok(())
        }),
    },
    OptionSpec {
        key: "map_concurrency",
        scope: Scope::Node,
        values: "a number",
        default: "0",
        doc: "for a `map` node, elements that may run at once (0: the workflow's max_concurrency)",
        flag: None,
        apply: Apply::Node(|o, v| {
            o.map_concurrency = v.parse::<u32>()?;
            Ok(())
        }),
    },
    OptionSpec {
        key: "map_tolerance",
        scope: Scope::Node,
        values: "a number",
        default: "0",
        doc: "for a `map` node, elements that may fail without failing it (their outputs are null)",
        flag: None,
        apply: Apply::Node(|o, v| {
            o.map_tolerance = v.parse::<u32>()?;
            Ok(())
        }),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented defaults are the defaults.
    #[test]
    fn each_default_parses_to_the_default_value() {
        for option in OPTIONS {
            let default = option.default.trim_matches('"');
            let mut workflow = WorkflowOptions::default();
            let mut node = NodeOptions::default();
            if option.key == "log_level" {
                // Its default is the command line's filter, not a value.
                continue;
            }
            option
                .apply_workflow(&mut workflow, OptionValue::Text(default))
                .unwrap_or_else(|e| panic!("{}: {e}", option.key));
            option
                .apply_node(&mut node, OptionValue::Text(default))
                .unwrap_or_else(|e| panic!("{}: {e}", option.key));
            assert_eq!(workflow, WorkflowOptions::default(), "{}", option.key);
            assert_eq!(node, NodeOptions::default(), "{}", option.key);
        }
    }

    #[test]
    fn text_values_read_as_toml_scalars_or_strings() {
        let mut node = NodeOptions::default();
        let set = |node: &mut NodeOptions, key: &str, text: &str| {
            OptionSpec::find(Scope::Node, key)
                .unwrap()
                .apply_node(node, OptionValue::Text(text))
        };
        set(&mut node, "retries", "3").unwrap();
        set(&mut node, "timeout", "1500ms").unwrap();
        set(&mut node, "fuel", "unlimited").unwrap();
        set(&mut node, "memory", "64MiB").unwrap();
        assert_eq!(node.retry.retries, 3);
        assert_eq!(node.limits.timeout, Duration::from_millis(1500));
        assert_eq!(node.limits.fuel, None);
        assert_eq!(node.limits.memory, 64 << 20);
        let error = set(&mut node, "timeout", "30").unwrap_err();
        assert_eq!(
            error.message,
            "a duration needs a unit: write \"30s\" or \"30ms\""
        );
        let error = set(&mut node, "memory", "1KiB").unwrap_err();
        assert!(error.message.contains("smallest limit is 64KiB"), "{error}");
    }

    /// The README's table of options says what this one does.
    #[test]
    fn the_readme_lists_every_option_with_its_default_and_flag() {
        let readme = include_str!("../../../README.md");
        for option in OPTIONS {
            let start = format!("| `{}` |", option.key);
            let row = readme
                .lines()
                .find(|line| line.starts_with(&start))
                .unwrap_or_else(|| panic!("the README has no row for `{}`", option.key));
            let scope = match option.scope {
                Scope::Workflow => "| `[workflow]` |",
                Scope::Node => "| `[defaults]`, node |",
            };
            assert!(row.contains(scope), "{row}");
            assert!(row.contains(&format!("| `{}` |", option.default)), "{row}");
            if let Some(flag) = option.flag_name() {
                assert!(row.contains(&format!("| `--{flag}` |")), "{row}");
            }
        }
    }

    #[test]
    fn keys_are_unique_within_a_scope() {
        for option in OPTIONS {
            let same = OPTIONS
                .iter()
                .filter(|o| o.key == option.key && o.scope == option.scope)
                .count();
            assert_eq!(same, 1, "{}", option.key);
        }
    }
}
