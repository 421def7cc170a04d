//! The serde model of the TOML file, with the spans used in messages.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Spanned;

use super::Concurrency;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub workflow: Option<Spanned<RawWorkflow>>,
    pub nodes: Option<Spanned<BTreeMap<Spanned<String>, Spanned<RawNode>>>>,
}

/// The `[workflow]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorkflow {
    pub id: Option<Spanned<String>>,
    pub description: Option<String>,
    pub max_concurrency: Option<Spanned<Concurrency>>,
    pub plugins: Option<Spanned<String>>,
}

/// A `[nodes.<id>]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNode {
    pub action: Option<Spanned<String>>,
    pub input: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub depends_on: Vec<Spanned<String>>,
}

impl<'de> Deserialize<'de> for Concurrency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ConcurrencyVisitor;

        impl Visitor<'_> for ConcurrencyVisitor {
            type Value = Concurrency;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a positive integer or \"auto\"")
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Concurrency, E> {
                match usize::try_from(n) {
                    Ok(n) if n >= 1 => Ok(Concurrency::Fixed(n)),
                    _ => Err(E::invalid_value(de::Unexpected::Signed(n), &self)),
                }
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Concurrency, E> {
                match usize::try_from(n) {
                    Ok(n) if n >= 1 => Ok(Concurrency::Fixed(n)),
                    _ => Err(E::invalid_value(de::Unexpected::Unsigned(n), &self)),
                }
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Concurrency, E> {
                match s {
                    "auto" => Ok(Concurrency::Auto),
                    _ => Err(E::invalid_value(de::Unexpected::Str(s), &self)),
                }
            }
        }

        deserializer.deserialize_any(ConcurrencyVisitor)
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
    fn concurrency_accepts_positive_integers_and_auto() {
        #[derive(Deserialize)]
        struct T {
            c: Concurrency,
        }
        let parse = |s: &str| toml::from_str::<T>(s).map(|t| t.c);
        assert_eq!(parse("c = 3").unwrap(), Concurrency::Fixed(3));
        assert_eq!(parse("c = \"auto\"").unwrap(), Concurrency::Auto);
        let zero = parse("c = 0").unwrap_err();
        assert!(
            zero.message()
                .contains("expected a positive integer or \"auto\""),
            "{zero}"
        );
        assert!(parse("c = \"many\"").is_err());
        assert!(parse("c = 1.5").is_err());
    }
}
