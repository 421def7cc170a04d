//! Reading the TOML document: its tables and keys, with the place of each,
//! into a model the checks in `validate` work on. Every problem found is
//! collected; only a TOML syntax error stops the reading.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::validate::suggest;
use super::{Diagnostic, NodeExprs};
use crate::expr::{Expr, SyntaxError, Template};
use crate::options::values::SearchPath;
use crate::options::{NodeOptions, OptionSpec, OptionValue, Scope, WorkflowOptions};

/// The keys of `[workflow]` that are not options.
const HEADER_KEYS: &[&str] = &["id", "description", "plugins"];
/// The keys of a node's table that are not options.
const NODE_KEYS: &[&str] = &[
    "action",
    "workflow",
    "input",
    "input_jq",
    "when",
    "map",
    "depends_on",
];
/// The tables of a workflow file.
const TABLES: &[&str] = &["workflow", "params", "defaults", "nodes"];

/// The workflow file as read, before the graph is checked.
pub(super) struct Document {
    /// `[workflow] id` and its place; `None` when missing.
    pub id: Option<Spanned<String>>,
    /// The place of the `[workflow]` table, when there is one.
    pub header: Option<Range<usize>>,
    /// Whether `workflow` is a table (when it is not, that was reported).
    pub header_is_table: bool,
    pub description: Option<String>,
    pub plugins: Vec<PathBuf>,
    pub options: WorkflowOptions,
    /// `[params]`: the run parameters declared.
    pub params: super::Params,
    /// `[workflow] cron` and its companions.
    pub cron: Option<super::CronSchedule>,
    /// The nodes, in file order.
    pub nodes: Vec<RawNode>,
    /// Whether the file has a `[nodes]` table with at least one node.
    pub has_nodes: bool,
}

/// A node's table as read.
pub(super) struct RawNode {
    pub id: Spanned<String>,
    pub action: Option<Spanned<String>>,
    /// `workflow`: the file of the sub-workflow the node runs.
    pub workflow: Option<Spanned<String>>,
    /// `input` as JSON text (`{}` when absent).
    pub input: String,
    pub depends_on: Vec<Spanned<String>>,
    pub options: NodeOptions,
    /// Where each option of the node was set (in `[defaults]` or its table).
    pub option_spans: OptionSpans,
    /// The expressions of the node.
    pub exprs: NodeExprs,
}

/// Where options were set, by key.
pub(crate) type OptionSpans = std::collections::BTreeMap<&'static str, Range<usize>>;

/// Reads `text`; `None` after a TOML syntax error (in `problems`).
pub(super) fn read(path: &Path, text: &str, problems: &mut Vec<Diagnostic>) -> Option<Document> {
    let document = match DeTable::parse(text) {
        Ok(document) => document,
        Err(error) => {
            problems.push(toml_diagnostic(&error, text));
            return None;
        }
    };
    let mut read = Document {
        id: None,
        header: None,
        header_is_table: false,
        description: None,
        plugins: Vec::new(),
        options: WorkflowOptions::default(),
        params: super::Params::new(),
        cron: None,
        nodes: Vec::new(),
        has_nodes: false,
    };
    let mut defaults = (NodeOptions::default(), OptionSpans::new());
    let root = document.get_ref();
    // Defaults first: every node starts from them, wherever they are.
    if let Some((_, value)) = root.iter().find(|(key, _)| key.get_ref() == "defaults")
        && let Some(table) = table(value, "defaults", problems)
    {
        read_defaults(table, &mut defaults.0, &mut defaults.1, problems);
    }
    for (key, value) in root.iter() {
        match key.get_ref().as_ref() {
            "workflow" => {
                read.header = Some(value.span());
                if let Some(table) = table(value, "workflow", problems) {
                    read.header_is_table = true;
                    read_header(path, table, &mut read, problems);
                }
            }
            "defaults" => {}
            "params" => {
                if let Some(table) = table(value, "params", problems) {
                    read.params = super::params::read(table, problems);
                }
            }
            "nodes" => {
                if let Some(table) = table(value, "nodes", problems) {
                    read.has_nodes = !table.is_empty();
                    for (id, node) in table.iter() {
                        if let Some(node) = read_node(text, id, node, &defaults, problems) {
                            read.nodes.push(node);
                        }
                    }
                }
            }
            other => problems.push(unknown_key(key, other, "the file", TABLES.iter().copied())),
        }
    }
    read.nodes.sort_by_key(|node| node.id.span().start);
    Some(read)
}

