//! Workflows built in code: [`WorkflowSpec::builder`].
//!
//! A builder writes the workflow file it stands for and reads it with the
//! same validation as a file on disk, so a built workflow and a file with
//! the same content are equal, every check applies to both, and a built
//! workflow's [`WorkflowSpec::to_toml`] is a file that loads back to it.
//! Problems are reported by node and key, without lines: there is no file
//! to point into.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::diagnostic::{Diagnostic, SpecError};
use super::{Origin, Source, WorkflowSpec};

/// Builds a [`WorkflowSpec`] in code; start with [`WorkflowSpec::builder`].
///
/// ```
/// use flow_host::WorkflowSpec;
/// use serde_json::json;
///
/// let workflow = WorkflowSpec::builder("orders")
///     .max_concurrency(4)
///     .default_option("retries", 2)
///     .node("order", "echo")
///     .input(json!({ "id": 7, "items": [{ "sku": "A1", "qty": 2 }] }))
///     .node("totals", "math")
///     .depends_on(["order"])
///     .option("timeout", "5s")
///     .build()?;
/// assert_eq!(workflow.nodes.len(), 2);
/// assert_eq!(workflow.nodes[1].options.retry.retries, 2);
/// # Ok::<(), flow_host::SpecError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct WorkflowBuilder {
    id: String,
    description: Option<String>,
    plugins: Vec<String>,
    base_dir: PathBuf,
    options: Vec<(String, toml::Value)>,
    params: Vec<(String, toml::Value)>,
    defaults: Vec<(String, toml::Value)>,
    nodes: Vec<NodeDraft>,
    /// Values that a workflow file cannot hold (a JSON `null`), found as
    /// they were given.
    problems: Vec<Diagnostic>,
}

#[derive(Debug, Clone)]
struct NodeDraft {
    id: String,
    action: String,
    input: Option<toml::Value>,
    depends_on: Vec<String>,
    options: Vec<(String, toml::Value)>,
}

/// A [`WorkflowBuilder`] whose last node is being described: its methods
/// set that node; [`node`](Self::node) adds the next one.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct NodeBuilder {
    workflow: WorkflowBuilder,
}

impl WorkflowSpec {
    /// Starts a workflow with `[workflow] id = id`, built in code.
    pub fn builder(id: impl Into<String>) -> WorkflowBuilder {
        WorkflowBuilder {
            id: id.into(),
            description: None,
            plugins: Vec::new(),
            base_dir: PathBuf::new(),
            options: Vec::new(),
            params: Vec::new(),
            defaults: Vec::new(),
            nodes: Vec::new(),
            problems: Vec::new(),
        }
    }
}

impl WorkflowBuilder {
    /// `[workflow] description`.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// `[workflow] plugins`: the plugins search path, relative to the
    /// base directory.
    pub fn plugins<S: Into<String>>(mut self, dirs: impl IntoIterator<Item = S>) -> Self {
        self.plugins = dirs.into_iter().map(Into::into).collect();
        self
    }

