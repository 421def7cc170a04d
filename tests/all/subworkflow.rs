//! Sub-workflows: a node that runs another workflow file as a run of its
//! own, linked both ways; failure, cancel and resume go through.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use flow_host::runtime::{Action, ActionContext, ActionError, PluginInfo};
use flow_host::{
    NodeStatus, PluginRegistry, RunStatus, Runtime, RuntimeConfig, SledStore, WorkflowEngine,
    WorkflowSpec, WorkflowStore,
};
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::support::{Env, node};

const CHILD: &str = r#"[workflow]
id = "greeting"

[params]
name = "nobody"
fail = false

[nodes.hello]
action = "flaky"
input_jq = 'if .run.params.fail then {fatal: "no greeting today"} else {output: {text: ("Hello " + .run.params.name)}} end'

[nodes.shout]
action = "echo"
depends_on = ["hello"]
input = { loud = "${{ deps.hello.text }}!" }
"#;

fn parent(input: &str) -> String {
    format!(
        r#"[workflow]
id = "parent"
plugins = "plugins"

[nodes.who]
action = "echo"
input = {{ name = "Ada" }}

[nodes.greet]
workflow = "child.toml"
depends_on = ["who"]
input = {input}

[nodes.after]
action = "echo"
depends_on = ["greet"]
input = {{ got = "${{{{ deps.greet }}}}" }}
"#
    )
}