/// The table a key holds, or a problem saying it must be one.
fn table<'a, 'i>(
    value: &'a Spanned<DeValue<'i>>,
    name: &str,
    problems: &mut Vec<Diagnostic>,
) -> Option<&'a DeTable<'i>> {
    match value.get_ref() {
        DeValue::Table(table) => Some(table),
        other => {
            problems.push(
                Diagnostic::new(
                    format!("`{name}` must be a table, not {}", other.type_str()),
                    Some(value.span()),
                )
                .help(format!("write it as a table: [{name}]")),
            );
            None
        }
    }
}

fn read_header(
    path: &Path,
    table: &DeTable<'_>,
    read: &mut Document,
    problems: &mut Vec<Diagnostic>,
) {
    let mut schedule = super::cron::Keys::default();
    for (key, value) in table.iter() {
        if schedule.take(key.get_ref().as_ref(), value) {
            continue;
        }
        match key.get_ref().as_ref() {
            "id" => {
                read.id = string(value, "id", problems).map(|id| Spanned::new(value.span(), id))
            }
            "description" => read.description = string(value, "description", problems),
            "plugins" => match value_as::<SearchPath>(value) {
                Ok(dirs) => {
                    read.plugins = dirs
                        .0
                        .iter()
                        .map(|dir| resolve_relative(path, dir))
                        .collect()
                }
                Err(problem) => problems.push(problem),
            },
            name => match OptionSpec::find(Scope::Workflow, name) {
                Some(option) => report(
                    option.apply_workflow(&mut read.options, OptionValue::Toml(value.clone())),
                    value,
                    problems,
                ),
                None => problems.push(misplaced(key, name, Scope::Workflow).unwrap_or_else(|| {
                    let keys = HEADER_KEYS
                        .iter()
                        .copied()
                        .chain(super::cron::KEYS.iter().copied())
                        .chain(OptionSpec::keys(Scope::Workflow));
                    unknown_key(key, name, "[workflow]", keys)
                })),
            },
        }
    }
    read.cron = schedule.read(problems);
}

fn read_defaults(
    table: &DeTable<'_>,
    defaults: &mut NodeOptions,
    spans: &mut OptionSpans,
    problems: &mut Vec<Diagnostic>,
) {
    for (key, value) in table.iter() {
        let name = key.get_ref().as_ref();
        match OptionSpec::find(Scope::Node, name) {
            Some(option) => {
                spans.insert(option.key, value.span());
                report(
                    option.apply_node(defaults, OptionValue::Toml(value.clone())),
                    value,
                    problems,
                )
            }
            None if NODE_KEYS.contains(&name) => problems.push(
                Diagnostic::new(format!("`{name}` cannot be a default"), Some(key.span()))
                    .help(format!("set `{name}` in each node's table")),
            ),
            None => problems.push(misplaced(key, name, Scope::Node).unwrap_or_else(|| {
                unknown_key(key, name, "[defaults]", OptionSpec::keys(Scope::Node))
            })),
        }
    }
}

