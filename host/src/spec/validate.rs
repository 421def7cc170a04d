//! Checks that turn the raw TOML model into a [`WorkflowSpec`].

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use toml::Spanned;

use super::raw::{self, RawFile, RawNode};
use super::{Diagnostic, NodeSpec, Source, SpecError, WorkflowSpec};
use crate::dag::Dag;
use crate::options::{NodeOptions, WorkflowOptions};

/// Longest id accepted for workflows and nodes.
const MAX_ID_LEN: usize = 64;

const EXAMPLE_HEADER: &str = "start the file with:\n\n    [workflow]\n    id = \"my-workflow\"";

pub(super) fn workflow(source: Arc<Source>) -> Result<WorkflowSpec, SpecError> {
    let raw: RawFile = toml::from_str(&source.text).map_err(|error| {
        SpecError::invalid(&source, vec![toml_diagnostic(&error, &source.text)])
    })?;

    let mut problems = Vec::new();
    let Some(header) = raw.workflow else {
        let diagnostic =
            Diagnostic::new("the file has no [workflow] table", Some(0..0)).help(EXAMPLE_HEADER);
        return Err(SpecError::invalid(&source, vec![diagnostic]));
    };
    let header_span = header.span();
    let header = header.into_inner();
    let id = match header.id {
        Some(id) => {
            check_id(&id, "workflow", &mut problems);
            id.into_inner()
        }
        None => {
            problems.push(
                Diagnostic::new(
                    "[workflow] has no `id`",
                    Some(header_span.start..header_span.start),
                )
                .help("name the workflow: id = \"my-workflow\""),
            );
            String::new()
        }
    };
    let plugins = header
        .plugins
        .map(|dir| resolve_relative(&source.path, dir.get_ref()));
    let mut options = WorkflowOptions::default();
    if let Some(concurrency) = header.max_concurrency {
        options.max_concurrency = concurrency;
    }
    if let Some(schedule) = header.schedule {
        options.schedule = schedule;
    }
    if let Some(observability) = header.observability {
        options.observability = observability;
    }
    if let Some(durability) = header.durability {
        options.durability = durability;
    }
    if let Some(interval) = header.persistence_interval {
        options.persistence_interval = interval.0;
    }

    if let Some(level) = header.log_level {
        if let Err(error) = tracing_subscriber::EnvFilter::try_new(level.get_ref()) {
            problems.push(
                Diagnostic::new(format!("invalid log_level: {error}"), Some(level.span()))
                    .help("use a level (error, warn, info, debug, trace) or directives such as \"warn,flow::plugin=debug\""),
            );
        }
        options.log_level = Some(level.into_inner());
    }
    let mut defaults = NodeOptions::default();
    if let Some(raw) = &raw.defaults {
        raw.apply(&mut defaults);
    }

    let raw_nodes = match raw.nodes {
        Some(nodes) if !nodes.get_ref().is_empty() => nodes.into_inner(),
        _ => {
            problems.push(
                Diagnostic::new("the workflow has no nodes", Some(header_span.start..header_span.start))
                    .help("add a node, for example:\n\n    [nodes.hello]\n    action = \"echo\"\n    input = { message = \"hi\" }"),
            );
            return Err(SpecError::invalid(&source, problems));
        }
    };

    // File order: the map is sorted by id, the spans say where each table is.
    let mut raw_nodes: Vec<(Spanned<String>, Spanned<RawNode>)> = raw_nodes.into_iter().collect();
    raw_nodes.sort_by_key(|(key, _)| key.span().start);
    let index: HashMap<&str, usize> = raw_nodes
        .iter()
        .enumerate()
        .map(|(i, (key, _))| (key.get_ref().as_str(), i))
        .collect();

    let mut nodes = Vec::with_capacity(raw_nodes.len());
    let mut dependencies = Vec::with_capacity(raw_nodes.len());
    for (key, node) in &raw_nodes {
        check_id(key, "node", &mut problems);
        let (node, deps) = node_spec(
            key,
            node.get_ref(),
            &defaults,
            &index,
            &raw_nodes,
            &mut problems,
        );
        nodes.push(node);
        dependencies.push(deps);
    }
    if !problems.is_empty() {
        return Err(SpecError::invalid(&source, problems));
    }

    let dag = Dag::new(dependencies).map_err(|cycles| {
        let diagnostics = cycles
            .iter()
            .map(|cycle| cycle_diagnostic(cycle, &raw_nodes))
            .collect();
        SpecError::invalid(&source, diagnostics)
    })?;

    Ok(WorkflowSpec {
        id,
        description: header.description,
        options,
        overrides: Default::default(),

        plugins,
        nodes,
        dag,
        source,
    })
}

