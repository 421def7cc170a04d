//! `json`: picks a JSON document from the node's dependencies (or its input),
//! keeps the fields asked for and renames some of them.
//!
//! Input fields, all optional:
//!
//! | field    | meaning |
//! |----------|---------|
//! | `from`   | a reference `"node"` or `"node/json/pointer"` into a dependency's output |
//! | `merge`  | a list of references to objects, merged left to right (later keys win) |
//! | `data`   | an inline document |
//! | `select` | keys to keep, in this order; a missing key is an error |
//! | `rename` | a table `{ old = "new" }` applied after `select` |
//!
//! Exactly one of `from`, `merge` and `data` names the document; with none of
//! them, the output of the node's only dependency is used. With `select`,
//! it logs (at debug level) how many fields it kept.
//!
//! ```toml
//! [nodes.customer]
//! action = "json"
//! depends_on = ["order"]
//! input = { from = "order", select = ["customer", "country"], rename = { customer = "name" } }
//! ```

use std::collections::BTreeMap;

use flow_plugin_sdk::serde::Deserialize;
use flow_plugin_sdk::serde_json::{Map, Value};
use flow_plugin_sdk::{ActionError, Context, Deps, Request, export_action, log};

/// The node's `input` table.
#[derive(Debug, Default, Deserialize)]
#[serde(crate = "flow_plugin_sdk::serde", deny_unknown_fields)]
pub struct Params {
    from: Option<String>,
    merge: Option<Vec<String>>,
    data: Option<Value>,
    select: Option<Vec<String>>,
    #[serde(default)]
    rename: BTreeMap<String, String>,
}

/// Builds the document and applies `select` then `rename`.
pub fn transform(_: &Context, request: Request<Params>) -> Result<Value, ActionError> {
    let params = request.input;
    let document = source(&params, &request.deps)?;
    let document = match &params.select {
        Some(keys) => {
            let fields = document.as_object().map_or(0, Map::len);
            let kept = select(document, keys)?;
            log::debug(&format!("kept {} of {fields} fields", keys.len()));
            kept
        }
        None => document,
    };
    if params.rename.is_empty() {
        return Ok(document);
    }
    rename(document, &params.rename)
}

fn source(params: &Params, deps: &Deps) -> Result<Value, ActionError> {
    match (&params.from, &params.merge, &params.data) {
        (Some(reference), None, None) => Ok(deps.resolve(reference)?.clone()),
        (None, Some(references), None) => merge(deps, references),
        (None, None, Some(data)) => Ok(data.clone()),
        (None, None, None) => match deps.iter().collect::<Vec<_>>().as_slice() {
            [(_, only)] => Ok((*only).clone()),
            _ => Err(ActionError::fatal(format!(
                "say which document to use with `from`, `merge` or `data`: the node has {} dependencies",
                deps.len()
            ))),
        },
        _ => Err(ActionError::fatal(
            "use only one of `from`, `merge` and `data`",
        )),
    }
}

fn merge(deps: &Deps, references: &[String]) -> Result<Value, ActionError> {
    let mut merged = Map::new();
    for reference in references {
        match deps.resolve(reference)? {
            Value::Object(object) => {
                merged.extend(object.iter().map(|(k, v)| (k.clone(), v.clone())))
            }
            other => {
                return Err(ActionError::fatal(format!(
                    "`merge` takes objects, but `{reference}` is {}",
                    kind(other)
                )));
            }
        }
    }
    Ok(Value::Object(merged))
}

fn select(document: Value, keys: &[String]) -> Result<Value, ActionError> {
    let mut object = into_object(document, "select")?;
    let mut selected = Map::new();
    for key in keys {
        let value = object
            .remove(key)
            .ok_or_else(|| missing(key, &object, &selected))?;
        selected.insert(key.clone(), value);
    }
    Ok(Value::Object(selected))
}

fn rename(document: Value, renames: &BTreeMap<String, String>) -> Result<Value, ActionError> {
    let object = into_object(document, "rename")?;
    if let Some(old) = renames.keys().find(|old| !object.contains_key(*old)) {
        return Err(missing(old, &object, &Map::new()));
    }
    Ok(Value::Object(
        object
            .into_iter()
            .map(|(key, value)| match renames.get(&key) {
                Some(new) => (new.clone(), value),
                None => (key, value),
            })
            .collect(),
    ))
}

