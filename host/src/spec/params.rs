//! Run parameters: the `[params]` table declares them (type, default,
//! description), a run gives them values (`flow run --param key=value`,
//! `--params file.json`, [`WorkflowSpec::set_params`]), and expressions
//! read them as `.run.params`.
//!
//! ```toml
//! [params]
//! region = "eu"                                   # a string, "eu" by default
//! limit = { type = "integer", default = 10 }
//! dry_run = { type = "boolean", description = "only say what would change" }
//! ```
//!
//! A parameter without a default must be given.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use toml::Spanned;
use toml::de::DeValue;

use super::Diagnostic;
use super::document::{shown, to_json, value_as};
use super::validate::suggest;

/// The type of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// Text.
    String,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A list (JSON on the command line).
    Array,
    /// A table (JSON on the command line).
    Object,
}

const TYPES: &[(&str, ParamType)] = &[
    ("string", ParamType::String),
    ("integer", ParamType::Integer),
    ("number", ParamType::Number),
    ("boolean", ParamType::Boolean),
    ("array", ParamType::Array),
    ("object", ParamType::Object),
];

impl ParamType {
    /// Its name in a workflow file.
    pub fn name(self) -> &'static str {
        TYPES
            .iter()
            .find(|(_, kind)| *kind == self)
            .map_or("string", |(name, _)| name)
    }

    fn of(value: &Value) -> Self {
        match value {
            Value::Bool(_) => ParamType::Boolean,
            Value::Number(n) if n.is_i64() || n.is_u64() => ParamType::Integer,
            Value::Number(_) => ParamType::Number,
            Value::Array(_) => ParamType::Array,
            Value::Object(_) => ParamType::Object,
            _ => ParamType::String,
        }
    }

    fn accepts(self, value: &Value) -> bool {
        match (self, value) {
            (ParamType::Number, Value::Number(_)) => true,
            (kind, value) => kind == ParamType::of(value) && !value.is_null(),
        }
    }

    /// A value given as text on the command line, read as this type.
    fn read(self, text: &str) -> Result<Value, String> {
        let parsed = match self {
            ParamType::String => return Ok(Value::String(text.to_string())),
            _ => serde_json::from_str::<Value>(text.trim()).ok(),
        };
        match parsed {
            Some(value) if self.accepts(&value) => Ok(value),
            _ => Err(format!("`{text}` is not {}", self.article())),
        }
    }

    fn article(self) -> &'static str {
        match self {
            ParamType::String => "a string",
            ParamType::Integer => "an integer",
            ParamType::Number => "a number",
            ParamType::Boolean => "true or false",
            ParamType::Array => "a JSON array",
            ParamType::Object => "a JSON object",
        }
    }
}

/// One declared parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Its type.
    pub kind: ParamType,
    /// Its value when none is given; required when `None`.
    pub default: Option<Value>,
    /// What it means, for people.
    pub description: Option<String>,
}

/// The parameters a workflow declares, by name.
pub type Params = BTreeMap<String, Param>;

/// Reads the `[params]` table; problems go to `problems`.
pub(super) fn read(table: &toml::de::DeTable<'_>, problems: &mut Vec<Diagnostic>) -> Params {
    let mut params = Params::new();
    for (key, value) in table.iter() {
        let name = key.get_ref().to_string();
        if let Some(param) = declaration(&name, value, problems) {
            params.insert(name, param);
        }
    }
    params
}

fn declaration(
    name: &str,
    value: &Spanned<DeValue<'_>>,
    problems: &mut Vec<Diagnostic>,
) -> Option<Param> {
    let mut problem = |message: String| {
        problems.push(Diagnostic::new(message, Some(value.span())).help(
            "declare a parameter with its default (region = \"eu\") or as a table: \
                 { type = \"integer\", default = 10, description = \"...\" }",
        ));
        None
    };
    let toml: toml::Value = match value_as(value) {
        Ok(toml) => toml,
        Err(diagnostic) => return problem(diagnostic.message),
    };
    let toml::Value::Table(table) = &toml else {
        return match to_json(&toml) {
            Ok(default) => Some(Param {
                kind: ParamType::of(&default),
                default: Some(default),
                description: None,
            }),
            Err(why) => problem(format!("parameter `{}`: {why}", shown(name))),
        };
    };
    for key in table.keys() {
        if !["type", "default", "description"].contains(&key.as_str()) {
            return problem(format!(
                "parameter `{}` has an unknown key `{}`; {}",
                shown(name),
                shown(key),
                suggest(key, ["type", "default", "description"], "keys")
            ));
        }
    }
    let default = match table.get("default").map(to_json) {
        Some(Ok(value)) => Some(value),
        Some(Err(why)) => return problem(format!("parameter `{}`: {why}", shown(name))),
        None => None,
    };
    let kind = match table.get("type") {
        Some(toml::Value::String(kind)) => match TYPES.iter().find(|(n, _)| n == kind) {
            Some((_, kind)) => *kind,
            None => {
                let names = TYPES.iter().map(|(name, _)| *name);
                return problem(format!(
                    "parameter `{}` has an unknown type `{}`; {}",
                    shown(name),
                    shown(kind),
                    suggest(kind, names, "types")
                ));
            }
        },
        Some(other) => {
            return problem(format!(
                "the type of parameter `{}` must be a string, not {}",
                shown(name),
                other.type_str()
            ));
        }
        None => match &default {
            Some(value) => ParamType::of(value),
            None => ParamType::String,
        },
    };
    if let Some(value) = &default
        && !kind.accepts(value)
    {
        return problem(format!(
            "the default of parameter `{}` is not {}",
            shown(name),
            kind.article()
        ));
    }
    let description = match table.get("description") {
        Some(toml::Value::String(text)) => Some(text.clone()),
        Some(_) => {
            return problem(format!(
                "the description of `{}` must be a string",
                shown(name)
            ));
        }
        None => None,
    };
    Some(Param {
        kind,
        default,
        description,
    })
}