fn node_spec(
    key: &Spanned<String>,
    node: &RawNode,
    defaults: &NodeOptions,
    index: &HashMap<&str, usize>,
    raw_nodes: &[(Spanned<String>, Spanned<RawNode>)],
    problems: &mut Vec<Diagnostic>,
) -> (NodeSpec, Vec<usize>) {
    let id = key.get_ref();
    let (action, action_span) = match &node.action {
        Some(action) => (action.get_ref().clone(), action.span()),
        None => {
            problems.push(
                Diagnostic::new(format!("node `{id}` has no `action`"), Some(key.span()))
                    .help("name the plugin that runs it: action = \"echo\""),
            );
            (String::new(), key.span())
        }
    };

    let input = match &node.input {
        None => Arc::from("{}"),
        Some(value) => match raw::to_json(value.get_ref()) {
            Ok(json) => Arc::from(json.to_string()),
            Err(why) => {
                problems.push(Diagnostic::new(
                    format!("the input of node `{id}` cannot be passed as JSON: {why}"),
                    Some(value.span()),
                ));
                Arc::from("{}")
            }
        },
    };

    let mut deps = Vec::with_capacity(node.depends_on.len());
    for dep in &node.depends_on {
        let name = dep.get_ref();
        match index.get(name.as_str()) {
            Some(&i) if i == index[id.as_str()] => problems.push(
                Diagnostic::new(format!("node `{id}` depends on itself"), Some(dep.span()))
                    .help(format!("remove `{name}` from its depends_on")),
            ),
            Some(&i) if deps.contains(&i) => problems.push(
                Diagnostic::new(
                    format!("node `{id}` lists `{name}` twice in depends_on"),
                    Some(dep.span()),
                )
                .help("list each dependency once"),
            ),
            Some(&i) => deps.push(i),
            None => problems.push(
                Diagnostic::new(
                    format!(
                        "node `{id}` depends on `{name}`, which is not a node of this workflow"
                    ),
                    Some(dep.span()),
                )
                .label("unknown node")
                .help(suggest(
                    name,
                    raw_nodes.iter().map(|(k, _)| k.get_ref().as_str()),
                    "nodes",
                )),
            ),
        }
    }
    let mut options = defaults.clone();
    node.apply(&mut options);
    let spec = NodeSpec {
        id: id.clone(),
        action,
        input,
        options,
        depends_on: node
            .depends_on
            .iter()
            .map(|d| d.get_ref().clone())
            .collect(),
        action_span,
    };
    (spec, deps)
}

pub(super) fn actions<'a>(
    spec: &WorkflowSpec,
    available: impl IntoIterator<Item = &'a str> + Clone,
) -> Result<(), SpecError> {
    let problems: Vec<Diagnostic> = spec
        .nodes
        .iter()
        .filter(|node| {
            !available
                .clone()
                .into_iter()
                .any(|name| name == node.action)
        })
        .map(|node| {
            Diagnostic::new(
                format!(
                    "node `{}` uses action `{}`, which no plugin provides",
                    node.id, node.action
                ),
                Some(node.action_span.clone()),
            )
            .label("unknown action")
            .help(
                suggest(&node.action, available.clone(), "plugins")
                    + " (`flow plugins DIR` lists what a directory provides)",
            )
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(SpecError::invalid(&spec.source, problems))
    }
}

fn check_id(id: &Spanned<String>, what: &str, problems: &mut Vec<Diagnostic>) {
    let text = id.get_ref();
    let why = if text.is_empty() {
        Some("it is empty".to_string())
    } else if text.len() > MAX_ID_LEN {
        Some(format!("it is longer than {MAX_ID_LEN} characters"))
    } else if !text.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        Some("it must start with a letter or a digit".to_string())
    } else {
        text.chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
            .map(|c| format!("it contains {c:?}"))
    };
    if let Some(why) = why {
        problems.push(
            Diagnostic::new(
                format!("invalid {what} id `{text}`: {why}"),
                Some(id.span()),
            )
            .help("ids use ASCII letters, digits, `-` and `_`, and start with a letter or a digit"),
        );
    }
}

