//! Checks that turn the workflow file into a [`WorkflowSpec`]: ids,
//! dependencies, cycles, and actions against the plugins.

use std::collections::HashMap;
use std::sync::Arc;

use toml::Spanned;

use super::document::{self, Document, RawNode, shown};
use super::{ActionUse, Diagnostic, NodeSpec, Source, SpecError, WorkflowSpec};
use crate::dag::Dag;
use crate::runtime::{SECRET_ENV_PREFIX, Secrets};

/// Longest id accepted for workflows and nodes.
const MAX_ID_LEN: usize = 64;

const EXAMPLE_HEADER: &str = "start the file with:\n\n    [workflow]\n    id = \"my-workflow\"";

/// Most names a help text lists before "and N more".
const LISTED: usize = 10;

pub(super) fn workflow(source: Arc<Source>) -> Result<WorkflowSpec, SpecError> {
    let mut problems = Vec::new();
    let Some(read) = document::read(&source.path, &source.text, &mut problems) else {
        return Err(SpecError::invalid(&source, problems));
    };
    let id = check_header(&read, &mut problems);
    if !read.has_nodes {
        let at = read.header.as_ref().map_or(0, |span| span.start);
        problems.push(
            Diagnostic::new("the workflow has no nodes", Some(at..at))
                .help("add a node, for example:\n\n    [nodes.hello]\n    action = \"echo\"\n    input = { message = \"hi\" }"),
        );
    }
    let index: HashMap<&str, usize> = read
        .nodes
        .iter()
        .enumerate()
        .map(|(i, node)| (node.id.get_ref().as_str(), i))
        .collect();
    let mut dependencies = Vec::with_capacity(read.nodes.len());
    for (position, node) in read.nodes.iter().enumerate() {
        check_id(&node.id, "node", &mut problems);
        if node.action.is_none() {
            problems.push(
                Diagnostic::new(
                    format!("node `{}` has no `action`", shown(node.id.get_ref())),
                    Some(node.id.span()),
                )
                .help("name the plugin that runs it: action = \"echo\""),
            );
        }
        dependencies.push(resolve(position, node, &index, &read.nodes, &mut problems));
        undeclared_reads(node, &mut problems);
    }
    // Cycles among the dependencies that exist, whatever else is wrong.
    let dag = match Dag::new(dependencies) {
        Ok(dag) => Some(dag),
        Err(cycles) => {
            for cycle in &cycles {
                problems.push(cycle_diagnostic(cycle, &read.nodes));
            }
            None
        }
    };
    missing_directories(&source, &read.nodes, &mut problems);
    let uses = action_uses(&read.nodes);
    match dag {
        Some(dag) if problems.is_empty() => Ok(build(source, id, read, dag)),
        _ => Err(SpecError::invalid(&source, problems).with_uses(read.plugins, uses)),
    }
}

/// A problem for each granted host directory that is not a directory.
fn missing_directories(source: &Source, nodes: &[RawNode], problems: &mut Vec<Diagnostic>) {
    let base = source.dir();
    let mut reported = std::collections::HashSet::new();
    for node in nodes {
        for file in &node.options.grants.files {
            let dir = file.host_dir(base);
            if dir.is_dir() {
                continue;
            }
            let span = node.option_spans.get("files").cloned();
            if !reported.insert((dir.clone(), span.clone().map(|s| s.start))) {
                continue;
            }
            problems.push(
                Diagnostic::new(
                    format!(
                        "the directory {} granted to node `{}` as {} does not exist",
                        dir.display(),
                        shown(node.id.get_ref()),
                        file.guest
                    ),
                    span,
                )
                .help("create it, or correct `host` (relative paths start at the workflow file's directory)"),
            );
        }
    }
}

