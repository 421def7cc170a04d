//! `flow graph`: the workflow's DAG as DOT or Mermaid text.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use flow_host::observe::NodeStates;
use flow_host::{NodeStatus, WorkflowSpec};

use super::{Context, Exit, UsageError, out};

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// The workflow file
    workflow: PathBuf,

    /// The output format
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    format: GraphFormat,

    /// Colour the nodes by their state in this run (an id or its beginning)
    #[arg(long, value_name = "RUN_ID")]
    run: Option<String>,
}

/// Text formats for graphs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GraphFormat {
    /// Graphviz DOT (render with `dot -Tsvg`)
    Dot,
    /// A Mermaid flowchart (GitHub and many wikis render it in Markdown)
    Mermaid,
}

static PENDING: NodeStatus = NodeStatus::Pending;

pub fn run(context: &Context, args: GraphArgs) -> anyhow::Result<Exit> {
    let spec = WorkflowSpec::load(&args.workflow)?;
    let records = match &args.run {
        Some(id) => {
            let store = context.open_reader()?;
            let run = store.find_run(id)?;
            if run.workflow_id != spec.id {
                return Err(UsageError(format!(
                    "run {} is of workflow `{}`, not of `{}` ({}); pass that run's workflow file",
                    run.run_id,
                    run.workflow_id,
                    spec.id,
                    args.workflow.display()
                ))
                .into());
            }
            let nodes = store.nodes(&run.run_id)?;
            super::close_reader(store)?;
            nodes
        }
        None => Vec::new(),
    };
    let mut states: NodeStates<'_> = records
        .iter()
        .map(|node| (node.node_id.as_str(), &node.status))
        .collect();
    if args.run.is_some() {
        // Nodes the run never reached have no record yet.
        for node in &spec.nodes {
            states.entry(node.id.as_str()).or_insert(&PENDING);
        }
    }
    let text = match args.format {
        GraphFormat::Dot => spec.to_dot(&states),
        GraphFormat::Mermaid => spec.to_mermaid(&states),
    };
    let mut out = out::stdout();
    std::io::Write::write_all(&mut out, text.as_bytes())?;
    std::io::Write::flush(&mut out)?;
    Ok(Exit::Success)
}
