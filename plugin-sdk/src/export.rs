//! The glue between the generated bindings and an author's function.

use serde::de::DeserializeOwned;

use crate::__private::{PluginInfo, RunContext};
use crate::{ActionError, IntoOutput, Request};

/// Where an attempt runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// `id` of the workflow, from the workflow file.
    pub workflow_id: String,
    /// Identifier of this run of the workflow.
    pub run_id: String,
    /// Id of the node being executed.
    pub node_id: String,
    /// Attempt number, starting at 1.
    pub attempt: u32,
}

impl Context {
    /// A context for calling an action function in a native unit test.
    pub fn for_tests(node_id: &str) -> Self {
        Self {
            workflow_id: "test".into(),
            run_id: "test-run".into(),
            node_id: node_id.into(),
            attempt: 1,
        }
    }
}

impl From<RunContext> for Context {
    fn from(ctx: RunContext) -> Self {
        Self {
            workflow_id: ctx.workflow_id,
            run_id: ctx.run_id,
            node_id: ctx.node_id,
            attempt: ctx.attempt,
        }
    }
}

/// Builds the `describe` answer.
pub fn describe(name: &str, version: &str, description: &str) -> PluginInfo {
    PluginInfo {
        name: name.into(),
        version: version.into(),
        description: description.into(),
    }
}

/// Parses the request, calls the author's function and serialises its output.
pub fn run<I, O, F>(
    ctx: RunContext,
    input: String,
    action: F,
) -> Result<String, crate::__private::ActionError>
where
    I: DeserializeOwned,
    O: IntoOutput,
    F: FnOnce(&Context, Request<I>) -> Result<O, ActionError>,
{
    // The import stays in the component even when the action reads no
    // output, so that the host never copies outputs into it unasked.
    std::hint::black_box(crate::deps::host_output as fn(&str) -> Option<String>);
    let ctx = Context::from(ctx);
    let request = Request::from_text(input)?;
    let output = action(&ctx, request)?;
    Ok(output.into_json()?)
}