fn cycle_diagnostic(
    cycle: &[usize],
    raw_nodes: &[(Spanned<String>, Spanned<RawNode>)],
) -> Diagnostic {
    let name = |i: usize| raw_nodes[i].0.get_ref().as_str();
    let mut path: Vec<&str> = cycle.iter().map(|&i| name(i)).collect();
    path.push(name(cycle[0]));
    let first = &raw_nodes[cycle[0]];
    // Point at the first node's dependency on the next node of the cycle.
    let next = name(*cycle.get(1).unwrap_or(&cycle[0]));
    let span = first
        .1
        .get_ref()
        .depends_on
        .iter()
        .find(|dep| dep.get_ref() == next)
        .map_or(first.0.span(), Spanned::span);
    Diagnostic::new(
        format!("dependency cycle: {}", path.join(" -> ")),
        Some(span),
    )
    .label("each node depends on the next")
    .help("a workflow must be acyclic: remove one of these dependencies")
}

/// "did you mean" help, or the list of valid names (`what` names them, in
/// the plural: "the {what} are: ...").
pub fn suggest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    what: &str,
) -> String {
    let mut candidates: Vec<&str> = candidates.into_iter().collect();
    candidates.sort_unstable();
    candidates.dedup();
    let close = candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), *c))
        .filter(|(distance, c)| *distance <= (c.len() / 3).max(1))
        .min();
    match close {
        Some((_, c)) => format!("did you mean `{c}`?"),
        None if candidates.is_empty() => format!("there are no {what}"),
        None => format!("the {what} are: {}", candidates.join(", ")),
    }
}

/// A TOML or type error, in the words of the workflow file.
fn toml_diagnostic(error: &toml::de::Error, text: &str) -> Diagnostic {
    let message = error
        .message()
        .trim_end()
        .replace("missing field", "missing key")
        .replace("unknown field", "unknown key")
        .replace("expected a sequence", "expected an array")
        .replace("expected a map", "expected a table");
    let span = error.span();
    let spanned = span.clone().and_then(|span| text.get(span)).unwrap_or("");
    if message == "duplicate key" {
        let key = spanned.trim_matches('"');
        return Diagnostic::new(format!("duplicate key `{key}`"), span)
            .help("a key, and so a node id, may appear only once in its table");
    }
    let diagnostic = Diagnostic::new(&message, span);
    // "unknown key `x`, expected one of `a`, `b`": suggest the closest.
    if let Some(rest) = message.strip_prefix("unknown key `") {
        let mut names = rest.split('`').step_by(2);
        if let Some(unknown) = names.next() {
            let expected: Vec<&str> = names.collect();
            let help = suggest(unknown, expected.iter().copied(), "keys");
            if help.starts_with("did you mean") {
                return diagnostic.help(help);
            }
        }
    }
    diagnostic
}

