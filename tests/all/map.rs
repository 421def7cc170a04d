//! Map nodes: one node run once per element of a list known at run time.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use flow_host::runtime::{Action, ActionContext, ActionError, PluginInfo};
use flow_host::{
    MemoryStore, PluginRegistry, RunStatus, Runtime, RuntimeConfig, WorkflowEngine, WorkflowSpec,
};
use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use crate::support::{Env, node, workflow};

/// The elements of map node `id` in a run's JSON document.
fn elements<'a>(report: &'a Value, id: &str) -> &'a Vec<Value> {
    node(report, id)["elements"]
        .as_array()
        .unwrap_or_else(|| panic!("no elements for {id} in {report}"))
}

#[test]
fn a_map_of_ten_thousand_elements_with_one_flaky_element() {
    let env = Env::new();
    let file = env.write(
        "map.toml",
        &workflow(
            r#"
[nodes.list]
action = "echo"
input = { count = 10000 }

[nodes.each]
action = "flaky"
depends_on = ["list"]
map = '[range(.deps.list.count)]'
map_concurrency = 8
retries = 2
retry_delay = "1ms"
input_jq = '{output: (.item * 2), fail_times: (if .index == 4321 then 2 else 0 end)}'

[nodes.total]
action = "echo"
depends_on = ["each"]
input_jq = '{count: (.deps.each | length), sum: (.deps.each | add), first: .deps.each[0], last: .deps.each[-1]}'
"#,
        ),
    );
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .success()
        .json();
    assert_eq!(
        node(&report, "total")["output"],
        json!({"count": 10000, "sum": 99990000, "first": 0, "last": 19998}),
        "every element's output, in list order"
    );
    let each = node(&report, "each");
    assert_eq!(each["status"], "succeeded");
    assert_eq!(
        each["attempts"], 10002,
        "one attempt each, two more for the flaky one"
    );
    let elements = elements(&report, "each");
    assert_eq!(elements.len(), 10000);
    let flaky = &elements[4321];
    assert_eq!(flaky["id"], "each[4321]");
    assert_eq!(flaky["element"], 4321);
    assert_eq!(flaky["attempts"], 3);
    assert_eq!(flaky["attempt_records"][0]["error"]["kind"], "retryable");
    assert!(
        elements
            .iter()
            .enumerate()
            .all(|(i, e)| i == 4321 || e["attempts"] == 1),
        "only the flaky element was retried"
    );

    // status shows the map's elements in a line, and its failed attempts.
    let text = env.run(&["status"]).success().stdout;
    assert!(
        text.contains("each   10000 started: 10000 succeeded"),
        "{text}"
    );
    assert!(text.contains("each[4321]  #1"), "{text}");
}

#[test]
fn elements_see_their_item_and_index() {
    let env = Env::new();
    let file = env.write(
        "map.toml",
        &workflow(
            r#"
[params]
greeting = "Hello"

[nodes.people]
action = "echo"
input = { names = ["Ada", "Grace", "Edsger"] }

[nodes.greet]
action = "echo"
depends_on = ["people"]
map = '.deps.people.names'
input = { text = "${{ run.params.greeting }}, ${{ item }}", position = "${{ index }}" }

[nodes.plain]
action = "echo"
map = [10, 20]
input = { fixed = true }
"#,
        ),
    );
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .success()
        .json();
    assert_eq!(
        node(&report, "greet")["output"],
        json!([
            {"text": "Hello, Ada", "position": 0},
            {"text": "Hello, Grace", "position": 1},
            {"text": "Hello, Edsger", "position": 2}
        ])
    );
    // Without input expressions, each element gets the input as written.
    assert_eq!(
        node(&report, "plain")["output"],
        json!([{"fixed": true}, {"fixed": true}])
    );
}

/// Counts the attempts in flight, and the most there were at once.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    most: AtomicUsize,
}

impl Action for InFlight {
    fn describe(&self) -> PluginInfo {
        PluginInfo {
            name: "in-flight".into(),
            version: "1.0.0".into(),
            description: "counts attempts running at once".into(),
        }
    }