    /// The directory relative paths (`plugins`, `files` grants) start
    /// from, as a workflow file's own directory; the current directory by
    /// default.
    pub fn base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base_dir = dir.into();
        self
    }

    /// Sets a workflow option (a key of `[workflow]`, as in a file:
    /// `durability`, `schedule`, ...), checked when the workflow is built.
    /// Setting a key again replaces its value.
    pub fn option(mut self, key: impl Into<String>, value: impl Into<toml::Value>) -> Self {
        set(&mut self.options, key.into(), value.into());
        self
    }

    /// Declares a run parameter (`[params]`) with its default, e.g.
    /// `.param("region", "eu")`; a table (`{ type, default, description }`)
    /// declares one without a default or with a description.
    pub fn param(mut self, name: impl Into<String>, declaration: impl Into<toml::Value>) -> Self {
        set(&mut self.params, name.into(), declaration.into());
        self
    }

    /// `[workflow] max_concurrency`: attempts running at once.
    pub fn max_concurrency(self, attempts: u32) -> Self {
        self.option("max_concurrency", i64::from(attempts))
    }

    /// Sets a node option for every node (a key of `[defaults]`); a node's
    /// own value wins.
    pub fn default_option(mut self, key: impl Into<String>, value: impl Into<toml::Value>) -> Self {
        set(&mut self.defaults, key.into(), value.into());
        self
    }

    /// Adds node `id`, run by the action (plugin or native action) called
    /// `action`; the returned builder sets its input, dependencies and
    /// options.
    pub fn node(mut self, id: impl Into<String>, action: impl Into<String>) -> NodeBuilder {
        self.nodes.push(NodeDraft {
            id: id.into(),
            action: action.into(),
            input: None,
            depends_on: Vec::new(),
            options: Vec::new(),
        });
        NodeBuilder { workflow: self }
    }

    /// Checks the workflow as a workflow file is checked, and returns it.
    ///
    /// Every problem is reported at once, naming its node and key.
    pub fn build(mut self) -> Result<WorkflowSpec, SpecError> {
        let mut problems = std::mem::take(&mut self.problems);
        let text = self.to_toml(&mut problems);
        let name = format!("<{}{BUILT_SUFFIX}", self.id);
        let source = Arc::new(Source {
            path: self.base_dir.join(name),
            text,
            origin: Origin::Code,
        });
        match (
            super::validate::workflow(source.clone()),
            problems.is_empty(),
        ) {
            (Ok(workflow), true) => Ok(workflow),
            (Ok(_), false) => Err(SpecError::invalid(&source, problems)),
            (Err(SpecError::Invalid { diagnostics, .. }), _) => {
                problems.extend(diagnostics);
                Err(SpecError::invalid(&source, problems))
            }
            (Err(error), _) => Err(error),
        }
    }

    /// The workflow file this builder stands for; a node id given twice is
    /// a problem, and only its first node is written.
    fn to_toml(&self, problems: &mut Vec<Diagnostic>) -> String {
        let mut out = String::from("[workflow]\n");
        line(&mut out, "id", &self.id.as_str().into());
        if let Some(description) = &self.description {
            line(&mut out, "description", &description.as_str().into());
        }
        if !self.plugins.is_empty() {
            line(&mut out, "plugins", &self.plugins.clone().into());
        }
        lines(&mut out, &self.options);
        if !self.params.is_empty() {
            out.push_str("\n[params]\n");
            lines(&mut out, &self.params);
        }
        if !self.defaults.is_empty() {
            out.push_str("\n[defaults]\n");
            lines(&mut out, &self.defaults);
        }
        let mut seen = std::collections::HashSet::new();
        for node in &self.nodes {
            if !seen.insert(node.id.as_str()) {
                problems.push(
                    Diagnostic::new(format!("node `{}` is added twice", node.id), None)
                        .help("give each node its own id"),
                );
                continue;
            }
            out.push_str(&format!("\n[nodes.{}]\n", key(&node.id)));
            line(&mut out, "action", &node.action.as_str().into());
            if let Some(input) = &node.input {
                line(&mut out, "input", input);
            }
            if !node.depends_on.is_empty() {
                line(&mut out, "depends_on", &node.depends_on.clone().into());
            }
            lines(&mut out, &node.options);
        }
        out
    }
}

impl NodeBuilder {
    fn current(&mut self) -> &mut NodeDraft {
        self.workflow
            .nodes
            .last_mut()
            .expect("a NodeBuilder always has a node")
    }

    /// The node's `input`. A workflow file cannot hold `null`: a `null`
    /// anywhere in it is reported when the workflow is built.
    pub fn input(mut self, input: serde_json::Value) -> Self {
        let node = self.current().id.clone();
        match to_toml(&input, &mut String::new()) {
            Ok(value) => self.current().input = Some(value),
            Err(problem) => self.workflow.problems.push(
                Diagnostic::new(format!("the input of node `{node}` {problem}"), None)
                    .help("a workflow file has no null: leave the field out"),
            ),
        }
        self
    }

    /// `input_jq`: a jq program over `{input, deps, run}` whose value is
    /// the node's input.
    pub fn input_jq(self, program: impl Into<String>) -> Self {
        self.option("input_jq", program.into())
    }

    /// `when`: a jq program over `{input, deps, run}`; the node runs only
    /// if its value is true.
    pub fn when(self, program: impl Into<String>) -> Self {
        self.option("when", program.into())
    }

    /// `map`: a jq program over `{input, deps, run}` that gives a list; the
    /// node runs once per element, which its input's expressions see as
    /// `.item` (and its position as `.index`).
    pub fn map(self, program: impl Into<String>) -> Self {
        self.option("map", program.into())
    }

    /// The nodes this one waits for, by id; they may be added later.
    pub fn depends_on<S: Into<String>>(mut self, ids: impl IntoIterator<Item = S>) -> Self {
        self.current()
            .depends_on
            .extend(ids.into_iter().map(Into::into));
        self
    }

    /// Sets a node option (a key of a node's table, as in a file:
    /// `retries`, `timeout`, `http`, ...), checked when the workflow is
    /// built.
    pub fn option(mut self, key: impl Into<String>, value: impl Into<toml::Value>) -> Self {
        set(&mut self.current().options, key.into(), value.into());
        self
    }

    /// `retries`: attempts after the first, for retryable failures.
    pub fn retries(self, retries: u32) -> Self {
        self.option("retries", i64::from(retries))
    }

    /// `timeout`: the wall-clock limit of each attempt.
    pub fn timeout(self, timeout: Duration) -> Self {
        self.option("timeout", humantime::format_duration(timeout).to_string())
    }

