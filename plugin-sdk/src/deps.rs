use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::ActionError;

/// What an attempt receives: the node's `input` and its dependencies' outputs.
///
/// `I` is the type the node's `input` table is deserialised into; use
/// `serde_json::Value` to accept anything.
#[derive(Debug, Clone)]
pub struct Request<I = Value> {
    /// The node's `input` table from the workflow file.
    pub input: I,
    /// Outputs of the node's dependencies, by node id, and the errors of
    /// those that failed with `continue_on_error`. Empty for an element of
    /// a `map` node, which takes what it needs of them through its input's
    /// expressions.
    pub deps: Deps,
    /// For one element of a `map` node: the element and its position.
    pub element: Option<Element>,
}

/// The element of a `map` node's list that an attempt runs for.
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    /// The element itself.
    pub item: Value,
    /// Its position in the list, from 0.
    pub index: u64,
}

/// The document as the host sends it. Dependency outputs are only located
/// here, or only named (`dependencies`), for the host to hand over when the
/// action first asks for one; each is parsed then.
#[derive(Deserialize)]
#[serde(bound(deserialize = "I: DeserializeOwned"))]
struct Wire<'a, I> {
    input: I,
    #[serde(default, borrow)]
    deps: BTreeMap<String, &'a RawValue>,
    #[serde(default)]
    dependencies: Vec<String>,
    #[serde(default)]
    errors: BTreeMap<String, String>,
    #[serde(default)]
    item: Option<Value>,
    #[serde(default)]
    index: Option<u64>,
}

impl<I: DeserializeOwned> Request<I> {
    /// Parses the JSON document the host hands to `run`.
    ///
    /// An error names the offending field, as in
    /// ``fatal: invalid input: input.name: invalid type: integer `1`, expected a string``.
    pub fn from_json(json: &str) -> Result<Self, ActionError> {
        Self::from_text(json.to_string())
    }

    /// [`Request::from_json`] of text the request keeps: dependency outputs
    /// stay in it, unparsed, until they are asked for, so a large output
    /// that the action does not read costs nothing more than the text.
    pub fn from_text(json: String) -> Result<Self, ActionError> {
        let (input, outputs, errors, element) = {
            // Read without tracking where it is, which costs on every field;
            // only a request that fails is read again to name the field.
            let wire: Wire<'_, I> =
                match Wire::deserialize(&mut serde_json::Deserializer::from_str(&json)) {
                    Ok(wire) => wire,
                    Err(error) => return Err(invalid_input::<I>(&json, &error)),
                };
            let base = json.as_ptr() as usize;
            let inline = wire.deps.into_iter().map(|(id, raw)| {
                let start = raw.get().as_ptr() as usize - base;
                (id, Source::Text(start..start + raw.get().len()))
            });
            let asked = wire.dependencies.into_iter().map(|id| (id, Source::Host));
            let outputs = inline
                .chain(asked)
                .map(|(id, source)| {
                    let output = Output {
                        source,
                        value: OnceLock::new(),
                    };
                    (id, output)
                })
                .collect();
            let element = wire.index.map(|index| Element {
                item: wire.item.unwrap_or(Value::Null),
                index,
            });
            (wire.input, outputs, wire.errors, element)
        };
        Ok(Self {
            input,
            element,
            deps: Deps {
                text: Arc::new(json),
                outputs,
                errors,
                fetch: host_output,
            },
        })
    }
}

/// Why `json` is not a request for an input of type `I`, the field named.
fn invalid_input<I: DeserializeOwned>(json: &str, error: &serde_json::Error) -> ActionError {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    match serde_path_to_error::deserialize::<_, Wire<'_, I>>(&mut deserializer) {
        Err(error) => {
            let path = error.path().to_string();
            let inner = without_position(error.inner());
            if path == "." {
                ActionError::fatal(format!("invalid input: {inner}"))
            } else {
                ActionError::fatal(format!("invalid input: {path}: {inner}"))
            }
        }
        // Not expected: the same text read the same way.
        Ok(_) => ActionError::fatal(format!("invalid input: {}", without_position(error))),
    }
}

/// A parser error without its "at line 1 column 22": the position is in
/// the document the host built, which the workflow's author never sees;
/// the field path says where the problem is.
fn without_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    match text.strip_suffix(&suffix) {
        Some(message) if error.line() > 0 => message.to_string(),
        _ => text,
    }
}

/// Outputs of a node's dependencies, by node id.
///
/// A dependency that failed but has `continue_on_error = true` has no
/// output; [`Deps::error`] gives its error instead.
#[derive(Debug, Clone)]
pub struct Deps {
    /// The request's text, which holds the outputs handed over in it.
    text: Arc<String>,
    outputs: BTreeMap<String, Output>,
    errors: BTreeMap<String, String>,
    /// Asks the host for an output it holds.
    fetch: fn(&str) -> Option<String>,
}

impl Default for Deps {
    fn default() -> Self {
        Self {
            text: Arc::default(),
            outputs: BTreeMap::new(),
            errors: BTreeMap::new(),
            fetch: host_output,
        }
    }
}