/// A problem for each secret a node is granted that `secrets` lacks.
pub(super) fn missing_secrets(spec: &WorkflowSpec, secrets: &Secrets) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    let mut reported = std::collections::HashSet::new();
    for node in &spec.nodes {
        for name in &node.options.grants.secrets {
            if secrets.contains(name) {
                continue;
            }
            let span = node.option_spans.get("secrets").cloned();
            if !reported.insert((name.clone(), span.clone().map(|s| s.start))) {
                continue;
            }
            problems.push(
                Diagnostic::new(
                    format!("the secret {name} of node `{}` is not set", node.id),
                    span,
                )
                .help(format!(
                    "set the environment variable {SECRET_ENV_PREFIX}{name}, or add {name}=value to the secrets file"
                )),
            );
        }
    }
    problems
}

/// The workflow's id, once checked.
fn check_header(read: &Document, problems: &mut Vec<Diagnostic>) -> String {
    match (&read.header, &read.id) {
        (None, _) => {
            problems.push(
                Diagnostic::new("the file has no [workflow] table", Some(0..0))
                    .help(EXAMPLE_HEADER),
            );
            String::new()
        }
        (Some(_), None) if !read.header_is_table => String::new(),
        (Some(header), None) => {
            problems.push(
                Diagnostic::new("[workflow] has no `id`", Some(header.start..header.start))
                    .help("name the workflow: id = \"my-workflow\""),
            );
            String::new()
        }
        (Some(_), Some(id)) => {
            check_id(id, "workflow", problems);
            id.get_ref().clone()
        }
    }
}

/// The indices of a node's dependencies; a problem for each that is not
/// a node, is the node itself, or is listed twice.
fn resolve(
    position: usize,
    node: &RawNode,
    index: &HashMap<&str, usize>,
    nodes: &[RawNode],
    problems: &mut Vec<Diagnostic>,
) -> Vec<usize> {
    let id = shown(node.id.get_ref());
    let mut deps = Vec::with_capacity(node.depends_on.len());
    for dep in &node.depends_on {
        let name = dep.get_ref();
        match index.get(name.as_str()) {
            Some(&i) if i == position => problems.push(
                Diagnostic::new(format!("node `{id}` depends on itself"), Some(dep.span()))
                    .help(format!("remove `{}` from its depends_on", shown(name))),
            ),
            Some(&i) if deps.contains(&i) => problems.push(
                Diagnostic::new(
                    format!("node `{id}` lists `{}` twice in depends_on", shown(name)),
                    Some(dep.span()),
                )
                .help("list each dependency once"),
            ),
            Some(&i) => deps.push(i),
            None => problems.push(
                Diagnostic::new(
                    format!(
                        "node `{id}` depends on `{}`, which is not a node of this workflow",
                        shown(name)
                    ),
                    Some(dep.span()),
                )
                .label("unknown node")
                .help(suggest(
                    name,
                    nodes.iter().map(|n| n.id.get_ref().as_str()),
                    "nodes",
                )),
            ),
        }
    }
    deps
}

/// A problem for each dependency a node's expressions read (`.deps.x`)
/// that the node does not depend on: its value would always be `null`.
fn undeclared_reads(node: &RawNode, problems: &mut Vec<Diagnostic>) {
    let exprs = &node.exprs;
    let programs = exprs
        .template
        .iter()
        .flat_map(|template| template.programs())
        .map(|code| ("input", code))
        .chain(exprs.input_jq.iter().map(|expr| ("input_jq", expr.code())))
        .chain(exprs.when.iter().map(|expr| ("when", expr.code())));
    let mut reported = Vec::new();
    for (key, code) in programs {
        for dep in crate::expr::deps_read(code) {
            if node.depends_on.iter().any(|d| d.get_ref() == dep) || reported.contains(&dep) {
                continue;
            }
            reported.push(dep);
            problems.push(
                Diagnostic::new(
                    format!(
                        "`{key}` of node `{}` reads `.deps.{}`, but the node does not depend on `{}`",
                        shown(node.id.get_ref()),
                        shown(dep),
                        shown(dep)
                    ),
                    Some(node.id.span()),
                )
                .help(format!("add \"{dep}\" to its depends_on, or it is always null")),
            );
        }
    }
}

/// Where each node names its action, for checking them against plugins.
fn action_uses(nodes: &[RawNode]) -> Vec<ActionUse> {
    nodes
        .iter()
        .filter_map(|node| {
            let action = node.action.as_ref()?;
            Some(ActionUse {
                node: node.id.get_ref().clone(),
                action: action.get_ref().clone(),
                span: action.span(),
            })
        })
        .collect()
}

