//! What a node's expressions decide when it is about to start: whether it
//! runs (`when`), and its input (`input` templates, then `input_jq`), over
//! `{input, deps, run}`.

use jaq_json::Val;

use crate::expr;
use crate::report::{Failure, FailureKind};
use crate::spec::NodeSpec;

/// How the request starts; the node's input follows.
const HEAD: &str = "{\"input\":";

/// What a node about to start does.
pub(super) enum Start {
    /// Its `when` is false: it is skipped.
    Skip,
    /// It runs with this request, or fails at once with why its
    /// expressions could not compute it.
    Run(Result<String, Failure>),
}

/// Applies the node's expressions to `request`, the request built with its
/// input as written (`{"input":<input>,...}`); `run` is the run's JSON.
pub(super) fn start(node: &NodeSpec, request: String, run: &str) -> Start {
    let exprs = &node.exprs;
    if exprs.when.is_none() && !exprs.shape_input() {
        return Start::Run(Ok(request));
    }
    // What follows the input: `,"deps":{...}...}`.
    let rest = &request[HEAD.len() + node.input.len()..];
    // The context with the input as written, read once for `when` and the
    // templates.
    let written = match context(&node.input, rest, run) {
        Ok(context) => context,
        Err(failure) => return Start::Run(Err(failure)),
    };
    if let Some(when) = &exprs.when {
        match when.holds(written.clone()) {
            Ok(true) => {}
            Ok(false) => return Start::Skip,
            Err(error) => {
                return Start::Run(Err(failure(format!("`when` ({}): {error}", when.code()))));
            }
        }
    }
    Start::Run(match shape(node, written, rest, run) {
        Ok(Some(input)) => Ok(format!("{HEAD}{input}{rest}")),
        Ok(None) => Ok(request),
        Err(failure) => Err(failure),
    })
}

/// The input the node's templates and `input_jq` compute; `None` when it
/// has neither.
fn shape(node: &NodeSpec, written: Val, rest: &str, run: &str) -> Result<Option<String>, Failure> {
    let exprs = &node.exprs;
    let mut input = None;
    if let Some(template) = &exprs.template {
        let value = template
            .render(&written)
            .map_err(|error| failure(format!("its input could not be computed: {error}")))?;
        input = Some(value.to_string());
    }
    if let Some(program) = &exprs.input_jq {
        let context = match &input {
            Some(input) => context(input, rest, run)?,
            None => written,
        };
        let value = program
            .run_one(context)
            .and_then(|value| expr::to_json(&value))
            .map_err(|error| failure(format!("`input_jq` ({}): {error}", program.code())))?;
        input = Some(value.to_string());
    }
    Ok(input)
}

/// `{"input":<input>,"deps":...,"run":<run>}` as a value.
fn context(input: &str, rest: &str, run: &str) -> Result<Val, Failure> {
    let rest = rest.strip_suffix('}').unwrap_or(rest);
    let text = format!("{HEAD}{input}{rest},\"run\":{run}}}");
    expr::parse_json(&text).map_err(|error| failure(format!("cannot read its context: {error}")))
}

fn failure(message: String) -> Failure {
    Failure::new(FailureKind::Expression, message)
}