fn read_node(
    text: &str,
    id: &Spanned<std::borrow::Cow<'_, str>>,
    node: &Spanned<DeValue<'_>>,
    defaults: &(NodeOptions, OptionSpans),
    problems: &mut Vec<Diagnostic>,
) -> Option<RawNode> {
    let id = Spanned::new(id.span(), id.get_ref().to_string());
    let table = match node.get_ref() {
        DeValue::Table(table) => table,
        other => {
            problems.push(
                Diagnostic::new(
                    format!(
                        "node `{}` must be a table, not {}",
                        shown(id.get_ref()),
                        other.type_str()
                    ),
                    Some(node.span()),
                )
                .help(format!(
                    "write it as [nodes.{}] with an `action`",
                    shown(id.get_ref())
                )),
            );
            return None;
        }
    };
    let mut map_at = None;
    // `map_concurrency` and `map_tolerance` set in the node's own table.
    let mut map_options = Vec::new();
    let mut read = RawNode {
        id,
        action: None,
        workflow: None,
        input: "{}".to_string(),
        depends_on: Vec::new(),
        options: defaults.0.clone(),
        option_spans: defaults.1.clone(),
        exprs: NodeExprs::default(),
    };
    for (key, value) in table.iter() {
        match key.get_ref().as_ref() {
            "action" => {
                read.action =
                    string(value, "action", problems).map(|a| Spanned::new(value.span(), a))
            }
            "input" => match input_json(value) {
                Ok(json) => {
                    read.exprs.template = template(text, &json, value, read.id.get_ref(), problems);
                    read.input = json.to_string();
                }
                Err(problem) => problems.push(problem.message_prefix(&format!(
                    "the input of node `{}` cannot be passed as JSON: ",
                    shown(read.id.get_ref())
                ))),
            },
            "input_jq" | "when" => {
                let key = key.get_ref().as_ref();
                let expr = string(value, key, problems)
                    .and_then(|code| program(text, &code, value, key, read.id.get_ref(), problems));
                match key {
                    "input_jq" => read.exprs.input_jq = expr,
                    _ => read.exprs.when = expr,
                }
            }
            "workflow" => {
                read.workflow =
                    string(value, "workflow", problems).map(|w| Spanned::new(value.span(), w))
            }
            "map" => {
                map_at = Some(value.clone());
                read.exprs.map = map_program(text, value, read.id.get_ref(), problems);
            }
            "depends_on" => read.depends_on = strings(value, "depends_on", problems),
            name => match OptionSpec::find(Scope::Node, name) {
                Some(option) => {
                    if option.key.starts_with("map_") {
                        map_options.push((option.key, value.span()));
                    }
                    read.option_spans.insert(option.key, value.span());
                    report(
                        option.apply_node(&mut read.options, OptionValue::Toml(value.clone())),
                        value,
                        problems,
                    )
                }
                None => problems.push(misplaced(key, name, Scope::Node).unwrap_or_else(|| {
                    let keys = NODE_KEYS
                        .iter()
                        .copied()
                        .chain(OptionSpec::keys(Scope::Node));
                    unknown_key(key, name, "a node's table", keys)
                })),
            },
        }
    }
    if read.exprs.map.is_none() && map_at.is_none() {
        for (key, span) in map_options {
            problems.push(
                Diagnostic::new(
                    format!(
                        "`{key}` of node `{}` has no effect: the node has no `map`",
                        shown(read.id.get_ref())
                    ),
                    Some(span),
                )
                .help("add `map = '...'` to run the node once per element of a list, or remove the option"),
            );
        }
    }
    let exprs = &read.exprs;
    if exprs.when.is_some() || exprs.map.is_some() || exprs.shape_input() {
        read.exprs.written = crate::expr::parse_json(&read.input).ok();
    }
    if let (Some(value), Some(map)) = (&map_at, &read.exprs.map) {
        check_static_map(map, &read, value, problems);
    }
    Some(read)
}

/// `map`: a jq program, or a TOML array of the elements themselves.
fn map_program(
    text: &str,
    value: &Spanned<DeValue<'_>>,
    node: &str,
    problems: &mut Vec<Diagnostic>,
) -> Option<Expr> {
    if let DeValue::Array(_) = value.get_ref() {
        // The list as JSON, which is a jq program that yields it.
        return match input_json(value) {
            Ok(list) => Expr::compile(&list.to_string()).ok(),
            Err(problem) => {
                problems.push(problem.message_prefix(&format!(
                    "the `map` list of node `{}` cannot be passed as JSON: ",
                    shown(node)
                )));
                None
            }
        };
    }
    let DeValue::String(code) = value.get_ref() else {
        problems.push(
            Diagnostic::new(
                format!(
                    "`map` must be a jq expression (a string) or a list, not {}",
                    value.get_ref().type_str()
                ),
                Some(value.span()),
            )
            .help("write map = '.deps.list.items', or map = [1, 2, 3]"),
        );
        return None;
    };
    program(text, code, value, "map", node, problems)
}