    /// Adds the next node; see [`WorkflowBuilder::node`].
    pub fn node(self, id: impl Into<String>, action: impl Into<String>) -> NodeBuilder {
        self.workflow.node(id, action)
    }

    /// Builds the workflow; see [`WorkflowBuilder::build`].
    pub fn build(self) -> Result<WorkflowSpec, SpecError> {
        self.workflow.build()
    }
}

/// Sets `key` to `value`: a later value replaces an earlier one.
fn set(values: &mut Vec<(String, toml::Value)>, key: String, value: toml::Value) {
    match values.iter_mut().find(|(name, _)| *name == key) {
        Some((_, old)) => *old = value,
        None => values.push((key, value)),
    }
}

/// How the path of a built workflow's source ends.
const BUILT_SUFFIX: &str = ": built in code>";

/// Whether `path` names a workflow built in code rather than a file, as in
/// the records of its runs.
pub fn is_built(path: &std::path::Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.starts_with('<') && name.ends_with(BUILT_SUFFIX))
}

/// Writes `key = value`.
fn line(out: &mut String, name: &str, value: &toml::Value) {
    out.push_str(&key(name));
    out.push_str(" = ");
    out.push_str(&value.to_string());
    out.push('\n');
}

fn lines(out: &mut String, values: &[(String, toml::Value)]) {
    for (name, value) in values {
        line(out, name, value);
    }
}

/// A key as TOML writes it: bare when it can be, else quoted.
fn key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        name.to_string()
    } else {
        toml::Value::from(name).to_string()
    }
}