/// A dependency's output: where it is, and its value once asked for.
#[derive(Debug, Clone)]
struct Output {
    source: Source,
    value: OnceLock<Value>,
}

/// Where a dependency's output is.
#[derive(Debug, Clone)]
enum Source {
    /// In the request's text, at these bytes.
    Text(Range<usize>),
    /// With the host, which copies it in when asked
    /// (`flow:plugin/dependencies`).
    Host,
}

/// The output of dependency `node` as the host holds it.
pub(crate) fn host_output(node: &str) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    return crate::__private::bindings::flow::plugin::dependencies::output(node);
    // Outside a component there is no host to ask: outputs come in the
    // request (`Request::from_json` with `deps`).
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = node;
        None
    }
}

impl PartialEq for Deps {
    fn eq(&self, other: &Self) -> bool {
        self.errors == other.errors && self.iter().eq(other.iter())
    }
}

impl Deps {
    /// The output of dependency `node`, if the node depends on it and it
    /// succeeded. It is parsed on the first call.
    pub fn get(&self, node: &str) -> Option<&Value> {
        self.outputs
            .get_key_value(node)
            .map(|(id, output)| self.value(id, output))
    }

    /// An output's value. The host hands over only outputs it checked
    /// (valid JSON within its bounds), so parsing it cannot fail.
    fn value<'a>(&'a self, id: &str, output: &'a Output) -> &'a Value {
        output.value.get_or_init(|| match &output.source {
            Source::Text(span) => {
                let text = self.text.get(span.clone()).unwrap_or("null");
                serde_json::from_str(text).unwrap_or(Value::Null)
            }
            Source::Host => (self.fetch)(id)
                .and_then(|text| serde_json::from_str(&text).ok())
                .unwrap_or(Value::Null),
        })
    }

    /// The error of dependency `node`, if it failed.
    pub fn error(&self, node: &str) -> Option<&str> {
        self.errors.get(node).map(String::as_str)
    }

    /// Dependencies that failed, and their errors, in id order.
    pub fn errors(&self) -> impl Iterator<Item = (&str, &str)> {
        self.errors
            .iter()
            .map(|(id, error)| (id.as_str(), error.as_str()))
    }

    /// Dependency ids and their outputs, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.outputs
            .iter()
            .map(|(id, output)| (id.as_str(), self.value(id, output)))
    }

    /// Number of dependencies with an output.
    pub fn len(&self) -> usize {
        self.outputs.len()
    }

    /// True when no dependency has an output.
    pub fn is_empty(&self) -> bool {
        self.outputs.is_empty()
    }

    /// Looks up a value by reference: a dependency id, optionally followed by
    /// a JSON pointer into its output (`"fetch"`, `"fetch/items/0/price"`).
    ///
    /// This is the convention every example plugin uses for fields such as
    /// `from = "order/amounts"`. The error says which part is missing.
    ///
    /// ```
    /// # use flow_plugin_sdk::Request;
    /// let request: Request = Request::from_json(
    ///     r#"{"input": {}, "deps": {"order": {"amounts": [3, 4]}}}"#,
    /// ).unwrap();
    /// assert_eq!(request.deps.resolve("order/amounts/1").unwrap(), 4);
    /// assert!(request.deps.resolve("order/missing").is_err());
    /// ```
    pub fn resolve(&self, reference: &str) -> Result<&Value, ActionError> {
        let (node, pointer) = match reference.find('/') {
            Some(slash) => reference.split_at(slash),
            None => (reference, ""),
        };
        if let Some(error) = self.error(node) {
            return Err(ActionError::fatal(format!(
                "`{reference}` refers to `{node}`, which failed: {error}"
            )));
        }
        let output = self.get(node).ok_or_else(|| {
            let known: Vec<&str> = self.outputs.keys().map(String::as_str).collect();
            let known = if known.is_empty() {
                "this node has no dependencies".to_string()
            } else {
                format!("its dependencies are: {}", known.join(", "))
            };
            ActionError::fatal(format!(
                "`{reference}` refers to `{node}`, which is not a dependency of this node; {known}"
            ))
        })?;
        output.pointer(pointer).ok_or_else(|| {
            ActionError::fatal(format!(
                "`{reference}`: the output of `{node}` has nothing at `{pointer}`"
            ))
        })
    }
}

