//! What a node's expressions decide when it is about to start: whether it
//! runs (`when`), over which list (`map`), and its input (`input`
//! templates, then `input_jq`), over `{input, deps, run}` (and, for an
//! element of a map, `item` and `index`).

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
    /// It runs once per element of a list, or fails at once with why its
    /// `map` could not compute the list.
    Map(Result<MapInput, Failure>),
}

/// What the elements of a map node are computed from.
pub(super) struct MapInput {
    /// `{input, deps, run}` of the node, with its input as written.
    pub context: Val,
    /// The list `map` gave.
    pub items: Vec<Val>,
}

/// Applies the node's expressions to `request`, the request built with its
/// input as written (`{"input":<input>,...}`); `context` builds the
/// document they read, `{input, deps, run}` with the input as written,
/// when the node has expressions.
pub(super) fn start(
    node: &NodeSpec,
    request: String,
    context: impl FnOnce() -> Result<Val, Failure>,
) -> Start {
    let exprs = &node.exprs;
    if exprs.when.is_none() && exprs.map.is_none() && !exprs.shape_input() {
        return Start::Run(Ok(request));
    }
    // What follows the input: `,"deps":{...}...}`.
    let rest = &request[HEAD.len() + node.input.len()..];
    // The context with the input as written, for `when`, `map` and the
    // templates.
    let written = match context() {
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
    if let Some(map) = &exprs.map {
        return Start::Map(match map.run_one(written.clone()) {
            Ok(Val::Arr(items)) => Ok(MapInput {
                context: written,
                items: std::sync::Arc::unwrap_or_clone(items),
            }),
            Ok(other) => Err(failure(format!(
                "`map` ({}) gave {}, not a list",
                map.code(),
                expr::type_name(&other)
            ))),
            Err(error) => Err(failure(format!("`map` ({}): {error}", map.code()))),
        });
    }
    Start::Run(
        match compute_input(node, written, "its input could not be computed", "") {
            Ok(Some(input)) => Ok(format!("{HEAD}{input}{rest}")),
            Ok(None) => Ok(request),
            Err(failure) => Err(failure),
        },
    )
}

/// The input computed by the node's templates, then its `input_jq` (over
/// the document with `.input` replaced by what the templates gave); `None`
/// when it has neither. `failed` starts a template's error, `whom` follows
/// `input_jq` in one.
fn compute_input(
    node: &NodeSpec,
    context: Val,
    failed: &str,
    whom: &str,
) -> Result<Option<serde_json::Value>, Failure> {
    let exprs = &node.exprs;
    let mut input = None;
    if let Some(template) = &exprs.template {
        let value = template
            .render(&context)
            .map_err(|error| failure(format!("{failed}: {error}")))?;
        input = Some(value);
    }
    if let Some(program) = &exprs.input_jq {
        let context = match &input {
            Some(input) => {
                let input = expr::parse_json(&input.to_string())
                    .map_err(|error| failure(format!("cannot read its input: {error}")))?;
                expr::with_field(&context, "input", input)
            }
            None => context,
        };
        let value = program
            .run_one(context)
            .and_then(|value| expr::to_json(&value))
            .map_err(|error| failure(format!("`input_jq` ({}){whom}: {error}", program.code())))?;
        input = Some(value);
    }
    Ok(input)
}

/// The request of element `index` of a map node: `{"input":<input>,
/// "item":<item>,"index":<index>}`, its input computed by the node's
/// expressions over the node's context with `item` and `index` added. The
/// dependencies' outputs are not repeated in each element's request: an
/// element takes what it needs of them through its input's expressions.
pub(super) fn element(
    node: &NodeSpec,
    context: &Val,
    item: Val,
    index: usize,
) -> Result<String, Failure> {
    let item_json = expr::to_json(&item)
        .map_err(|error| failure(format!("element {index} cannot be passed as JSON: {error}")))?;
    let input = if node.exprs.shape_input() {
        let context = expr::with_field(context, "item", item);
        let context = expr::with_field(&context, "index", Val::from(index));
        let failed = format!("the input of element {index} could not be computed");
        compute_input(node, context, &failed, &format!(" for element {index}"))?
            .map(|input| input.to_string())
    } else {
        None
    };
    let input = input.as_deref().unwrap_or(&node.input);
    Ok(format!(
        "{HEAD}{input},\"item\":{item_json},\"index\":{index}}}"
    ))
}

fn failure(message: String) -> Failure {
    Failure::new(FailureKind::Expression, message)
}