#[test]
fn a_sub_workflow_runs_as_a_child_run_linked_both_ways() {
    let env = Env::new();
    env.write("child.toml", CHILD);
    let file = env.write(
        "parent.toml",
        &parent(r#"{ name = "${{ deps.who.name }}" }"#),
    );
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .success()
        .json();
    // Its output is the child's outputs, by node id.
    assert_eq!(
        node(&report, "after")["output"],
        json!({"got": {"shout": {"loud": "Hello Ada!"}}})
    );
    let greet = node(&report, "greet");
    assert_eq!(greet["action"], "workflow:greeting");
    let child_id = greet["child_run"].as_str().unwrap().to_string();
    let parent_id = report["run_id"].as_str().unwrap();

    let child = env.run(&["status", &child_id, "--json"]).success().json();
    assert_eq!(
        child["parent"],
        json!({"run_id": parent_id, "node_id": "greet"})
    );
    assert_eq!(child["params"], json!({"name": "Ada", "fail": false}));
    assert_eq!(node(&child, "hello")["attempts"], 1);

    // `flow status` without an id shows the parent, the newest run that is
    // not a child's; its text names the child run.
    let text = env.run(&["status"]).success().stdout;
    assert!(text.contains(&format!("run       {parent_id}")), "{text}");
    assert!(
        text.contains(&format!("its sub-workflow ran as run {child_id}")),
        "{text}"
    );
    let text = env.run(&["status", &child_id]).success().stdout;
    assert!(
        text.contains(&format!("parent    run {parent_id}, node `greet`")),
        "{text}"
    );

    // `flow list` shows both, or hides the child.
    let all = env.run(&["list"]).success().stdout;
    assert!(
        all.contains(&child_id) && all.contains("greeting (in greet)"),
        "{all}"
    );
    let top = env.run(&["list", "--hide-children"]).success().stdout;
    assert!(!top.contains(&child_id) && top.contains(parent_id), "{top}");
}

#[test]
fn a_failed_sub_workflow_fails_its_node_with_the_child_run_id() {
    let env = Env::new();
    env.write("child.toml", CHILD);
    let file = env.write("parent.toml", &parent("{ fail = true }"));
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .expect_code(1)
        .json();
    let greet = node(&report, "greet");
    assert_eq!(greet["status"], "failed");
    let child_id = greet["child_run"].as_str().unwrap();
    assert_eq!(
        greet["error"]["message"],
        format!(
            "its run {child_id} of workflow `greeting` failed: node `hello` failed: fatal error: no greeting today"
        )
    );
    assert_eq!(node(&report, "after")["status"], "skipped");
    let child = env.run(&["status", child_id, "--json"]).success().json();
    assert_eq!(child["status"], "failed");
}

#[test]
fn a_node_input_that_does_not_fit_the_parameters_is_refused() {
    let env = Env::new();
    env.write("child.toml", CHILD);
    // Written out: refused when the file is validated.
    let file = env.write("static.toml", &parent("{ nmae = \"Ada\" }"));
    let stderr = env
        .run(&["validate", file.to_str().unwrap()])
        .expect_code(2)
        .stderr;
    assert!(
        stderr.contains(
            "the input of node `greet` does not fit the parameters of workflow `greeting`"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("nmae"), "{stderr}");
    // Computed: the node fails before its child runs.
    let file = env.write(
        "computed.toml",
        &parent(r#"{ nmae = "${{ deps.who.name }}" }"#),
    );
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .expect_code(1)
        .json();
    let greet = node(&report, "greet");
    let message = greet["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("its input does not fit the parameters of workflow `greeting`"),
        "{message}"
    );
    assert!(message.contains("nmae"), "{message}");
    assert!(greet["child_run"].is_null(), "no child run was started");
}

/// A native action that hangs on its first call until the run is
/// cancelled, saying when it started, and returns at once afterwards.
#[derive(Default)]
struct Gate {
    calls: AtomicU32,
    started: Notify,
}

impl Action for Gate {
    fn describe(&self) -> PluginInfo {
        PluginInfo {
            name: "gate".into(),
            version: "1.0.0".into(),
            description: "hangs on its first call".into(),
        }
    }

    fn run<'a>(
        &'a self,
        _: &'a ActionContext,
        _: &'a str,
    ) -> BoxFuture<'a, Result<String, ActionError>> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        Box::pin(async move {
            if call == 1 {
                self.started.notify_one();
                std::future::pending::<()>().await;
            }
            Ok(json!({ "call": call }).to_string())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_resume_go_through_to_the_child_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("child.toml"),
        "[workflow]\nid = \"waits\"\n[nodes.wait]\naction = \"gate\"\n[nodes.then]\naction = \"gate\"\ndepends_on = [\"wait\"]\n",
    )
    .unwrap();
    let parent_file = dir.path().join("parent.toml");
    std::fs::write(
        &parent_file,
        "[workflow]\nid = \"outer\"\n[nodes.sub]\nworkflow = \"child.toml\"\n",
    )
    .unwrap();
    let gate = Arc::new(Gate::default());
    let mut plugins = PluginRegistry::default();
    plugins.add_native(gate.clone()).unwrap();
    let plugins = Arc::new(plugins);
    let runtime = Arc::new(Runtime::new(RuntimeConfig::default()).unwrap());
    let store: Arc<dyn WorkflowStore> = Arc::new(SledStore::open(&dir.path().join("db")).unwrap());
    let engine = WorkflowEngine::new(runtime, store.clone());
    let workflow = Arc::new(WorkflowSpec::load(&parent_file).unwrap());

    let handle = engine.start(workflow.clone(), plugins.clone()).unwrap();
    let parent_id = handle.run_id().to_string();
    gate.started.notified().await;
    handle.cancel();
    let report = handle.wait().await.unwrap();
    assert_eq!(report.status, RunStatus::Cancelled);
    let sub = &store.nodes(&parent_id).unwrap()[0];
    assert_eq!(sub.status, NodeStatus::Cancelled);
    let child_id = sub.child_run.clone().expect("the node links its child run");
    let child = store.run(&child_id).unwrap().unwrap();
    assert_eq!(
        child.status,
        RunStatus::Cancelled,
        "the cancel went through"
    );
    assert_eq!(child.parent.as_ref().unwrap().run_id, parent_id);

    let report = engine
        .resume(workflow, plugins, &parent_id, false)
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    let output: Value = serde_json::from_str(report.nodes[0].output.as_deref().unwrap()).unwrap();
    assert_eq!(output, json!({"then": {"call": 3}}));
    // The same child run went on: no second child was started.
    let sub = &store.nodes(&parent_id).unwrap()[0];
    assert_eq!(sub.child_run.as_deref(), Some(child_id.as_str()));
    let child = store.run(&child_id).unwrap().unwrap();
    assert_eq!(child.status, RunStatus::Succeeded);
    assert_eq!(child.resumes, 1);
    let children = store
        .runs()
        .filter(|run| run.as_ref().unwrap().parent.is_some())
        .count();
    assert_eq!(children, 1);
    assert_eq!(
        gate.calls.load(Ordering::SeqCst),
        3,
        "wait twice, then once"
    );
}

#[test]
fn the_two_approvals_example_runs_one_workflow_twice_inside_another() {
    let env = Env::new();
    let report = env.run_example("two-approvals.toml");
    assert_eq!(
        report["outputs"]["decisions"],
        json!({"small": "approved", "large": "review"})
    );
    let small = node(&report, "small")["child_run"].as_str().unwrap();
    let large = node(&report, "large")["child_run"].as_str().unwrap();
    assert_ne!(small, large, "each node has a child run of its own");
}

#[test]
fn a_changed_child_is_resumed_only_with_force() {
    let env = Env::new();
    let child = |input: &str| {
        format!("[workflow]\nid = \"inner\"\n[nodes.a]\naction = \"flaky\"\ninput = {input}\n")
    };
    env.write("child.toml", &child("{ fatal = \"broken\" }"));
    let file = env.write(
        "parent.toml",
        "[workflow]\nid = \"outer\"\nplugins = \"plugins\"\n[nodes.sub]\nworkflow = \"child.toml\"\n",
    );
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .expect_code(1)
        .json();
    let parent_id = report["run_id"].as_str().unwrap().to_string();
    let child_id = node(&report, "sub")["child_run"]
        .as_str()
        .unwrap()
        .to_string();

    env.write("child.toml", &child("{ output = \"fixed\" }"));
    let refused = env
        .run(&["resume", &parent_id, "--json"])
        .expect_code(1)
        .json();
    let message = node(&refused, "sub")["error"]["message"].as_str().unwrap();
    assert!(message.contains("changed"), "{message}");

    let resumed = env
        .run(&["resume", &parent_id, "--force", "--json"])
        .success()
        .json();
    let sub = node(&resumed, "sub");
    assert_eq!(sub["output"], json!({"a": "fixed"}));
    assert_eq!(
        sub["child_run"],
        child_id.as_str(),
        "the same child run went on"
    );
}