fn build(source: Arc<Source>, id: String, read: Document, dag: Dag) -> WorkflowSpec {
    let nodes: Vec<NodeSpec> = read
        .nodes
        .into_iter()
        .map(|node| {
            let action = node.action.expect("checked: every node has an action");
            NodeSpec {
                id: node.id.into_inner(),
                action_span: action.span(),
                action: action.into_inner(),
                input: Arc::from(node.input),
                depends_on: node
                    .depends_on
                    .into_iter()
                    .map(Spanned::into_inner)
                    .collect(),
                options: node.options,
                option_spans: node.option_spans,
                exprs: node.exprs,
            }
        })
        .collect();
    let index = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| (node.id.clone(), i))
        .collect();
    WorkflowSpec {
        id,
        description: read.description,
        options: read.options,
        overrides: Default::default(),
        plugins: read.plugins,
        params: read.params,
        param_values: None,
        nodes,
        dag,
        source,
        index,
    }
}

pub(super) fn actions<'a>(
    spec: &WorkflowSpec,
    available: impl IntoIterator<Item = &'a str> + Clone,
) -> Result<(), SpecError> {
    let uses: Vec<ActionUse> = spec
        .nodes
        .iter()
        .map(|node| ActionUse {
            node: node.id.clone(),
            action: node.action.clone(),
            span: node.action_span.clone(),
        })
        .collect();
    let problems = unknown_actions(&uses, available);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(SpecError::invalid(&spec.source, problems))
    }
}

/// A problem for each use of an action no plugin provides.
pub(super) fn unknown_actions<'a>(
    uses: &[ActionUse],
    available: impl IntoIterator<Item = &'a str> + Clone,
) -> Vec<Diagnostic> {
    let names: std::collections::HashSet<&str> = available.clone().into_iter().collect();
    uses.iter()
        .filter(|use_| !names.contains(use_.action.as_str()))
        .map(|use_| {
            Diagnostic::new(
                format!(
                    "node `{}` uses action `{}`, which no plugin provides",
                    shown(&use_.node),
                    shown(&use_.action)
                ),
                Some(use_.span.clone()),
            )
            .label("unknown action")
            .help(
                suggest(&use_.action, available.clone(), "plugins")
                    + " (`flow plugins DIR` lists what a directory provides)",
            )
        })
        .collect()
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
                format!("invalid {what} id `{}`: {why}", shown(text)),
                Some(id.span()),
            )
            .help("ids use ASCII letters, digits, `-` and `_`, and start with a letter or a digit"),
        );
    }
}

fn cycle_diagnostic(cycle: &[usize], nodes: &[RawNode]) -> Diagnostic {
    let name = |i: usize| nodes[i].id.get_ref().as_str();
    const SHOWN: usize = 12;
    let mut path: Vec<String> = cycle.iter().take(SHOWN).map(|&i| shown(name(i))).collect();
    if cycle.len() > SHOWN {
        path.push(format!("... ({} more)", cycle.len() - SHOWN));
    }
    path.push(shown(name(cycle[0])));
    let first = &nodes[cycle[0]];
    // Point at the first node's dependency on the next node of the cycle.
    let next = name(*cycle.get(1).unwrap_or(&cycle[0]));
    let span = first
        .depends_on
        .iter()
        .find(|dep| dep.get_ref() == next)
        .map_or(first.id.span(), Spanned::span);
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
        None if candidates.len() > LISTED => format!(
            "the {what} are: {} and {} more",
            candidates[..LISTED].join(", "),
            candidates.len() - LISTED
        ),
        None => format!("the {what} are: {}", candidates.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

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
        assert_eq!(spec.plugins, [Path::new("flows/../plugins")]);
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
        assert_eq!(
            messages(""),
            [
                "the file has no [workflow] table",
                "the workflow has no nodes"
            ]
        );
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
        assert_eq!(
            diagnostic.message,
            "`depends_on` must be an array of node ids, not string"
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
