//! The workflow file: its TOML model, loading and validation.
//!
//! [`WorkflowSpec::load`] reads a file and checks everything that can be
//! checked without plugins: syntax, value types, unknown fields, ids,
//! dependencies and cycles. [`WorkflowSpec::check_actions`] then checks each
//! node's `action` against the loaded plugins. Every problem is reported as
//! a [`Diagnostic`] that points at the file, line and column.

mod builder;
pub mod cron;
mod diagnostic;
mod document;
mod params;
mod validate;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use builder::{NodeBuilder, WorkflowBuilder, is_built};
pub use cron::{CronSchedule, Overlap};
pub use diagnostic::{ActionUse, Diagnostic, SpecError};
pub use params::{Param, ParamError, ParamType, Params};
pub use validate::suggest;

use crate::dag::Dag;
use crate::expr::{Expr, Template};
use crate::options::{NodeOptions, Overrides, WorkflowOptions};
use crate::runtime::Secrets;

/// A workflow file, parsed and validated.
///
/// Two workflows are equal when they have the same id, description,
/// options, plugins search path and nodes, wherever their text came from.
#[derive(Debug, Clone)]
pub struct WorkflowSpec {
    /// `[workflow] id`.
    pub id: String,
    /// `[workflow] description`.
    pub description: Option<String>,
    /// How the workflow runs.
    pub options: WorkflowOptions,
    /// The command-line options applied over the file's.
    pub overrides: Overrides,
    /// `[workflow] plugins`: the plugins search path, each directory
    /// resolved against the file's; empty when the file names none.
    pub plugins: Vec<PathBuf>,
    /// `[params]`: the run parameters the workflow declares.
    pub params: Params,
    /// The values of the parameters for the next run, once given with
    /// [`set_params`](Self::set_params); a run started without them uses
    /// the defaults (a resumed one, the values it started with).
    pub param_values: Option<serde_json::Map<String, serde_json::Value>>,
    /// `[workflow] cron`: when `flow serve` starts runs by itself.
    pub cron: Option<CronSchedule>,
    /// Nodes in the order the file declares them.
    pub nodes: Vec<NodeSpec>,
    /// The dependency graph of `nodes` (indices into `nodes`).
    pub dag: Dag,
    /// Where the workflow came from, for messages and the run record.
    pub source: Arc<Source>,
    /// Index of each node by id.
    pub(crate) index: HashMap<String, usize>,
}

impl PartialEq for WorkflowSpec {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.id,
            &self.description,
            &self.options,
            &self.overrides,
            &self.plugins,
            &self.params,
            &self.cron,
            &self.nodes,
        ) == (
            &other.id,
            &other.description,
            &other.options,
            &other.overrides,
            &other.plugins,
            &other.params,
            &other.cron,
            &other.nodes,
        )
    }
}

/// A node of the workflow.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// The node's id (the key of its `[nodes.<id>]` table).
    pub id: String,
    /// Name of the plugin that runs it.
    pub action: String,
    /// The node's `input`, as JSON text (`{}` when absent).
    pub input: Arc<str>,
    /// Ids of the nodes it depends on, as written.
    pub depends_on: Vec<String>,
    /// Its retry policy and limits: `[defaults]`, then its own table.
    pub options: NodeOptions,
    /// Byte range of the `action` value in the file.
    pub(crate) action_span: std::ops::Range<usize>,
    /// Where its options were set, by key, for messages about them.
    pub(crate) option_spans: document::OptionSpans,
    /// Its `input` templates, `input_jq` and `when`.
    pub exprs: NodeExprs,
    /// For a node that runs another workflow file (`workflow = "..."`):
    /// that workflow, validated with this one. Its `action` is then
    /// `workflow:<its id>`.
    pub workflow: Option<Arc<WorkflowSpec>>,
}

/// The expressions of a node, compiled when the workflow is validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeExprs {
    /// The templates (`"${{ ... }}"`) of its `input`, when it has some.
    pub template: Option<Template>,
    /// `input_jq`: a program whose value is the node's input.
    pub input_jq: Option<Expr>,
    /// `when`: the node runs only if this program's value is true.
    pub when: Option<Expr>,
    /// `map`: the node runs once per element of the list this program
    /// gives.
    pub map: Option<Expr>,
    /// The node's input as written, read once for its expressions (when
    /// it has some).
    pub written: Option<jaq_json::Val>,
}

impl NodeExprs {
    /// Whether the node's input is computed when it starts.
    pub fn shape_input(&self) -> bool {
        self.template.is_some() || self.input_jq.is_some()
    }
}

