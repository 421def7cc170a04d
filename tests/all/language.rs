//! The workflow language: input expressions, conditions, run parameters.

use serde_json::json;

use crate::support::{Env, node, workflow};

#[test]
fn expressions_shape_inputs_from_dependencies_and_the_run() {
    let env = Env::new();
    let file = env.write(
        "shape.toml",
        &workflow(
            r#"
[params]
greeting = "Dear"

[nodes.fetch]
action = "echo"
input = { body = { user = { name = "Ada", id = 7 } }, list = [{ id = 1 }, { id = 2 }] }

[nodes.greet]
action = "echo"
depends_on = ["fetch"]
input = { user = "${{ deps.fetch.body.user }}", text = "${{ run.params.greeting }} ${{ deps.fetch.body.user.name }} (#${{ deps.fetch.body.user.id }})" }

[nodes.ids]
action = "echo"
depends_on = ["fetch"]
input = { limit = 1 }
input_jq = '{ids: [.deps.fetch.list[] | .id][:.input.limit], workflow: .run.workflow, run: (.run.id | length)}'

[nodes.wrong]
action = "echo"
depends_on = ["fetch"]
input_jq = '.deps.fetch.body.user.name + 1'
continue_on_error = true
"#,
        ),
    );
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .success()
        .json();
    assert_eq!(
        node(&report, "greet")["output"],
        json!({"user": {"name": "Ada", "id": 7}, "text": "Dear Ada (#7)"})
    );
    assert_eq!(
        node(&report, "ids")["output"],
        json!({"ids": [1], "workflow": "test", "run": 26})
    );
    let wrong = node(&report, "wrong");
    assert_eq!(wrong["status"], "failed");
    assert_eq!(wrong["attempts"], 0, "the action does not run");
    assert_eq!(wrong["error"]["kind"], "expression");
    let message = wrong["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("`input_jq` (.deps.fetch.body.user.name + 1): cannot calculate"),
        "{message}"
    );
}

#[test]
fn a_false_condition_skips_a_branch_and_its_dependents() {
    let env = Env::new();
    let file = env.write(
        "when.toml",
        &workflow(
            r#"
[nodes.check]
action = "echo"
input = { ok = false, items = [1, 2] }

[nodes.deploy]
action = "echo"
depends_on = ["check"]
when = '.deps.check.ok == true'

[nodes.notify]
action = "echo"
depends_on = ["deploy"]

[nodes.announce]
action = "echo"
depends_on = ["notify"]

[nodes.report]
action = "echo"
depends_on = ["deploy"]
run_if_skipped = true
input = { deployed = "${{ deps.deploy != null }}" }

[nodes.fallback]
action = "echo"
depends_on = ["check", "deploy"]
when = '.deps.check.ok == false'
input = { n = "${{ deps.check.items | length }}" }
"#,
        ),
    );
    let run = env.run(&["run", file.to_str().unwrap()]).success();
    assert!(run.stdout.contains("condition false"), "{}", run.stdout);
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .success()
        .json();
    assert_eq!(report["status"], "succeeded");
    let deploy = node(&report, "deploy");
    assert_eq!(deploy["status"], "skipped");
    assert_eq!(deploy["skipped_by_condition"], true);
    assert_eq!(deploy["skipped_because"], json!(null));
    assert_eq!(deploy["attempts"], 0);
    for (id, because) in [("notify", "deploy"), ("announce", "notify")] {
        let skipped = node(&report, id);
        assert_eq!(skipped["status"], "skipped", "{id}");
        assert_eq!(skipped["skipped_by_condition"], true, "{id}");
        assert_eq!(skipped["skipped_because"], because, "{id}");
    }
    assert_eq!(
        node(&report, "report")["output"],
        json!({"deployed": false})
    );
    assert_eq!(node(&report, "fallback")["output"], json!({"n": 2}));

    let run_id = report["run_id"].as_str().unwrap();
    let status = env.run(&["status", run_id]).success().stdout;
    assert!(status.contains("skipped (condition false)"), "{status}");
    assert!(status.contains("skipped (`deploy` skipped)"), "{status}");
    let graph = env
        .run(&[
            "graph",
            file.to_str().unwrap(),
            "--run",
            run_id,
            "--format",
            "mermaid",
        ])
        .success()
        .stdout;
    assert!(
        graph.contains("classDef skipped_by_condition fill:#e7f1f7"),
        "{graph}"
    );
}