fn resolve_relative(file: &Path, dir: &str) -> std::path::PathBuf {
    let dir = Path::new(dir);
    if dir.is_absolute() {
        return dir.to_path_buf();
    }
    match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.join(dir),
        _ => dir.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<WorkflowSpec, SpecError> {
        WorkflowSpec::parse(Path::new("flows/test.toml"), text.to_string())
    }

    fn messages(text: &str) -> Vec<String> {
        parse(text)
            .unwrap_err()
            .diagnostics()
            .iter()
            .map(|d| d.message.clone())
            .collect()
    }

    const HEADER: &str = "[workflow]\nid = \"w\"\n";

    #[test]
    fn a_valid_diamond() {
        let spec = parse(&format!(
            "{HEADER}plugins = \"../plugins\"\nmax_concurrency = 2\n\
             [nodes.a]\naction = \"echo\"\ninput = {{ x = 1 }}\n\
             [nodes.c]\naction = \"echo\"\ndepends_on = [\"a\"]\n\
             [nodes.b]\naction = \"echo\"\ndepends_on = [\"a\"]\n\
             [nodes.d]\naction = \"echo\"\ndepends_on = [\"b\", \"c\"]\n"
        ))
        .unwrap();
        let ids: Vec<&str> = spec.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["a", "c", "b", "d"], "file order is kept");
        assert_eq!(&*spec.nodes[0].input, r#"{"x":1}"#);
        assert_eq!(&*spec.nodes[1].input, "{}");
        assert_eq!(spec.dag.levels(), &[vec![0], vec![1, 2], vec![3]]);
        assert_eq!(
            spec.options.max_concurrency,
            crate::options::Concurrency::Fixed(2)
        );
        assert_eq!(spec.plugins.as_deref(), Some(Path::new("flows/../plugins")));
    }

    #[test]
    fn every_dependency_problem_is_reported() {
        let found = messages(&format!(
            "{HEADER}[nodes.a]\naction = \"echo\"\ndepends_on = [\"a\", \"zz\"]\n\
             [nodes.b]\naction = \"echo\"\ndepends_on = [\"a\", \"a\"]\n"
        ));
        assert_eq!(
            found,
            [
                "node `a` depends on itself",
                "node `a` depends on `zz`, which is not a node of this workflow",
                "node `b` lists `a` twice in depends_on",
            ]
        );
    }

    #[test]
    fn cycle_names_its_nodes() {
        let found = messages(&format!(
            "{HEADER}[nodes.a]\naction = \"e\"\ndepends_on = [\"c\"]\n\
             [nodes.b]\naction = \"e\"\ndepends_on = [\"a\"]\n\
             [nodes.c]\naction = \"e\"\ndepends_on = [\"b\"]\n"
        ));
        assert_eq!(found, ["dependency cycle: a -> c -> b -> a"]);
    }

    #[test]
    fn ids_are_checked() {
        let found = messages("[workflow]\nid = \"-w\"\n[nodes.\"a b\"]\naction = \"e\"\n");
        assert_eq!(
            found,
            [
                "invalid workflow id `-w`: it must start with a letter or a digit",
                "invalid node id `a b`: it contains ' '",
            ]
        );
    }

    #[test]
    fn structure_errors() {
        assert_eq!(messages(""), ["the file has no [workflow] table"]);
        assert_eq!(messages(HEADER), ["the workflow has no nodes"]);
        assert_eq!(
            messages("[workflow]\n[nodes.a]\naction = \"e\"\n"),
            ["[workflow] has no `id`"]
        );
        assert_eq!(
            messages(&format!("{HEADER}[nodes.a]\ninput = 1\n")),
            ["node `a` has no `action`"]
        );
    }

    #[test]
    fn type_errors_have_a_location() {
        let error = parse(&format!(
            "{HEADER}[nodes.a]\naction = \"e\"\ndepends_on = \"b\"\n"
        ))
        .unwrap_err();
        let diagnostic = &error.diagnostics()[0];
        assert!(
            diagnostic
                .message
                .contains("invalid type: string \"b\", expected an array"),
            "{diagnostic:?}"
        );
        let span = diagnostic.span.clone().unwrap();
        assert_eq!(&error_source(&error)[span], "\"b\"");
    }

    #[test]
    fn unknown_actions_suggest_the_closest_plugin() {
        let spec = parse(&format!(
            "{HEADER}[nodes.a]\naction = \"ehco\"\n[nodes.b]\naction = \"zzz\"\n"
        ))
        .unwrap();
        let error = spec.check_actions(["echo", "hash"]).unwrap_err();
        let helps: Vec<_> = error
            .diagnostics()
            .iter()
            .map(|d| d.help.clone().unwrap())
            .collect();
        assert!(helps[0].starts_with("did you mean `echo`?"), "{helps:?}");
        assert!(
            helps[1].starts_with("the plugins are: echo, hash"),
            "{helps:?}"
        );
        assert!(spec.check_actions(["echo", "ehco", "zzz"]).is_ok());
    }

    #[test]
    fn rendered_errors_name_file_line_and_column() {
        let error = parse(&format!(
            "{HEADER}[nodes.a]\naction = \"e\"\ndepends_on = [\"nope\"]\n"
        ))
        .unwrap_err();
        let text = error.to_string();
        assert!(text.contains("flows/test.toml:5:15"), "{text}");
        assert!(
            text.ends_with("flows/test.toml: 1 error; the workflow was not run"),
            "{text}"
        );
    }

    fn error_source(error: &SpecError) -> &str {
        match error {
            SpecError::Invalid { file, .. } => &file.text,
            SpecError::Read { .. } => "",
        }
    }
}