    fn run<'a>(
        &'a self,
        _: &'a ActionContext,
        request: &'a str,
    ) -> BoxFuture<'a, Result<String, ActionError>> {
        Box::pin(async move {
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
            self.now.fetch_sub(1, Ordering::SeqCst);
            let request: Value = serde_json::from_str(request).unwrap();
            Ok(request["item"].to_string())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elements_run_at_most_map_concurrency_at_once() {
    let counter = Arc::new(InFlight::default());
    let runtime = Arc::new(Runtime::new(RuntimeConfig::default()).unwrap());
    let mut plugins = PluginRegistry::default();
    plugins.add_native(counter.clone()).unwrap();
    let workflow = WorkflowSpec::builder("bounded")
        .max_concurrency(8)
        .node("each", "in-flight")
        .map("[range(40)]")
        .option("map_concurrency", 3)
        .build()
        .unwrap();
    let engine = WorkflowEngine::new(runtime, Arc::new(MemoryStore::new()));
    let report = engine
        .execute(Arc::new(workflow), Arc::new(plugins))
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    let output: Value = serde_json::from_str(report.nodes[0].output.as_deref().unwrap()).unwrap();
    assert_eq!(output, json!((0..40).collect::<Vec<_>>()));
    // Forty elements of 5 ms each on a pool of 8: the bound is reached,
    // never passed.
    assert_eq!(counter.most.load(Ordering::SeqCst), 3);
}

#[test]
fn failed_elements_fail_the_node_after_the_others_unless_tolerated() {
    let env = Env::new();
    let nodes = |tolerance: u32| {
        workflow(&format!(
            r#"
[nodes.each]
action = "flaky"
map = '[range(6)]'
map_concurrency = 2
map_tolerance = {tolerance}
input_jq = 'if .index == 1 or .index == 4 then {{fatal: "bad element \(.index)"}} else {{output: .item}} end'

[nodes.after]
action = "echo"
depends_on = ["each"]
input = {{ got = "${{{{ deps.each }}}}" }}
"#
        ))
    };
    let strict = env.write("strict.toml", &nodes(1));
    let report = env
        .run(&["run", strict.to_str().unwrap(), "--json"])
        .expect_code(1)
        .json();
    let each = node(&report, "each");
    assert_eq!(each["status"], "failed");
    assert_eq!(each["error"]["kind"], "fatal");
    assert_eq!(
        each["error"]["message"],
        "2 of 6 elements failed (map_tolerance allows 1); the first, element 1: fatal error: bad element 1"
    );
    assert_eq!(
        elements(&report, "each").len(),
        6,
        "every element ran, after the first failure too"
    );
    assert_eq!(node(&report, "after")["status"], "skipped");

    let tolerant = env.write("tolerant.toml", &nodes(2));
    let report = env
        .run(&["run", tolerant.to_str().unwrap(), "--json"])
        .success()
        .json();
    assert_eq!(
        node(&report, "after")["output"],
        json!({"got": [0, null, 2, 3, null, 5]}),
        "failed elements are null in the output"
    );
}

#[test]
fn a_map_over_a_non_list_or_an_empty_list() {
    let env = Env::new();
    let file = env.write(
        "map.toml",
        &workflow(
            r#"
[nodes.source]
action = "echo"
input = { items = { not = "a list" }, none = [] }

[nodes.wrong]
action = "echo"
depends_on = ["source"]
map = '.deps.source.items'
continue_on_error = true

[nodes.empty]
action = "echo"
depends_on = ["source"]
map = '.deps.source.none'

[nodes.after]
action = "echo"
depends_on = ["empty"]
input = { got = "${{ deps.empty }}" }
"#,
        ),
    );
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .success()
        .json();
    let wrong = node(&report, "wrong");
    assert_eq!(wrong["status"], "failed");
    assert_eq!(wrong["attempts"], 0);
    assert_eq!(wrong["error"]["kind"], "expression");
    assert_eq!(
        wrong["error"]["message"],
        "`map` (.deps.source.items) gave an object, not a list"
    );
    assert_eq!(node(&report, "empty")["output"], json!([]));
    assert_eq!(node(&report, "after")["output"], json!({"got": []}));
}

#[test]
fn a_false_condition_skips_a_map_node_before_its_list_is_computed() {
    let env = Env::new();
    let report = env.run_nodes(
        r#"
[nodes.each]
action = "echo"
when = 'false'
map = '.input.missing[]'
"#,
        &[],
        &[],
    );
    let each = node(&report, "each");
    assert_eq!(each["status"], "skipped");
    assert_eq!(each["skipped_by_condition"], true);
}

#[test]
fn logs_of_a_map_node_include_its_elements() {
    let env = Env::new();
    let file = env.write(
        "map.toml",
        &workflow(
            r#"
[nodes.each]
action = "flaky"
map = [0, 1, 2]
retries = 1
retry_delay = "1ms"
input_jq = '{fail_times: (if .index == 2 then 1 else 0 end)}'
"#,
        ),
    );
    let run_id = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .success()
        .json()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let all = env.run(&["logs", &run_id, "each"]).success().stdout;
    assert!(all.contains("each[2]"), "{all}");
    assert!(all.contains("failing attempt 1 on purpose"), "{all}");
    let one = env.run(&["logs", &run_id, "each[2]"]).success().stdout;
    assert_eq!(one.lines().count(), 1, "{one}");
}

/// A map whose element 10 waits for a retry long after 0 to 9 ended: the
/// process is killed then, and the resume runs only elements 10 to 19.
#[test]
fn sigkill_during_a_map_and_resume_runs_only_unfinished_elements() {
    let env = Env::new();
    let file = env.write(
        "map.toml",
        r#"[workflow]
id = "test"
plugins = "plugins"
durability = "strict"

[nodes.each]
action = "flaky"
map = '[range(20)]'
map_concurrency = 1
retries = 1
retry_delay = "10m"
retry_max_delay = "10m"
input_jq = '{output: .index, fail_times: (if .index == 10 then 1 else 0 end)}'
"#,
    );
    let mut child = env
        .flow()
        .args(["run", file.to_str().unwrap(), "--progress", "plain"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let header = lines.next().unwrap().unwrap();
    let run_id = header.split_whitespace().nth(1).unwrap().to_string();
    // Element 10 failed once and waits ten minutes to retry; elements 0 to
    // 9 ended before it started, and strict durability stored them.
    assert!(
        lines
            .by_ref()
            .map(Result::unwrap)
            .any(|line| line.starts_with("  retry    each[10]")),
    );
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();

    let resumed = env.run(&["resume", &run_id, "--json"]).success().json();
    let each = node(&resumed, "each");
    assert_eq!(each["output"], json!((0..20).collect::<Vec<_>>()));
    let elements = elements(&resumed, "each");
    assert_eq!(elements.len(), 20);
    for (i, element) in elements.iter().enumerate() {
        let attempts = element["attempt_records"].as_array().unwrap();
        match i {
            // Stored before the kill, not run again.
            0..10 => assert_eq!(attempts.len(), 1, "element {i}: {element}"),
            // Its first attempt failed; the resume gave it a second.
            10 => {
                assert_eq!(attempts.len(), 2, "{element}");
                assert_eq!(attempts[0]["error"]["kind"], "retryable");
                assert!(attempts[1]["error"].is_null());
            }
            _ => assert_eq!(attempts.len(), 1, "element {i}: {element}"),
        }
    }
    assert_eq!(each["attempts"], 21, "20 elements, one retried");
}

#[test]
fn the_invoices_example_totals_each_invoice_then_the_batch() {
    let env = Env::new();
    let report = env.run_example("invoices.toml");
    assert_eq!(
        report["outputs"]["report"],
        json!({
            "total": 82.75,
            "invoices": [
                {"id": "A-17", "lines": 3, "total": 22.75},
                {"id": "A-18", "lines": 1, "total": 30.0},
                {"id": "A-19", "lines": 4, "total": 30.0}
            ]
        })
    );
    assert_eq!(elements(&report, "invoice").len(), 3);
}