#[test]
fn a_condition_that_fails_fails_its_node() {
    let env = Env::new();
    let report = env.run_nodes(
        "[nodes.a]\naction = \"echo\"\nwhen = '.input.n + \"x\"'\ninput = { n = 1 }\n",
        &[],
        &[],
    );
    let a = node(&report, "a");
    assert_eq!(a["status"], "failed");
    assert_eq!(a["error"]["kind"], "expression");
    assert!(
        a["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("`when` (.input.n + \"x\"): "),
        "{a}"
    );
}

#[test]
fn parameters_are_typed_checked_stored_and_resumed() {
    let env = Env::new();
    let file = env.write(
        "params.toml",
        &workflow(
            r#"
[params]
region = "eu"
limit = { type = "integer", default = 10, description = "how many" }
dry_run = { type = "boolean" }

[nodes.plan]
action = "echo"
input = { where = "${{ run.params.region }}", n = "${{ run.params.limit * 2 }}" }
when = '.run.params.dry_run | not'

[nodes.fail]
action = "flaky"
depends_on = ["plan"]
input = { fatal = "stop here" }
"#,
        ),
    );
    let path = file.to_str().unwrap();
    let missing = env.run(&["run", path]).expect_code(2);
    assert!(
        missing
            .stderr
            .contains("params.toml: parameter `dry_run` (boolean) is required"),
        "{}",
        missing.stderr
    );
    let wrong = env
        .run(&["run", path, "--param", "limt=3", "--param", "dry_run=maybe"])
        .expect_code(2);
    for expected in [
        "the workflow has no parameter `limt`; did you mean `limit`?",
        "parameter `dry_run`: `maybe` is not true or false",
    ] {
        assert!(
            wrong.stderr.contains(expected),
            "{expected}: {}",
            wrong.stderr
        );
    }

    let params_file = env.write("params.json", r#"{"region": "us", "limit": 3}"#);
    let report = env
        .run(&[
            "run",
            path,
            "--params",
            params_file.to_str().unwrap(),
            "--param",
            "dry_run=false",
            "--param",
            "limit=7",
            "--json",
        ])
        .expect_code(1)
        .json();
    assert_eq!(
        report["params"],
        json!({"region": "us", "limit": 7, "dry_run": false})
    );
    assert_eq!(
        node(&report, "plan")["output"],
        json!({"where": "us", "n": 14})
    );

    let text = env
        .run(&["status", report["run_id"].as_str().unwrap()])
        .stdout;
    assert!(
        text.contains("params    dry_run=false limit=7 region=\"us\""),
        "{text}"
    );

    // A resume runs with the values the run started with.
    let run_id = report["run_id"].as_str().unwrap();
    let resumed = env.run(&["resume", run_id, "--json"]).expect_code(1).json();
    assert_eq!(resumed["params"], report["params"]);
    assert_eq!(node(&resumed, "plan")["status"], "succeeded");
    assert_eq!(node(&resumed, "plan")["attempts"], 1, "not run again");

    let dry = env
        .run(&["run", path, "--param", "dry_run=true", "--json"])
        .success()
        .json();
    assert_eq!(node(&dry, "plan")["skipped_by_condition"], true);
    assert_eq!(node(&dry, "fail")["status"], "skipped");
}

#[test]
fn the_approvals_example_takes_the_branch_its_parameter_picks() {
    let env = Env::new();
    let review = env.run_example("approvals.toml");
    assert_eq!(
        review["outputs"]["summary"],
        json!({"decision": "review", "detail": {"customer": "Ada Lovelace", "reason": "total 52.75 is over 50"}})
    );
    assert_eq!(node(&review, "approve")["skipped_by_condition"], true);

    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/approvals.toml");
    let approved = env
        .run(&[
            "run",
            example.to_str().unwrap(),
            "--json",
            "--plugins",
            env.plugins().to_str().unwrap(),
            "--param",
            "threshold=100",
        ])
        .success()
        .json();
    assert_eq!(
        approved["outputs"]["summary"],
        json!({"decision": "approved", "detail": {"customer": "Ada Lovelace", "amount": 52.75, "items": 4}})
    );
    assert_eq!(node(&approved, "review")["skipped_by_condition"], true);
}

#[test]
fn retry_from_a_node_reuses_what_is_upstream_and_runs_the_rest() {
    let env = Env::new();
    let text = workflow(
        r#"
[nodes.a]
action = "echo"
input = { n = 1 }

[nodes.b]
action = "echo"
depends_on = ["a"]
input = { values = [1, 2] }

[nodes.c]
action = "math"
depends_on = ["b"]
input = { from = "b/values" }

[nodes.side]
action = "flaky"
depends_on = ["a"]
input = { fatal = "not today" }
continue_on_error = true
"#,
    );
    let file = env.write("retry.toml", &text);
    let path = file.to_str().unwrap();
    let first = env.run(&["run", path, "--json"]).success().json();
    let first_id = first["run_id"].as_str().unwrap();

    let unknown = env.run(&["retry", first_id, "--from", "bb"]).expect_code(2);
    assert!(
        unknown
            .stderr
            .contains("the workflow has no node `bb`; did you mean `b`?"),
        "{}",
        unknown.stderr
    );

    let retried = env
        .run(&["retry", first_id, "--from", "b", "--json"])
        .expect_code(0)
        .json();
    assert_ne!(retried["run_id"], first["run_id"]);
    assert_eq!(retried["retry_of"], first["run_id"]);
    let a = node(&retried, "a");
    assert_eq!(a["attempts"], 0, "upstream is reused, not run");
    assert_eq!(a["reused_from"], first["run_id"]);
    assert_eq!(a["output"], json!({"n": 1}));
    for id in ["b", "c"] {
        assert_eq!(node(&retried, id)["attempts"], 1, "{id} runs again");
        assert_eq!(node(&retried, id)["reused_from"], json!(null));
    }
    assert_eq!(node(&retried, "c")["output"]["sum"], 3);
    let status = env
        .run(&["status", retried["run_id"].as_str().unwrap()])
        .success()
        .stdout;
    assert!(
        status.contains(&format!("retry of  {first_id}")),
        "{status}"
    );
    // Not downstream of `b`, but it has no output: it runs again too.
    assert_eq!(node(&retried, "side")["attempts"], 1);
    assert_eq!(node(&retried, "side")["status"], "failed");

    // Only what did not succeed.
    let failed_only = env
        .run(&["retry", first_id, "--failed", "--json"])
        .success()
        .json();
    for id in ["a", "b", "c"] {
        assert_eq!(node(&failed_only, id)["attempts"], 0, "{id} is reused");
    }
    assert_eq!(node(&failed_only, "side")["attempts"], 1);

    // A changed workflow is refused, unless forced.
    env.write(
        "retry.toml",
        &text.replace("values = [1, 2]", "values = [1, 2, 3]"),
    );
    let changed = env.run(&["retry", first_id, "--from", "c"]).expect_code(2);
    assert!(
        changed
            .stderr
            .contains("was not resumed because the workflow file")
            || changed.stderr.contains("changed"),
        "{}",
        changed.stderr
    );
    let forced = env
        .run(&["retry", first_id, "--from", "b", "--force", "--json"])
        .success()
        .json();
    assert_eq!(node(&forced, "c")["output"]["sum"], 6);
    assert_eq!(node(&forced, "a")["attempts"], 0);
}
