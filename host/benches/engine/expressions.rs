//! What a node's expressions cost when it starts: the engine's work for
//! one node, timed over many nodes, as `exec/ready.rs` and `exec/shape.rs`
//! do it. The node's input is read, the context document is put together
//! from the dependency's output (read once per run, as the engine keeps
//! it) and the run, the templates or the program run, and the input is
//! written back as JSON.

use std::time::{Duration, Instant};

use flow_host::expr::{Expr, Template, context, parse_json, to_json};
use jaq_json::Val;

/// Nodes evaluated per run of the scenario.
const NODES: usize = 100_000;

/// The typical template: `{ user = "${{ deps.fetch.body.user }}" }`.
pub fn path() -> serde_json::Value {
    render(serde_json::json!({ "user": "${{ deps.fetch.body.user }}" }))
}

/// `${{ deps.fetch.body.user }}` and text with two templates.
pub fn template() -> serde_json::Value {
    render(serde_json::json!({
        "user": "${{ deps.fetch.body.user }}",
        "text": "Dear ${{ deps.fetch.body.user.name }} of ${{ run.workflow }}"
    }))
}

fn render(input: serde_json::Value) -> serde_json::Value {
    let template = Template::parse(&input).unwrap().unwrap();
    let written = parse_json(&input.to_string()).unwrap();
    let (dep, run) = (parse_json(DEP).unwrap(), parse_json(RUN).unwrap());
    time(|| {
        let context = document(&written, &dep, &run);
        template.render(&context).unwrap().to_string()
    })
}

/// `input_jq = '{ids: [.deps.fetch.list[] | .id]}'`.
pub fn program() -> serde_json::Value {
    let program = Expr::compile("{ids: [.deps.fetch.list[] | .id]}").unwrap();
    let (dep, run) = (parse_json(DEP).unwrap(), parse_json(RUN).unwrap());
    let written = parse_json("{}").unwrap();
    time(|| {
        let context = document(&written, &dep, &run);
        to_json(&program.run_one(context).unwrap())
            .unwrap()
            .to_string()
    })
}

/// A dependency's output of about 200 bytes.
const DEP: &str = r#"{"body":{"user":{"name":"Ada","id":7,"email":"ada@example.org"}},"list":[{"id":1},{"id":2},{"id":3}],"status":200}"#;

/// The run's part of the document.
const RUN: &str = r#"{"id":"01J9ZQ3V7C2W4X5Y6Z7A8B9C0D","workflow":"orders","params":{}}"#;

/// The document a node's expressions see: the values of its input (read
/// when the workflow was), of the dependency's output and of the run.
fn document(input: &Val, dep: &Val, run: &Val) -> Val {
    context(input.clone(), [("fetch", dep.clone())], [], run.clone())
}

fn time(mut evaluate: impl FnMut() -> String) -> serde_json::Value {
    let mut walls: Vec<Duration> = Vec::new();
    for _ in 0..super::runs() {
        let started = Instant::now();
        for _ in 0..NODES {
            std::hint::black_box(evaluate());
        }
        walls.push(started.elapsed());
    }
    super::whole_row(NODES, super::median(&mut walls))
}
