//! What a node's expressions cost when it starts: the engine's work for
//! one node, timed over many nodes. The context document is read (the
//! node's input and a dependency's output), the templates or the program
//! run, and the input is written back as JSON, as `exec/shape.rs` does.

use std::time::{Duration, Instant};

use flow_host::expr::{Expr, Template, parse_json, to_json};

/// Nodes evaluated per run of the scenario.
const NODES: usize = 100_000;

/// `${{ deps.fetch.body.user }}` and text with two templates.
pub fn template() -> serde_json::Value {
    let input = serde_json::json!({
        "user": "${{ deps.fetch.body.user }}",
        "text": "Dear ${{ deps.fetch.body.user.name }} of ${{ run.workflow }}"
    });
    let template = Template::parse(&input).unwrap().unwrap();
    let written = input.to_string();
    time(|| {
        let context = parse_json(&context(&written)).unwrap();
        template.render(&context).unwrap().to_string()
    })
}

/// `input_jq = '{ids: [.deps.fetch.list[] | .id]}'`.
pub fn program() -> serde_json::Value {
    let program = Expr::compile("{ids: [.deps.fetch.list[] | .id]}").unwrap();
    time(|| {
        let context = parse_json(&context("{}")).unwrap();
        to_json(&program.run_one(context).unwrap())
            .unwrap()
            .to_string()
    })
}

/// The document a node's expressions see: its input, a dependency's
/// output of about 200 bytes, and the run.
fn context(input: &str) -> String {
    format!(
        r#"{{"input":{input},"deps":{{"fetch":{{"body":{{"user":{{"name":"Ada","id":7,"email":"ada@example.org"}}}},"list":[{{"id":1}},{{"id":2}},{{"id":3}}],"status":200}}}},"run":{{"id":"01J9ZQ3V7C2W4X5Y6Z7A8B9C0D","workflow":"orders","params":{{}}}}}}"#
    )
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