impl From<Map<String, Value>> for Deps {
    fn from(outputs: Map<String, Value>) -> Self {
        Self {
            text: Arc::default(),
            outputs: outputs
                .into_iter()
                .map(|(id, value)| {
                    let output = Output {
                        source: Source::Text(0..0),
                        value: OnceLock::from(value),
                    };
                    (id, output)
                })
                .collect(),
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    struct Params {
        #[allow(dead_code)]
        name: String,
    }

    #[test]
    fn parses_input_and_deps() {
        let request: Request =
            Request::from_json(r#"{"input": {"a": 1}, "deps": {"x": [1, 2]}}"#).unwrap();
        assert_eq!(request.input, json!({"a": 1}));
        assert_eq!(request.deps.get("x"), Some(&json!([1, 2])));
        assert_eq!(request.deps.len(), 1);
    }

    #[test]
    fn an_element_of_a_map_node_has_its_item_and_index() {
        let request: Request =
            Request::from_json(r#"{"input": {}, "item": {"id": 7}, "index": 3}"#).unwrap();
        assert_eq!(
            request.element,
            Some(Element {
                item: json!({"id": 7}),
                index: 3
            })
        );
        assert!(request.deps.is_empty());
        let plain: Request = Request::from_json(r#"{"input": {}, "deps": {}}"#).unwrap();
        assert_eq!(plain.element, None);
    }

    #[test]
    fn outputs_are_parsed_when_first_asked_for() {
        let request: Request<serde::de::IgnoredAny> =
            Request::from_json(r#"{"input": 1, "deps": {"big": {"xs": [1, 2, 3]}, "small": 7}}"#)
                .unwrap();
        let parsed = |id: &str| request.deps.outputs[id].value.get().is_some();
        assert!(!parsed("big") && !parsed("small"));
        assert_eq!(request.deps.get("small"), Some(&json!(7)));
        assert!(parsed("small") && !parsed("big"));
        assert_eq!(request.deps.resolve("big/xs/2").unwrap(), &json!(3));
        let copy = request.deps.clone();
        assert_eq!(copy, request.deps);
    }

    #[test]
    fn outputs_the_host_holds_are_asked_for_once_when_first_read() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static ASKED: AtomicUsize = AtomicUsize::new(0);
        fn host(node: &str) -> Option<String> {
            ASKED.fetch_add(1, Ordering::SeqCst);
            (node == "big").then(|| r#"{"xs":[1,2,3]}"#.to_string())
        }
        let mut request: Request =
            Request::from_json(r#"{"input": {}, "dependencies": ["big", "gone"]}"#).unwrap();
        request.deps.fetch = host;
        assert_eq!(request.deps.len(), 2);
        assert_eq!(
            ASKED.load(Ordering::SeqCst),
            0,
            "nothing asked before a read"
        );
        assert_eq!(request.deps.resolve("big/xs/2").unwrap(), &json!(3));
        assert_eq!(request.deps.get("big"), Some(&json!({"xs": [1, 2, 3]})));
        assert_eq!(ASKED.load(Ordering::SeqCst), 1, "asked once");
        assert_eq!(request.deps.get("gone"), Some(&Value::Null));
        assert_eq!(request.deps.get("other"), None);
        assert_eq!(ASKED.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn missing_deps_is_empty() {
        let request: Request = Request::from_json(r#"{"input": null}"#).unwrap();
        assert!(request.deps.is_empty());
    }

    #[test]
    fn type_errors_name_the_field_and_are_fatal() {
        let error =
            Request::<Params>::from_json(r#"{"input": {"name": 1}, "deps": {}}"#).unwrap_err();
        assert!(!error.is_retryable());
        assert_eq!(
            error.message(),
            "invalid input: input.name: invalid type: integer `1`, expected a string",
            "the field path, not a line and column of the host's document"
        );
    }

    #[test]
    fn failed_dependencies_carry_their_error() {
        let request: Request = Request::from_json(
            r#"{"input": {}, "deps": {"ok": 1}, "errors": {"bad": "fatal error: no"}}"#,
        )
        .unwrap();
        assert_eq!(request.deps.error("bad"), Some("fatal error: no"));
        assert_eq!(
            request.deps.errors().collect::<Vec<_>>(),
            [("bad", "fatal error: no")]
        );
        assert_eq!(request.deps.get("bad"), None);
        let error = request.deps.resolve("bad/x").unwrap_err();
        assert_eq!(
            error.message(),
            "`bad/x` refers to `bad`, which failed: fatal error: no"
        );
    }

    #[test]
    fn resolve_whole_output_and_pointer() {
        let deps = Deps::from(json!({"a": {"b": [10, 20]}}).as_object().cloned().unwrap());
        assert_eq!(deps.resolve("a").unwrap(), &json!({"b": [10, 20]}));
        assert_eq!(deps.resolve("a/b/1").unwrap(), &json!(20));
    }

    #[test]
    fn resolve_errors_say_what_is_missing() {
        let deps = Deps::from(json!({"a": {"b": 1}}).as_object().cloned().unwrap());
        let unknown = deps.resolve("z/b").unwrap_err();
        assert_eq!(
            unknown.message(),
            "`z/b` refers to `z`, which is not a dependency of this node; its dependencies are: a"
        );
        let missing = deps.resolve("a/c").unwrap_err();
        assert_eq!(
            missing.message(),
            "`a/c`: the output of `a` has nothing at `/c`"
        );
        let none = Deps::default().resolve("a").unwrap_err();
        assert!(none.message().ends_with("this node has no dependencies"));
    }
}