fn into_object(document: Value, op: &str) -> Result<Map<String, Value>, ActionError> {
    match document {
        Value::Object(object) => Ok(object),
        other => Err(ActionError::fatal(format!(
            "`{op}` needs an object, but the document is {}",
            kind(&other)
        ))),
    }
}

fn missing(key: &str, rest: &Map<String, Value>, taken: &Map<String, Value>) -> ActionError {
    let keys: Vec<&str> = taken
        .keys()
        .chain(rest.keys())
        .map(String::as_str)
        .collect();
    ActionError::fatal(format!(
        "the document has no field `{key}`; its fields are: {}",
        keys.join(", ")
    ))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

export_action! {
    name: "json",
    description: "Selects, renames and merges fields of JSON objects",
    run: transform,
}

#[cfg(test)]
mod tests {
    use super::*;
    use flow_plugin_sdk::serde_json::json;

    fn run(request: Value) -> Result<Value, ActionError> {
        let request = Request::from_json(&request.to_string())?;
        transform(&Context::for_tests("json"), request)
    }

    #[test]
    fn select_and_rename_from_a_dependency() {
        let output = run(json!({
            "input": {"from": "order", "select": ["customer", "country"], "rename": {"customer": "name"}},
            "deps": {"order": {"customer": "Ada", "country": "UK", "amounts": [1]}}
        }))
        .unwrap();
        assert_eq!(output, json!({"name": "Ada", "country": "UK"}));
    }

    #[test]
    fn from_takes_a_pointer() {
        let output = run(json!({
            "input": {"from": "order/address"},
            "deps": {"order": {"address": {"city": "Paris"}}}
        }))
        .unwrap();
        assert_eq!(output, json!({"city": "Paris"}));
    }

    #[test]
    fn merge_later_keys_win() {
        let output = run(json!({
            "input": {"merge": ["a", "b"]},
            "deps": {"a": {"x": 1, "y": 1}, "b": {"y": 2}}
        }))
        .unwrap();
        assert_eq!(output, json!({"x": 1, "y": 2}));
    }

    #[test]
    fn only_dependency_is_the_default_source() {
        let output = run(json!({"input": {}, "deps": {"a": [1, 2]}})).unwrap();
        assert_eq!(output, json!([1, 2]));
    }

    #[test]
    fn data_is_an_inline_document() {
        let output = run(json!({"input": {"data": {"k": 1, "j": 2}, "select": ["k"]}})).unwrap();
        assert_eq!(output, json!({"k": 1}));
    }

    #[test]
    fn errors_are_fatal_and_say_what_is_wrong() {
        let missing = run(json!({"input": {"data": {"a": 1}, "select": ["b"]}})).unwrap_err();
        assert!(!missing.is_retryable());
        assert_eq!(
            missing.message(),
            "the document has no field `b`; its fields are: a"
        );

        let ambiguous = run(json!({"input": {}, "deps": {"a": 1, "b": 2}})).unwrap_err();
        assert!(ambiguous.message().starts_with("say which document to use"));

        let not_object = run(json!({"input": {"merge": ["a"]}, "deps": {"a": [1]}})).unwrap_err();
        assert_eq!(
            not_object.message(),
            "`merge` takes objects, but `a` is an array"
        );

        let both = run(json!({"input": {"from": "a", "data": 1}, "deps": {"a": 1}})).unwrap_err();
        assert_eq!(both.message(), "use only one of `from`, `merge` and `data`");

        let unknown = run(json!({"input": {"pick": ["a"]}})).unwrap_err();
        assert!(
            unknown.message().contains("unknown field `pick`"),
            "{unknown}"
        );
    }

    #[test]
    fn rename_of_missing_key_fails() {
        let error = run(json!({"input": {"data": {"a": 1}, "rename": {"b": "c"}}})).unwrap_err();
        assert_eq!(
            error.message(),
            "the document has no field `b`; its fields are: a"
        );
    }
}