/// A JSON value as TOML; `path` is where in the input it is, for the
/// message about a value TOML cannot hold.
fn to_toml(value: &serde_json::Value, path: &mut String) -> Result<toml::Value, String> {
    use serde_json::Value as Json;
    Ok(match value {
        Json::Null => {
            let at = if path.is_empty() { "." } else { path.as_str() };
            return Err(format!("holds null at {at}"));
        }
        Json::Bool(b) => toml::Value::Boolean(*b),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => toml::Value::Integer(i),
            (None, Some(f)) if !n.is_u64() => toml::Value::Float(f),
            _ => {
                return Err(format!(
                    "holds {n} at {path}, beyond a 64-bit signed integer"
                ));
            }
        },
        Json::String(s) => toml::Value::String(s.clone()),
        Json::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{index}]"));
                out.push(to_toml(item, path)?);
                path.truncate(len);
            }
            toml::Value::Array(out)
        }
        Json::Object(fields) => {
            let mut out = toml::Table::new();
            for (name, item) in fields {
                let len = path.len();
                path.push('.');
                path.push_str(name);
                out.insert(name.clone(), to_toml(item, path)?);
                path.truncate(len);
            }
            toml::Value::Table(out)
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn orders() -> WorkflowBuilder {
        WorkflowSpec::builder("orders")
            .description("totals of an order")
            .max_concurrency(4)
            .option("durability", "strict")
            .default_option("retries", 2)
            .node("order", "echo")
            .input(
                json!({"id": 7, "items": [{"sku": "A1", "qty": 2}], "note": "a \"quoted\"\nline"}),
            )
            .node("totals", "math")
            .depends_on(["order"])
            .timeout(Duration::from_secs(5))
            .option("http", vec!["https://api.example.com"])
            .when(".deps.order.id > 0")
            .node("label", "echo")
            .depends_on(["totals"])
            .input(json!({"for": "${{ run.params.customer }}"}))
            .input_jq(".input + {total: .deps.totals.sum}")
            .workflow
            .param("customer", "Ada")
    }

    const ORDERS: &str = r#"
[workflow]
id = "orders"
description = "totals of an order"
max_concurrency = 4
durability = "strict"

[params]
customer = "Ada"

[defaults]
retries = 2

[nodes.order]
action = "echo"
input = { id = 7, items = [{ sku = "A1", qty = 2 }], note = "a \"quoted\"\nline" }

[nodes.totals]
action = "math"
depends_on = ["order"]
timeout = "5s"
http = ["https://api.example.com"]
when = ".deps.order.id > 0"

[nodes.label]
action = "echo"
depends_on = ["totals"]
input = { for = "${{ run.params.customer }}" }
input_jq = ".input + {total: .deps.totals.sum}"
"#;

    #[test]
    fn a_built_workflow_equals_the_file_that_says_the_same() {
        let built = orders().build().unwrap();
        let file = WorkflowSpec::parse(std::path::Path::new("orders.toml"), ORDERS.into()).unwrap();
        assert_eq!(built, file);
        assert_eq!(built.nodes[1].options.retry.retries, 2);
        assert_eq!(
            built.nodes[1].options.limits.timeout,
            Duration::from_secs(5)
        );
        let again = WorkflowSpec::parse(std::path::Path::new("again.toml"), built.to_toml().into())
            .unwrap();
        assert_eq!(again, built);
        assert_ne!(again, orders().max_concurrency(3).build().unwrap());
    }

    #[test]
    fn mistakes_name_their_nodes_without_lines() {
        let error = WorkflowSpec::builder("w")
            .node("a", "echo")
            .depends_on(["c"])
            .node("b", "echo")
            .depends_on(["a", "ghost"])
            .node("c", "echo")
            .depends_on(["b"])
            .option("retries", "many")
            .node("a", "echo")
            .input(json!({"x": null}))
            .build()
            .unwrap_err();
        let text = error.to_string();
        for expected in [
            "error: node `a` is added twice",
            "error: the input of node `a` holds null at .x",
            "node `b` depends on `ghost`, which is not a node of this workflow",
            "dependency cycle: ",
            "in [nodes.c]: retries = \"many\"",
            "<w: built in code>: 5 errors; the workflow was not built",
        ] {
            assert!(text.contains(expected), "{expected:?} not in:\n{text}");
        }
        assert!(!text.contains("-->"), "{text}");
        let json = error.to_json();
        assert!(
            json["errors"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["line"].is_null())
        );
    }

    /// JSON a workflow file can hold: no null, integers within i64, no
    /// templates.
    fn input() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            (-1e9f64..1e9).prop_map(serde_json::Value::from),
            // `${{` opens a template, which is tested on its own.
            "[ -~\n\té\u{1F600}]{0,12}"
                .prop_filter("no template", |text: &String| !text.contains("${{"))
                .prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::btree_map("[a-z.\" -]{1,6}", inner, 0..4)
                    .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Random DAGs (each node depends on some earlier ones) survive
        /// building, writing as TOML and loading back, and keep what
        /// was given.
        #[test]
        fn built_workflows_load_back_equal(
            nodes in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["echo", "math", "hash"]),
                    proptest::option::of(input()),
                    proptest::collection::vec(proptest::prelude::any::<proptest::sample::Index>(), 0..3),
                    proptest::option::of(0u32..5),
                    proptest::option::of(1u64..600),
                ),
                1..40,
            ),
            concurrency in 1u32..16,
        ) {
            let mut builder = WorkflowSpec::builder("random").max_concurrency(concurrency).node("n0", "echo");
            let mut expected = vec![(String::from("n0"), Vec::<String>::new(), None)];
            for (i, (action, input, deps, retries, timeout)) in nodes.iter().enumerate() {
                let id = format!("n{}", i + 1);
                let mut deps: Vec<String> = deps.iter().map(|d| format!("n{}", d.index(i + 1))).collect();
                deps.sort();
                deps.dedup();
                builder = builder.node(&id, *action).depends_on(deps.clone());
                if let Some(input) = input {
                    builder = builder.input(input.clone());
                }
                if let Some(retries) = retries {
                    builder = builder.retries(*retries);
                }
                if let Some(seconds) = timeout {
                    builder = builder.timeout(Duration::from_secs(*seconds));
                }
                expected.push((id, deps, input.clone()));
            }
            let built = builder.build().unwrap();
            let loaded = WorkflowSpec::parse(std::path::Path::new("w.toml"), built.to_toml().into()).unwrap();
            proptest::prop_assert_eq!(&loaded, &built);
            for (node, (id, deps, input)) in built.nodes.iter().zip(&expected) {
                proptest::prop_assert_eq!(&node.id, id);
                proptest::prop_assert_eq!(&node.depends_on, deps);
                let given = input.clone().unwrap_or_else(|| json!({}));
                let stored: serde_json::Value = serde_json::from_str(&node.input).unwrap();
                proptest::prop_assert_eq!(stored, given);
            }
        }
    }

    #[test]
    fn built_paths_are_known() {
        let built = orders().base_dir("/srv").build().unwrap();
        assert!(is_built(&built.source.path));
        assert_eq!(built.base_dir(), std::path::Path::new("/srv"));
        assert!(!is_built(std::path::Path::new("orders.toml")));
    }

    #[test]
    fn keys_are_quoted_when_they_must_be() {
        assert_eq!(key("a-b_1"), "a-b_1");
        assert_eq!(key("a.b"), "\"a.b\"");
        assert_eq!(key(""), "\"\"");
    }

    #[test]
    fn nulls_are_found_where_they_are() {
        let error = to_toml(&json!({"a": [1, {"b": null}]}), &mut String::new()).unwrap_err();
        assert_eq!(error, "holds null at .a[1].b");
        assert!(to_toml(&json!(u64::MAX), &mut String::new()).is_err());
        assert_eq!(
            to_toml(&json!({"x": 1.5, "y": "s"}), &mut String::new()).unwrap(),
            toml::Value::Table(toml::toml! { x = 1.5
            y = "s" })
        );
    }
}