/// A `map` that reads neither dependencies nor the run gives the same
/// value whenever it runs: evaluated now, it must be a list.
fn check_static_map(
    map: &Expr,
    node: &RawNode,
    value: &Spanned<DeValue<'_>>,
    problems: &mut Vec<Diagnostic>,
) {
    let code = map.code();
    if code.contains("deps") || code.contains("run") || code.contains('$') {
        return;
    }
    let Ok(context) = crate::expr::parse_json(&format!(
        "{{\"input\":{},\"deps\":{{}},\"run\":{{}}}}",
        node.input
    )) else {
        return;
    };
    let found = match map.run_one(context) {
        Ok(jaq_json::Val::Arr(_)) | Err(_) => return,
        Ok(other) => crate::expr::type_name(&other),
    };
    problems.push(
        Diagnostic::new(
            format!(
                "`map` of node `{}` gives {found}, not a list",
                shown(node.id.get_ref())
            ),
            Some(value.span()),
        )
        .label("not a list")
        .help("map runs the node once per element of a list: e.g. map = '.deps.fetch.items'"),
    );
}

/// A value read through serde, its error at its place.
pub(super) fn value_as<T: serde::de::DeserializeOwned>(
    value: &Spanned<DeValue<'_>>,
) -> Result<T, Diagnostic> {
    T::deserialize(ValueDeserializer::from(value.clone())).map_err(|error| {
        Diagnostic::new(
            error.message().trim_end().to_string(),
            error.span().or(Some(value.span())),
        )
    })
}

pub(super) fn string(
    value: &Spanned<DeValue<'_>>,
    key: &str,
    problems: &mut Vec<Diagnostic>,
) -> Option<String> {
    match value.get_ref() {
        DeValue::String(text) => Some(text.to_string()),
        other => {
            problems.push(Diagnostic::new(
                format!("`{key}` must be a string, not {}", other.type_str()),
                Some(value.span()),
            ));
            None
        }
    }
}

fn strings(
    value: &Spanned<DeValue<'_>>,
    key: &str,
    problems: &mut Vec<Diagnostic>,
) -> Vec<Spanned<String>> {
    let DeValue::Array(items) = value.get_ref() else {
        problems.push(
            Diagnostic::new(
                format!(
                    "`{key}` must be an array of node ids, not {}",
                    value.get_ref().type_str()
                ),
                Some(value.span()),
            )
            .help(format!("write {key} = [\"a\", \"b\"]")),
        );
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| string(item, key, problems).map(|text| Spanned::new(item.span(), text)))
        .collect()
}

/// A node's `input` as JSON. Datetimes become RFC 3339 strings; NaN and
/// infinities, which JSON cannot carry, are refused.
fn input_json(value: &Spanned<DeValue<'_>>) -> Result<serde_json::Value, Diagnostic> {
    let toml: toml::Value = value_as(value)?;
    to_json(&toml).map_err(|why| Diagnostic::new(why, Some(value.span())))
}

/// The templates of a node's input, compiled; a program that does not
/// compile is a problem at its place in the file.
fn template(
    text: &str,
    input: &serde_json::Value,
    value: &Spanned<DeValue<'_>>,
    node: &str,
    problems: &mut Vec<Diagnostic>,
) -> Option<Template> {
    let errors = match Template::parse(input) {
        Ok(template) => return template,
        Err(errors) => errors,
    };
    for error in errors {
        // The program's place: where its string is within the input, then
        // within the string.
        let at = place(text, value, &error.text, error.offset);
        problems.push(
            Diagnostic::new(
                format!(
                    "in the input of node `{}`, `${{{{ {} }}}}`: {}",
                    shown(node),
                    error.code,
                    error.message
                ),
                Some(at..at + 1),
            )
            .help(EXPRESSION_HELP),
        );
    }
    None
}

