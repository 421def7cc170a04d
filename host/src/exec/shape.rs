//! A node's input shaped by its expressions when it is about to start:
//! `input` templates, then `input_jq`, over `{input, deps, run}`.

use crate::expr::{self, Expr};
use crate::report::{Failure, FailureKind};
use crate::spec::NodeSpec;

/// The request of a node with expressions: `request` is the one built with
/// its input as written (`{"input":<input>,...}`), `run` the run's JSON.
pub(super) fn shaped_request(node: &NodeSpec, request: &str, run: &str) -> Result<String, Failure> {
    let exprs = &node.exprs;
    let head = "{\"input\":";
    // What follows the input: `,"deps":{...}...}`.
    let rest = &request[head.len() + node.input.len()..];
    let mut input = node.input.to_string();
    if let Some(template) = &exprs.template {
        let context = context(&input, rest, run)?;
        input = template
            .render(&context)
            .map_err(|error| failure(format!("its input could not be computed: {error}")))?
            .to_string();
    }
    if let Some(program) = &exprs.input_jq {
        let value = program
            .run_one(context(&input, rest, run)?)
            .and_then(|value| expr::to_json(&value))
            .map_err(|error| failure(format!("`input_jq` ({}): {error}", program.code())))?;
        input = value.to_string();
    }
    Ok(format!("{head}{input}{rest}"))
}

/// Whether the node's `when` holds over `{input, deps, run}` (the input as
/// written).
pub(super) fn condition(
    node: &NodeSpec,
    when: &Expr,
    request: &str,
    run: &str,
) -> Result<bool, Failure> {
    let rest = &request["{\"input\":".len() + node.input.len()..];
    when.holds(context(&node.input, rest, run)?)
        .map_err(|error| failure(format!("`when` ({}): {error}", when.code())))
}

/// `{"input":<input>,"deps":...,"run":<run>}` as a value.
fn context(input: &str, rest: &str, run: &str) -> Result<jaq_json::Val, Failure> {
    let rest = rest.strip_suffix('}').unwrap_or(rest);
    let text = format!("{{\"input\":{input}{rest},\"run\":{run}}}");
    expr::parse_json(&text).map_err(|error| failure(format!("cannot read its context: {error}")))
}

fn failure(message: String) -> Failure {
    Failure::new(FailureKind::Expression, message)
}
