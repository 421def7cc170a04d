//! Checks that turn the workflow file into a [`WorkflowSpec`]: ids,
//! dependencies, cycles, and actions against the plugins.

use std::collections::HashMap;
use std::path::PathBuf;
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

/// Validates a workflow, and the workflow files its nodes run.
pub(super) fn workflow(source: Arc<Source>) -> Result<WorkflowSpec, SpecError> {
    validate_file(source, &[], &mut HashMap::new())
}

/// The sub-workflow files checked in one validation (see [`checked_key`]):
/// each file once however many nodes (or files) run it, so files that run
/// others twice over cost their number, not two to the power of it. A file
/// valid under one chain of files that run it is valid under any: a cycle
/// through it is found from the file itself.
type Checked = HashMap<PathBuf, Result<Arc<WorkflowSpec>, SubError>>;

/// What a sub-workflow file's errors say at the node that runs it: how
/// many there are and the first.
#[derive(Clone)]
struct SubError {
    count: usize,
    first: String,
}

/// Validates a workflow; `running` are the files of the workflows that run
/// this one as a sub-workflow, outermost first (empty for a workflow run
/// on its own), to refuse cycles of files.
fn validate_file(
    source: Arc<Source>,
    running: &[PathBuf],
    done: &mut Checked,
) -> Result<WorkflowSpec, SpecError> {
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
    let mut children = Vec::with_capacity(read.nodes.len());
    for (position, node) in read.nodes.iter().enumerate() {
        check_id(&node.id, "node", &mut problems);
        match (&node.action, &node.workflow) {
            (None, None) => problems.push(
                Diagnostic::new(
                    format!("node `{}` has no `action`", shown(node.id.get_ref())),
                    Some(node.id.span()),
                )
                .help("name the plugin that runs it: action = \"echo\" (or the workflow file it runs: workflow = \"other.toml\")"),
            ),
            (Some(_), Some(workflow)) => problems.push(
                Diagnostic::new(
                    format!(
                        "node `{}` has both an `action` and a `workflow`",
                        shown(node.id.get_ref())
                    ),
                    Some(workflow.span()),
                )
                .help("a node runs either a plugin (`action`) or another workflow file (`workflow`)"),
            ),
            _ => {}
        }
        if let (Some(file), Some(_)) = (&node.workflow, &node.exprs.map) {
            problems.push(
                Diagnostic::new(
                    format!(
                        "node `{}` runs a workflow and has a `map`; map over a sub-workflow is not supported",
                        shown(node.id.get_ref())
                    ),
                    Some(file.span()),
                )
                .help("map over a node of the sub-workflow instead"),
            );
        }
        children.push(
            node.workflow
                .as_ref()
                .and_then(|file| sub_workflow(&source, running, done, node, file, &mut problems)),
        );
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
        Some(dag) if problems.is_empty() => Ok(build(source, id, read, dag, children)),
        _ => Err(SpecError::invalid(&source, problems).with_uses(read.plugins, uses)),
    }
}

/// The sub-workflow a node runs, validated; a file that cannot be read, is
/// not valid, or runs a workflow that runs it (a cycle of files) is a
/// problem at the node's `workflow`.
fn sub_workflow(
    source: &Source,
    running: &[PathBuf],
    done: &mut Checked,
    node: &RawNode,
    file: &Spanned<String>,
    problems: &mut Vec<Diagnostic>,
) -> Option<Arc<WorkflowSpec>> {
    let id = shown(node.id.get_ref());
    let path = match source.path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(file.get_ref()),
        _ => PathBuf::from(file.get_ref()),
    };
    let problem = |message: String, help: &str| {
        Diagnostic::new(message, Some(file.span())).help(help.to_string())
    };
    let unreadable = |error: std::io::Error| {
        problem(
            format!(
                "the workflow file {} of node `{id}` cannot be read: {error}",
                path.display()
            ),
            "the path is relative to this workflow file's directory",
        )
    };
    let canonical = match std::fs::canonicalize(&path) {
        Ok(canonical) => canonical,
        Err(error) => {
            problems.push(unreadable(error));
            return None;
        }
    };
    let this = std::fs::canonicalize(&source.path).unwrap_or_else(|_| source.path.clone());
    let mut chain: Vec<PathBuf> = running.to_vec();
    chain.push(this);
    if let Some(first) = chain.iter().position(|file| *file == canonical) {
        let names: Vec<String> = chain[first..]
            .iter()
            .chain(std::iter::once(&canonical))
            .map(|file| short_name(file))
            .collect();
        problems.push(problem(
            format!(
                "node `{id}` runs {}, which is already running: {}",
                file.get_ref(),
                names.join(" → ")
            ),
            "a workflow cannot run itself, directly or through other workflows",
        ));
        return None;
    }
    // Keyed by the directory the file is read from (its own relative
    // paths start there), resolved, and its name: however the path is
    // written (`sub/../f.toml`), one file is checked once.
    let key = checked_key(&path);
    let checked = match done.get(&key) {
        Some(checked) => checked.clone(),
        None => {
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(error) => {
                    problems.push(unreadable(error));
                    return None;
                }
            };
            let child = Arc::new(Source {
                path: path.clone(),
                text,
                origin: super::Origin::File,
            });
            let checked = validate_file(child, &chain, done)
                .map(Arc::new)
                .map_err(|error| match &error {
                    SpecError::Invalid { diagnostics, .. } => SubError {
                        count: diagnostics.len(),
                        first: diagnostics
                            .first()
                            .map_or(String::new(), |d| d.message.clone()),
                    },
                    SpecError::Read { .. } => SubError {
                        count: 1,
                        first: error.to_string(),
                    },
                });
            done.insert(key, checked.clone());
            checked
        }
    };
    match checked {
        Ok(spec) => {
            static_params(&spec, node, file, problems);
            Some(spec)
        }
        Err(SubError { count, first }) => {
            problems.push(problem(
                format!(
                    "the workflow {} of node `{id}` has {count} error{}; the first: {first}",
                    file.get_ref(),
                    if count == 1 { "" } else { "s" }
                ),
                &format!("see them all with: flow validate {}", path.display()),
            ));
            None
        }
    }
}

