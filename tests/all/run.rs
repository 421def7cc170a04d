//! Running workflows end to end: data passing, outputs, persisted runs.

use serde_json::json;

use crate::support::{Env, node, workflow};

#[test]
fn the_example_workflow_passes_data_through_all_four_plugins() {
    let env = Env::new();
    let report = env.run_example("orders.toml");
    assert_eq!(report["status"], "succeeded");
    assert_eq!(
        node(&report, "customer")["output"],
        json!({"name": "Ada Lovelace", "country": "UK"})
    );
    assert_eq!(
        node(&report, "totals")["output"],
        json!({"count": 4, "sum": 52.75, "mean": 13.1875, "max": 30.0})
    );
    let receipt = json!({"name": "Ada Lovelace", "country": "UK", "count": 4, "sum": 52.75, "mean": 13.1875, "max": 30.0});
    assert_eq!(node(&report, "receipt")["output"], receipt);
    // The digest is the SHA-256 of the receipt's canonical JSON text.
    let canonical = serde_json::to_string(&receipt).unwrap();
    let expected = format!("{:x}", sha2_digest(canonical.as_bytes()));
    assert_eq!(report["outputs"]["digest"]["sha256"], expected.as_str());
    assert_eq!(
        report["outputs"].as_object().unwrap().len(),
        1,
        "only the sink is an output"
    );
}

/// SHA-256 computed on the host, to check the plugin's answer.
fn sha2_digest(bytes: &[u8]) -> impl std::fmt::LowerHex {
    use sha2::Digest;
    struct Hex(Vec<u8>);
    impl std::fmt::LowerHex for Hex {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
        }
    }
    Hex(sha2::Sha256::digest(bytes).to_vec())
}

#[test]
fn a_diamond_gets_each_dependency_output_by_name() {
    let env = Env::new();
    let file = env.write(
        "diamond.toml",
        &workflow(
            r#"
[nodes.top]
action = "echo"
input = { a = 1, b = 2, shared = "top" }

[nodes.left]
action = "json"
depends_on = ["top"]
input = { select = ["a", "shared"] }

[nodes.right]
action = "json"
depends_on = ["top"]
input = { from = "top", select = ["b", "shared"], rename = { shared = "right" } }

[nodes.bottom]
action = "json"
depends_on = ["right", "left"]
input = { merge = ["left", "right"] }

[nodes.empty]
action = "echo"
"#,
        ),
    );
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .success()
        .json();
    assert_eq!(
        node(&report, "left")["output"],
        json!({"a": 1, "shared": "top"})
    );
    assert_eq!(
        node(&report, "right")["output"],
        json!({"b": 2, "right": "top"})
    );
    assert_eq!(
        node(&report, "bottom")["output"],
        json!({"a": 1, "b": 2, "shared": "top", "right": "top"})
    );
    assert_eq!(
        node(&report, "empty")["output"],
        json!({}),
        "no input means {{}}"
    );
    let outputs: Vec<&String> = report["outputs"].as_object().unwrap().keys().collect();
    assert_eq!(outputs, ["bottom", "empty"]);
}

#[test]
fn text_output_lists_nodes_and_outputs() {
    let env = Env::new();
    let file = env.write(
        "one.toml",
        &workflow("[nodes.hello]\naction = \"echo\"\ninput = { greeting = \"hi\" }\n"),
    );
    let run = env.run(&["run", file.to_str().unwrap()]).success();
    assert!(run.stdout.starts_with("run "), "{}", run.stdout);
    assert!(
        run.stdout.contains("  ok       hello  echo  "),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("outputs:\n  hello: {\n    \"greeting\": \"hi\"\n  }"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(" succeeded in "), "{}", run.stdout);
}

#[test]
fn the_run_is_persisted_with_every_output() {
    let env = Env::new();
    let report = env.run_example("orders.toml");
    let run_id = report["run_id"].as_str().unwrap();

    let status = env.run(&["status", run_id, "--json"]).success().json();
    assert_eq!(status["status"], "succeeded");
    assert_eq!(status["workflow_id"], "orders");
    // RFC 3339 times in UTC, to the millisecond, sort as text.
    let created = status["created_at"].as_str().unwrap();
    let finished = status["finished_at"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == 24, "{created}");
    assert!(finished >= created, "{created} {finished}");
    let nodes = status["nodes"].as_array().unwrap();
    let ids: Vec<&str> = nodes.iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["order", "customer", "totals", "receipt", "digest"]);
    for stored in nodes {
        let id = stored["id"].as_str().unwrap();
        assert_eq!(stored["status"], "succeeded");
        assert_eq!(stored["attempts"], 1);
        assert_eq!(stored["output"], node(&report, id)["output"], "node {id}");
        assert!(stored["fuel_used"].as_u64().unwrap() > 0);
    }

    // The text form shows every node's output, and a prefix of the id works.
    let text = env.run(&["status", &run_id[..20]]).success().stdout;
    assert!(text.contains("status    succeeded"), "{text}");
    for id in ids {
        assert!(
            text.contains(&format!("\n  {id:<8}  {{")),
            "{id} output missing in:\n{text}"
        );
    }

    let list = env.run(&["list"]).success().stdout;
    assert!(
        list.contains(run_id) && list.contains("orders") && list.contains("succeeded"),
        "{list}"
    );
}

#[test]
fn the_plugins_flag_overrides_the_workflow() {
    let env = Env::new();
    let file = env.write(
        "elsewhere.toml",
        "[workflow]\nid = \"w\"\nplugins = \"no-such-dir\"\n[nodes.a]\naction = \"echo\"\n",
    );
    let failed = env.run(&["run", file.to_str().unwrap()]).expect_code(2);
    assert!(
        failed
            .stderr
            .contains("cannot read the plugins directory no-such-dir"),
        "{}",
        failed.stderr
    );
    env.run(&["run", file.to_str().unwrap(), "--plugins", "plugins"])
        .success();
}

#[test]
fn plugins_resolve_relative_to_the_workflow_file() {
    let env = Env::new();
    std::fs::create_dir(env.path().join("flows")).unwrap();
    let file = env.write(
        "flows/nested.toml",
        "[workflow]\nid = \"w\"\nplugins = \"../plugins\"\n[nodes.a]\naction = \"echo\"\n",
    );
    env.run(&["run", file.to_str().unwrap()]).success();
    env.run(&["run", "flows/nested.toml"]).success();
}

#[test]
fn many_parallel_nodes_all_run() {
    let env = Env::new();
    let mut nodes = String::new();
    for i in 0..40 {
        nodes.push_str(&format!(
            "[nodes.n{i}]\naction = \"math\"\ninput = {{ values = [{i}, 1], ops = [\"sum\"] }}\n"
        ));
    }
    nodes.push_str("[nodes.all]\naction = \"json\"\ndepends_on = [");
    nodes.push_str(
        &(0..40)
            .map(|i| format!("\"n{i}\""))
            .collect::<Vec<_>>()
            .join(", "),
    );
    nodes.push_str("]\ninput = { data = \"done\" }\n");
    let file = env.write(
        "wide.toml",
        &workflow(&nodes).replace(
            "plugins = \"plugins\"",
            "plugins = \"plugins\"\nmax_concurrency = 3",
        ),
    );
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .success()
        .json();
    for i in 0..40 {
        assert_eq!(
            node(&report, &format!("n{i}"))["output"],
            json!({"sum": i + 1})
        );
    }
}