impl PartialEq for NodeSpec {
    /// Equal in what they mean; where the text is does not matter.
    fn eq(&self, other: &Self) -> bool {
        (
            &self.id,
            &self.action,
            &self.input,
            &self.depends_on,
            &self.options,
            &self.exprs,
            &self.workflow,
        ) == (
            &other.id,
            &other.action,
            &other.input,
            &other.depends_on,
            &other.options,
            &other.exprs,
            &other.workflow,
        )
    }
}

/// The text of a workflow file and where it was read from.
#[derive(Debug)]
pub struct Source {
    /// Path as the user gave it. For a workflow built in code, a name in
    /// its base directory: `<orders: built in code>`.
    pub path: PathBuf,
    /// The whole file.
    pub text: String,
    /// Whether the text was read from a file or written by a builder.
    pub origin: Origin,
}

/// Where a workflow's text comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A workflow file.
    File,
    /// A [`WorkflowBuilder`]: the text is its rendering, and problems are
    /// reported by node and key rather than by line.
    Code,
}

impl Source {
    /// The directory of the file, which its relative paths start from.
    pub fn dir(&self) -> &Path {
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        }
    }
}

impl WorkflowSpec {
    /// Reads and validates a workflow file.
    pub fn load(path: &Path) -> Result<Self, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|error| SpecError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Self::parse(path, text)
    }

    /// Validates workflow text; `path` is used in messages and to resolve
    /// `plugins`.
    pub fn parse(path: &Path, text: String) -> Result<Self, SpecError> {
        let source = Arc::new(Source {
            path: path.to_path_buf(),
            text,
            origin: Origin::File,
        });
        validate::workflow(source)
    }

    /// The workflows its nodes run (`workflow = "..."`), and theirs, each
    /// once however many nodes run it (files whose nodes each run the next
    /// twice over are as many, not two to the power of their number).
    pub fn sub_workflows(&self) -> Vec<&WorkflowSpec> {
        let mut found: Vec<&WorkflowSpec> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![self];
        while let Some(spec) = stack.pop() {
            for child in spec
                .nodes
                .iter()
                .filter_map(|node| node.workflow.as_deref())
            {
                if seen.insert(std::ptr::from_ref(child)) {
                    found.push(child);
                    stack.push(child);
                }
            }
        }
        found
    }

    /// The actions its nodes and its sub-workflows' nodes name.
    pub fn actions(&self) -> std::collections::BTreeSet<&str> {
        std::iter::once(self)
            .chain(self.sub_workflows())
            .flat_map(|spec| spec.nodes.iter())
            .filter(|node| node.workflow.is_none())
            .map(|node| node.action.as_str())
            .collect()
    }

    /// The workflow as a workflow file: for a file, its text; for a built
    /// workflow, the file the builder wrote, which loads back to an equal
    /// workflow. Options applied with [`apply_overrides`](Self::apply_overrides)
    /// are not in it.
    pub fn to_toml(&self) -> &str {
        &self.source.text
    }

    /// Checks that every node's action is one of `available` (plugin names).
    pub fn check_actions<'a>(
        &self,
        available: impl IntoIterator<Item = &'a str> + Clone,
    ) -> Result<(), SpecError> {
        validate::actions(self, available)
    }

    /// Gives the run parameters their values: `given` over the defaults.
    /// A string given for a parameter of another type is read as that type
    /// (`"25"` for an integer), as `flow run --param limit=25` gives it.
    /// Unknown names, missing required parameters and values of the wrong
    /// type are refused, all named.
    pub fn set_params(
        &mut self,
        given: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), ParamError> {
        self.param_values = Some(params::resolve(&self.params, given)?);
        Ok(())
    }

    /// The parameters' values for a run: those set, or the defaults.
    pub fn resolved_params(
        &self,
    ) -> Result<serde_json::Map<String, serde_json::Value>, ParamError> {
        match &self.param_values {
            Some(values) => Ok(values.clone()),
            None => params::resolve(&self.params, &serde_json::Map::new()),
        }
    }

    /// Applies options given on the command line over the file's.
    pub fn apply_overrides(&mut self, overrides: &Overrides) {
        self.overrides = overrides.clone();
        overrides.apply_workflow(&mut self.options);
        for node in &mut self.nodes {
            overrides.apply_node(&mut node.options);
        }
    }

    /// The directory a node's relative host paths (`files`) start from:
    /// the workflow file's.
    pub fn base_dir(&self) -> &Path {
        self.source.dir()
    }

    /// Checks that the host holds every secret a node is granted.
    pub fn check_secrets(&self, secrets: &Secrets) -> Result<(), SpecError> {
        let problems = validate::missing_secrets(self, secrets);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SpecError::invalid(&self.source, problems))
        }
    }

    /// The names of the secrets the workflow's nodes are granted.
    pub fn secret_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .nodes
            .iter()
            .flat_map(|node| node.options.grants.secrets.iter().cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Index of the node with this id.
    pub fn node_index(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }
}