/// Where a sub-workflow file is remembered in [`Checked`]: its directory
/// resolved, and its name as written.
fn checked_key(path: &std::path::Path) -> PathBuf {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => std::path::Path::new("."),
    };
    match (std::fs::canonicalize(dir), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

/// The parameters a node gives its sub-workflow, checked now when its
/// input is written out (no expressions compute it).
fn static_params(
    child: &WorkflowSpec,
    node: &RawNode,
    file: &Spanned<String>,
    problems: &mut Vec<Diagnostic>,
) {
    if node.exprs.shape_input() {
        return;
    }
    let id = shown(node.id.get_ref());
    let problem = match serde_json::from_str(&node.input) {
        Ok(serde_json::Value::Object(given)) => match super::params::resolve(&child.params, &given)
        {
            Ok(_) => return,
            Err(error) => format!(
                "the input of node `{id}` does not fit the parameters of workflow `{}`: {error}",
                child.id
            ),
        },
        _ => format!(
            "the input of node `{id}` gives the parameters of workflow `{}`: it must be a table",
            child.id
        ),
    };
    problems.push(Diagnostic::new(problem, Some(file.span())).help(format!(
        "the node's input is the [params] of {}",
        file.get_ref()
    )));
}

/// A file's name as a cycle shows it.
fn short_name(path: &std::path::Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
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
        .chain(exprs.when.iter().map(|expr| ("when", expr.code())))
        .chain(exprs.map.iter().map(|expr| ("map", expr.code())));
    let mut reported = Vec::new();
    for (key, code) in programs {
        element_reads(node, key, code, problems);
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

/// A problem when a program reads a map element's `.item` or `.index`
/// where there is none: in a node without `map`, or in its `when` or `map`
/// (evaluated once for the whole node).
fn element_reads(node: &RawNode, key: &str, code: &str, problems: &mut Vec<Diagnostic>) {
    let Some(root) = ["item", "index"]
        .into_iter()
        .find(|root| crate::expr::reads(code, root))
    else {
        return;
    };
    let id = shown(node.id.get_ref());
    let (why, help) = match (&node.exprs.map, key) {
        (None, _) => (
            "the node has no `map`".to_string(),
            format!("`.{root}` is the element of a map node: add `map = '...'` or read .deps"),
        ),
        (Some(_), "when" | "map") => (
            format!("`{key}` is evaluated once for the whole node"),
            format!("read `.{root}` in the input's expressions, which run for each element"),
        ),
        _ => return,
    };
    problems.push(
        Diagnostic::new(
            format!("`{key}` of node `{id}` reads `.{root}`, but {why}"),
            Some(node.id.span()),
        )
        .help(help),
    );
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

fn build(
    source: Arc<Source>,
    id: String,
    read: Document,
    dag: Dag,
    children: Vec<Option<Arc<WorkflowSpec>>>,
) -> WorkflowSpec {
    let nodes: Vec<NodeSpec> = read
        .nodes
        .into_iter()
        .zip(children)
        .map(|(node, workflow)| {
            // Checked: every node has an action or a workflow.
            let (action, action_span) = match (node.action, &workflow) {
                (Some(action), _) => (action.get_ref().clone(), action.span()),
                (None, Some(child)) => (
                    format!("workflow:{}", child.id),
                    node.workflow.as_ref().map_or(0..0, Spanned::span),
                ),
                (None, None) => (String::new(), 0..0),
            };
            NodeSpec {
                id: node.id.into_inner(),
                action_span,
                action,
                workflow,
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
        cron: read.cron,
        nodes,
        dag,
        source,
        index,
    }
}

/// Checks the actions of the workflow's sub-workflows (each once), then
/// its own.
pub(super) fn actions<'a>(
    spec: &WorkflowSpec,
    available: impl IntoIterator<Item = &'a str> + Clone,
) -> Result<(), SpecError> {
    for child in spec.sub_workflows() {
        own_actions(child, available.clone())?;
    }
    own_actions(spec, available)
}

fn own_actions<'a>(
    spec: &WorkflowSpec,
    available: impl IntoIterator<Item = &'a str> + Clone,
) -> Result<(), SpecError> {
    let uses: Vec<ActionUse> = spec
        .nodes
        .iter()
        .filter(|node| node.workflow.is_none())
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
    // A name is close when a few edits make it; names whose lengths
    // differ by more are not compared (that costs length times length).
    let length = name.chars().count();
    let close = candidates
        .iter()
        .filter_map(|c| {
            let most = (c.len() / 3).max(1);
            (length.abs_diff(c.chars().count()) <= most)
                .then(|| (strsim::damerau_levenshtein(name, c), *c))
                .filter(|(distance, _)| *distance <= most)
        })
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
    fn each_sub_workflow_file_is_checked_once_however_often_it_runs() {
        // 40 files, each with two nodes that run the next: checked node by
        // node, the last file would be read 2^40 times.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let files = 40;
        for i in 0..files {
            let text = if i + 1 < files {
                // The second node writes the path another way.
                format!(
                    "[workflow]\nid = \"f{i}\"\n[nodes.a]\nworkflow = \"f{next}.toml\"\n\
                     [nodes.b]\nworkflow = \"sub/../f{next}.toml\"\n",
                    next = i + 1
                )
            } else {
                "[workflow]\nid = \"last\"\n[nodes.a]\naction = \"echo\"\n".to_string()
            };
            std::fs::write(dir.path().join(format!("f{i}.toml")), text).unwrap();
        }
        let top = dir.path().join("f0.toml");
        let text = std::fs::read_to_string(&top).unwrap();
        let spec = WorkflowSpec::parse(&top, text.clone()).unwrap();
        // Walked once per file, not once per path through the files.
        assert_eq!(spec.sub_workflows().len(), files - 1);
        assert!(spec.check_actions(["echo"]).is_ok());
        assert!(spec.check_actions(["other"]).is_err());
        assert_eq!(spec.actions().into_iter().collect::<Vec<_>>(), ["echo"]);
        let mut depth = 0;
        let mut at = Some(Arc::new(spec));
        while let Some(spec) = at {
            depth += 1;
            at = spec.nodes[0].workflow.clone();
        }
        assert_eq!(depth, files);
        // An error deep down is told at each node that runs its file.
        std::fs::write(
            dir.path().join(format!("f{}.toml", files - 1)),
            "[workflow]\nid = \"last\"\n[nodes.a]\naction = \"echo\"\ndepends_on = [\"x\"]\n",
        )
        .unwrap();
        let error = WorkflowSpec::parse(&top, text).unwrap_err();
        let diagnostics = error.diagnostics();
        assert_eq!(diagnostics.len(), 2, "{error}");
        let message = &diagnostics[0].message;
        assert!(
            message.starts_with("the workflow f1.toml of node `a` has 2 errors")
                && message.ends_with("depends on `x`, which is not a node of this workflow"),
            "{error}"
        );
    }

    #[test]
    fn a_huge_unknown_name_is_not_compared_with_every_candidate() {
        // Comparing a 1 MB name with 2,000 names letter by letter would
        // take minutes; no name that long is a few edits from a short one.
        let names: Vec<String> = (0..2_000).map(|i| format!("node{i}")).collect();
        let help = suggest(
            &"n".repeat(1 << 20),
            names.iter().map(String::as_str),
            "nodes",
        );
        assert!(help.starts_with("the nodes are: node0, node1"), "{help}");
        assert_eq!(
            suggest("node12x", names.iter().map(String::as_str), "nodes"),
            "did you mean `node12`?"
        );
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
