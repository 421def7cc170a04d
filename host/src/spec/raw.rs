//! The serde model of the TOML file, with the spans used in messages.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::values::{Factor, Fraction, Fuel, HumanDuration, Memory, PositiveDuration};
use crate::options::{Concurrency, Durability, NodeOptions, Schedule};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub workflow: Option<Spanned<RawWorkflow>>,
    pub defaults: Option<RawDefaults>,
    pub nodes: Option<Spanned<BTreeMap<Spanned<String>, Spanned<RawNode>>>>,
}

/// The `[workflow]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorkflow {
    pub id: Option<Spanned<String>>,
    pub description: Option<String>,
    pub plugins: Option<Spanned<String>>,
    pub max_concurrency: Option<Concurrency>,
    pub schedule: Option<Schedule>,
    pub observability: Option<bool>,
    pub log_level: Option<Spanned<String>>,
    pub durability: Option<Durability>,
    pub persistence_interval: Option<PositiveDuration>,
}

/// Declares a table that has the node options as keys, plus `$extra`
/// fields, and how those options apply over inherited ones.
macro_rules! with_node_options {
    ($(#[$meta:meta])* struct $name:ident { $($extra:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(super) struct $name {
            $($extra)*
            pub retries: Option<u32>,
            pub retry_delay: Option<HumanDuration>,
            pub retry_backoff: Option<Factor>,
            pub retry_max_delay: Option<HumanDuration>,
            pub retry_jitter: Option<Fraction>,
            pub fuel: Option<Fuel>,
            pub timeout: Option<PositiveDuration>,
            pub memory: Option<Memory>,
            pub continue_on_error: Option<bool>,
        }

        impl $name {
            /// Sets the options this table gives, keeps the others.
            pub fn apply(&self, options: &mut NodeOptions) {
                let retry = &mut options.retry;
                let limits = &mut options.limits;
                if let Some(n) = self.retries { retry.retries = n; }
                if let Some(d) = self.retry_delay { retry.delay = d.0; }
                if let Some(f) = self.retry_backoff { retry.backoff = f.0; }
                if let Some(d) = self.retry_max_delay { retry.max_delay = d.0; }
                if let Some(f) = self.retry_jitter { retry.jitter = f.0; }
                if let Some(f) = self.fuel { limits.fuel = f.0; }
                if let Some(d) = self.timeout { limits.timeout = d.0; }
                if let Some(m) = self.memory { limits.memory = m.0; }
                if let Some(c) = self.continue_on_error { options.continue_on_error = c; }
            }
        }
    };
}

with_node_options! {
    /// The `[defaults]` table: node options for every node.
    struct RawDefaults {}
}

with_node_options! {
    /// A `[nodes.<id>]` table.
    struct RawNode {
        pub action: Option<Spanned<String>>,
        pub input: Option<Spanned<toml::Value>>,
        #[serde(default)]
        pub depends_on: Vec<Spanned<String>>,
    }
}

/// Converts a TOML value to JSON. Datetimes become RFC 3339 strings; NaN and
/// infinities, which JSON cannot carry, are refused.
pub(super) fn to_json(value: &toml::Value) -> Result<serde_json::Value, &'static str> {
    use serde_json::Value as Json;
    Ok(match value {
        toml::Value::String(s) => Json::String(s.clone()),
        toml::Value::Integer(i) => Json::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .ok_or("NaN and infinite numbers cannot be passed as JSON")?,
        toml::Value::Boolean(b) => Json::Bool(*b),
        toml::Value::Datetime(d) => Json::String(d.to_string()),
        toml::Value::Array(items) => {
            Json::Array(items.iter().map(to_json).collect::<Result<_, _>>()?)
        }
        toml::Value::Table(table) => Json::Object(
            table
                .iter()
                .map(|(k, v)| Ok::<_, &'static str>((k.clone(), to_json(v)?)))
                .collect::<Result<_, _>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_values_become_json() {
        let value: toml::Value = toml::from_str(
            "a = 1\nb = 2.5\nc = [true, \"x\"]\nd = 1979-05-27T07:32:00Z\n[e]\nf = {}",
        )
        .unwrap();
        assert_eq!(
            to_json(&value).unwrap(),
            serde_json::json!({"a": 1, "b": 2.5, "c": [true, "x"], "d": "1979-05-27T07:32:00Z", "e": {"f": {}}})
        );
    }

    #[test]
    fn nan_is_refused() {
        let value: toml::Value = toml::from_str("a = nan").unwrap();
        assert!(to_json(&value).is_err());
    }

    #[test]
    fn node_options_apply_over_inherited_ones() {
        let defaults: RawDefaults = toml::from_str("retries = 3\ntimeout = \"5s\"").unwrap();
        let node: RawNode =
            toml::from_str("action = \"x\"\ntimeout = \"1s\"\nmemory = \"32MiB\"").unwrap();
        let mut options = NodeOptions::default();
        defaults.apply(&mut options);
        node.apply(&mut options);
        assert_eq!(options.retry.retries, 3);
        assert_eq!(options.limits.timeout, std::time::Duration::from_secs(1));
        assert_eq!(options.limits.memory, 32 << 20);
    }
}