/// Why the values given for a run's parameters do not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.join("; "))]
pub struct ParamError {
    /// Each problem, in a sentence.
    pub problems: Vec<String>,
}

/// The values of every parameter: `given` over the defaults. Text values
/// (from the command line) are read as their parameter's type.
pub(super) fn resolve(
    declared: &Params,
    given: &Map<String, Value>,
) -> Result<Map<String, Value>, ParamError> {
    let mut problems = Vec::new();
    let mut values = Map::new();
    for name in given.keys().filter(|name| !declared.contains_key(*name)) {
        problems.push(match declared.is_empty() {
            true => format!("the workflow has no parameter `{name}`: it declares none ([params])"),
            false => format!(
                "the workflow has no parameter `{name}`; {}",
                suggest(name, declared.keys().map(String::as_str), "parameters")
            ),
        });
    }
    for (name, param) in declared {
        let value = match (given.get(name), &param.default) {
            (Some(Value::String(text)), _) if param.kind != ParamType::String => {
                match param.kind.read(text) {
                    Ok(value) => value,
                    Err(why) => {
                        problems.push(format!("parameter `{name}`: {why}"));
                        continue;
                    }
                }
            }
            (Some(value), _) if param.kind.accepts(value) => value.clone(),
            (Some(_), _) => {
                problems.push(format!(
                    "parameter `{name}` must be {}",
                    param.kind.article()
                ));
                continue;
            }
            (None, Some(default)) => default.clone(),
            (None, None) => {
                problems.push(format!(
                    "parameter `{name}` ({}) is required: give it with --param {name}=VALUE",
                    param.kind.name()
                ));
                continue;
            }
        };
        values.insert(name.clone(), value);
    }
    match problems.is_empty() {
        true => Ok(values),
        false => Err(ParamError { problems }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn declared() -> Params {
        let text = r#"region = "eu"
limit = { type = "integer", default = 10 }
dry_run = { type = "boolean" }
ids = { type = "array", default = [] }
"#;
        let table = toml::de::DeTable::parse(text).unwrap();
        let mut problems = Vec::new();
        let params = read(table.get_ref(), &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        params
    }

    fn given(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn values_are_read_as_their_types_over_the_defaults() {
        let values = resolve(
            &declared(),
            &given(json!({"dry_run": "true", "limit": "25", "ids": "[1,2]"})),
        )
        .unwrap();
        assert_eq!(
            Value::Object(values),
            json!({"region": "eu", "limit": 25, "dry_run": true, "ids": [1, 2]})
        );
    }

    #[test]
    fn every_mistake_is_named() {
        let error = resolve(&declared(), &given(json!({"limt": "5", "ids": "x"}))).unwrap_err();
        let text = error.to_string();
        for expected in [
            "no parameter `limt`; did you mean `limit`?",
            "parameter `ids`: `x` is not a JSON array",
            "parameter `dry_run` (boolean) is required",
        ] {
            assert!(text.contains(expected), "{expected:?} not in {text}");
        }
        let none = resolve(&Params::new(), &given(json!({"a": "1"}))).unwrap_err();
        assert!(none.to_string().contains("it declares none"));
    }

    #[test]
    fn bad_declarations_are_problems() {
        let table = toml::de::DeTable::parse(
            "a = { type = \"int\" }\nb = { type = \"integer\", default = \"x\" }\nc = { typ = 1 }",
        )
        .unwrap();
        let mut problems = Vec::new();
        read(table.get_ref(), &mut problems);
        let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert!(messages[0].contains("unknown type `int`"), "{messages:?}");
        assert!(messages[1].contains("default of parameter `b` is not an integer"));
        assert!(messages[2].contains("unknown key `typ`"));
    }
}