/// `input_jq` or `when` compiled; a program that does not compile is a
/// problem at its place in the file.
fn program(
    text: &str,
    code: &str,
    value: &Spanned<DeValue<'_>>,
    key: &str,
    node: &str,
    problems: &mut Vec<Diagnostic>,
) -> Option<Expr> {
    match Expr::compile(code) {
        Ok(expr) => Some(expr),
        Err(SyntaxError { message, offset }) => {
            let at = place(text, value, code, offset);
            problems.push(
                Diagnostic::new(
                    format!("`{key}` of node `{}`: {message}", shown(node)),
                    Some(at..at + 1),
                )
                .help(EXPRESSION_HELP),
            );
            None
        }
    }
}

/// The byte of the file `offset` bytes into `written`, a string within
/// `value` as the file writes it (exact unless the string has escapes;
/// else the value's start).
fn place(text: &str, value: &Spanned<DeValue<'_>>, written: &str, offset: usize) -> usize {
    let span = value.span();
    text.get(span.clone())
        .and_then(|source| source.find(written))
        .map_or(span.start, |found| span.start + found + offset)
}

const EXPRESSION_HELP: &str = "expressions are jq programs over {input, deps, run}, e.g. \
     `.deps.fetch.body.user` or `[.deps.list[] | .id]`";

/// Converts a TOML value to JSON.
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

/// A bad option value as a problem, at its place (or the value's).
fn report(
    applied: Result<(), crate::options::OptionError>,
    value: &Spanned<DeValue<'_>>,
    problems: &mut Vec<Diagnostic>,
) {
    if let Err(error) = applied {
        let span = error.span.or(Some(value.span()));
        problems.push(Diagnostic::new(error.message, span));
    }
}

/// A key of the other scope: a workflow option in a node's table, or the
/// other way round.
fn misplaced(
    key: &Spanned<std::borrow::Cow<'_, str>>,
    name: &str,
    here: Scope,
) -> Option<Diagnostic> {
    let (there, table, place) = match here {
        Scope::Workflow => (Scope::Node, "[defaults] or a node's table", "a node option"),
        Scope::Node => (Scope::Workflow, "[workflow]", "a workflow option"),
    };
    OptionSpec::find(there, name)?;
    Some(
        Diagnostic::new(format!("`{name}` is {place}"), Some(key.span()))
            .label("not here")
            .help(format!("set it in {table}")),
    )
}

fn unknown_key<'a>(
    key: &Spanned<std::borrow::Cow<'_, str>>,
    name: &str,
    place: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> Diagnostic {
    Diagnostic::new(
        format!("unknown key `{}` in {place}", shown(name)),
        Some(key.span()),
    )
    .label("unknown key")
    .help(suggest(name, known, "keys"))
}

/// A name as messages show it: cut when it is long.
pub(super) fn shown(name: &str) -> String {
    const LONGEST: usize = 40;
    match name.char_indices().nth(LONGEST) {
        Some((end, _)) => format!("{}…", &name[..end]),
        None => name.to_string(),
    }
}

/// A TOML syntax error, in the words of the workflow file.
fn toml_diagnostic(error: &toml::de::Error, text: &str) -> Diagnostic {
    let message = error.message().trim_end().to_string();
    let span = error.span();
    let spanned = span.clone().and_then(|span| text.get(span)).unwrap_or("");
    if message == "duplicate key" {
        let key = spanned.trim_matches('"');
        return Diagnostic::new(format!("duplicate key `{}`", shown(key)), span)
            .help("a key, and so a node id, may appear only once in its table");
    }
    Diagnostic::new(message, span)
}

fn resolve_relative(file: &Path, dir: &str) -> PathBuf {
    let dir = Path::new(dir);
    if dir.is_absolute() {
        return dir.to_path_buf();
    }
    match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.join(dir),
        _ => dir.to_path_buf(),
    }
}

impl Diagnostic {
    /// The same problem with `prefix` before its message.
    fn message_prefix(mut self, prefix: &str) -> Self {
        self.message = format!("{prefix}{}", self.message);
        self
    }
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
    fn long_names_are_cut() {
        assert_eq!(shown("short"), "short");
        assert_eq!(shown(&"x".repeat(100)).chars().count(), 41);
    }
}
