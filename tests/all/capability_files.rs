//! Grants of directories, environment variables and secrets.

use std::path::Path;

use serde_json::Value;

use crate::http_server::TestServer;
use crate::support::{Env, node, workflow};

fn env() -> Env {
    let env = Env::new();
    env.add_plugin(&flow_test_artifacts::test_plugins_dir().join("reach.wasm"));
    std::fs::create_dir_all(env.path().join("data")).unwrap();
    std::fs::write(env.path().join("data/in.txt"), "granted").unwrap();
    std::fs::create_dir_all(env.path().join("out")).unwrap();
    std::fs::write(env.path().join("outside.txt"), "not granted").unwrap();
    env
}

fn run(env: &Env, nodes: &str, vars: &[(&str, &str)], extra: &[&str]) -> Value {
    env.run_nodes(nodes, vars, extra)
}

fn reach(id: &str, input: &str, grants: &str) -> String {
    format!("[nodes.{id}]\naction = \"reach\"\ninput = {{ {input} }}\n{grants}\n\n")
}

const DATA: &str = "files = [{ host = \"data\", guest = \"/data\" }]";

#[test]
fn directories_are_read_only_unless_writable_and_nothing_escapes_them() {
    let env = env();
    std::os::unix::fs::symlink(
        env.path().join("outside.txt"),
        env.path().join("data/link.txt"),
    )
    .unwrap();
    let mut nodes = String::new();
    nodes += &reach("read", "mode = \"read\", path = \"/data/in.txt\"", DATA);
    nodes += &reach(
        "write_ro",
        "mode = \"write\", path = \"/data/new.txt\", text = \"x\"",
        DATA,
    );
    nodes += &reach(
        "write_rw",
        "mode = \"write\", path = \"/out/new.txt\", text = \"written\"",
        "files = [{ host = \"out\", guest = \"/out\", write = true }]",
    );
    nodes += &reach(
        "dotdot",
        "mode = \"read\", path = \"/data/../outside.txt\"",
        DATA,
    );
    nodes += &reach("absolute", "mode = \"read\", path = \"/outside.txt\"", DATA);
    nodes += &reach(
        "symlink",
        "mode = \"read\", path = \"/data/link.txt\"",
        DATA,
    );
    nodes += &reach("ungranted", "mode = \"read\", path = \"/data/in.txt\"", "");
    let report = run(&env, &nodes, &[], &[]);

    assert_eq!(node(&report, "read")["output"]["text"], "granted");
    assert_eq!(node(&report, "write_rw")["status"], "succeeded");
    assert_eq!(
        std::fs::read_to_string(env.path().join("out/new.txt")).unwrap(),
        "written"
    );
    for id in ["write_ro", "dotdot", "absolute", "symlink", "ungranted"] {
        let n = node(&report, id);
        assert_eq!(n["status"], "failed", "{id}: {n}");
    }
    assert!(!env.path().join("data/new.txt").exists());
}

#[test]
fn a_missing_directory_or_secret_is_a_validation_error_naming_it() {
    let env = env();
    let nodes = reach(
        "n",
        "mode = \"env\"",
        "files = [{ host = \"nowhere\", guest = \"/x\" }]\nsecrets = [\"MISSING_ONE\"]",
    );
    let file = env.write("bad.toml", &workflow(&nodes));
    let run = env
        .run(&["validate", file.to_str().unwrap()])
        .expect_code(2);
    assert!(
        run.stderr
            .contains("the directory ./nowhere granted to node `n` as /x does not exist"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("bad.toml:8:"), "{}", run.stderr);
    // Once the directory exists, the missing secret is named.
    std::fs::create_dir(env.path().join("nowhere")).unwrap();
    let run = env
        .run(&["validate", file.to_str().unwrap()])
        .expect_code(2);
    assert!(
        run.stderr
            .contains("the secret MISSING_ONE of node `n` is not set"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("FLOW_SECRET_MISSING_ONE"),
        "{}",
        run.stderr
    );
    let run = env.run(&["run", file.to_str().unwrap()]).expect_code(2);
    assert!(run.stderr.contains("MISSING_ONE"), "{}", run.stderr);
}

#[test]
fn environment_variables_are_what_the_node_is_granted() {
    let env = env();
    let mut nodes = String::new();
    nodes += &reach(
        "granted",
        "mode = \"env\"",
        "env = { REGION = \"eu\", TIER = \"gold\" }",
    );
    nodes += &reach("bare", "mode = \"env\"", "");
    let report = run(&env, &nodes, &[("HOME_SECRET", "host only")], &[]);
    assert_eq!(
        node(&report, "granted")["output"]["vars"],
        serde_json::json!({"REGION": "eu", "TIER": "gold"})
    );
    assert_eq!(
        node(&report, "bare")["output"]["vars"],
        serde_json::json!({})
    );
}

/// Every file under `dir`, as bytes.
fn all_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(all_bytes(&path));
        } else {
            files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    files
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn a_secret_value_is_never_stored_shown_or_logged() {
    let env = env();
    let value = "s3cr3t-Value-0451";
    let mut nodes = String::new();
    for via in ["log", "print", "return", "fail"] {
        nodes += &reach(
            via,
            &format!("mode = \"leak\", name = \"API_TOKEN\", via = \"{via}\""),
            "secrets = [\"API_TOKEN\"]",
        );
    }
    let secrets_file = env.path().join("secrets.env");
    std::fs::write(
        &secrets_file,
        format!("# for the test\nAPI_TOKEN={value}\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secrets_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = workflow(&format!("[defaults]\ncontinue_on_error = true\n\n{nodes}"));
    let file = env.write("leak.toml", &text);
    let output = env
        .flow()
        .args(["--log-format", "json", "--log-level", "trace"])
        .args([
            "run",
            file.to_str().unwrap(),
            "--json",
            "--metrics-out",
            "m.prom",
        ])
        .args(["--secrets", secrets_file.to_str().unwrap()])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(node(&report, "return")["output"]["secret"], "***");
    assert_eq!(
        node(&report, "return")["output"]["nested"]["list"][0],
        "***"
    );
    assert!(
        node(&report, "fail")["error"]["message"]
            .as_str()
            .unwrap()
            .contains("failing with ***")
    );
    assert_eq!(report["secrets"], serde_json::json!(["API_TOKEN"]));
    let run_id = report["run_id"].as_str().unwrap();

    let mut shown = vec![
        ("run --json".to_string(), output.stdout.clone()),
        ("run's log".to_string(), output.stderr.clone()),
    ];
    for args in [
        vec!["status", run_id, "--json"],
        vec!["status", run_id],
        vec!["logs", run_id],
        vec!["list"],
    ] {
        let run = env.run(&args).success();
        shown.push((
            args.join(" "),
            format!("{}{}", run.stdout, run.stderr).into_bytes(),
        ));
    }
    shown.push((
        "metrics".into(),
        std::fs::read(env.path().join("m.prom")).unwrap(),
    ));
    shown.extend(all_bytes(&env.path().join("db")));
    for (place, bytes) in &shown {
        assert!(!contains(bytes, value), "the secret's value is in {place}");
    }
    // What was logged is there, masked.
    let logs = env.run(&["logs", run_id]).success().stdout;
    assert!(logs.contains("the secret is ***"), "{logs}");
    assert!(logs.contains("stdout: ***"), "{logs}");
}

#[test]
fn a_secrets_file_others_can_read_is_refused() {
    let env = env();
    let secrets_file = env.path().join("secrets.env");
    std::fs::write(&secrets_file, "API_TOKEN=x\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secrets_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let file = env.write(
        "s.toml",
        &workflow(&reach("n", "mode = \"env\"", "secrets = [\"API_TOKEN\"]")),
    );
    let run = env
        .run(&[
            "run",
            file.to_str().unwrap(),
            "--secrets",
            secrets_file.to_str().unwrap(),
        ])
        .expect_code(2);
    assert!(
        run.stderr.contains("may be read by other users"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("chmod 600"), "{}", run.stderr);
}

#[test]
fn a_placeholder_secret_reaches_only_the_granted_hosts_headers() {
    let env = env();
    let server = TestServer::start();
    let value = "pl4ceholder-Value-77";
    let origin = server.origin();
    let mut nodes = String::new();
    let grants =
        format!("http = [\"{origin}\"]\nsecrets = [\"API_TOKEN\"]\nsecret_mode = \"placeholder\"");
    nodes += &reach(
        "bearer",
        &format!("mode = \"bearer\", name = \"API_TOKEN\", url = \"{origin}/echo\""),
        &grants,
    );
    nodes += &reach("seen", "mode = \"env\"", &grants);
    nodes += &reach(
        "elsewhere",
        "mode = \"bearer\", name = \"API_TOKEN\", url = \"http://127.0.0.2:9/echo\"",
        &grants,
    );
    let report = run(&env, &nodes, &[("FLOW_SECRET_API_TOKEN", value)], &[]);

    let seen = server.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let authorization = seen[0]
        .headers
        .iter()
        .find(|(n, _)| n == "authorization")
        .map(|(_, v)| v.clone());
    assert_eq!(
        authorization.as_deref(),
        Some(format!("Bearer {value}").as_str())
    );
    // The plugin never saw the value: the echo of its own request is masked
    // only because it holds the value the host put there.
    let token = node(&report, "seen")["output"]["vars"]["API_TOKEN"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(token.starts_with("flow-placeholder-API_TOKEN-"), "{token}");
    assert!(!token.contains(value));
    assert_eq!(node(&report, "elsewhere")["status"], "failed");
}

#[test]
fn a_python_plugin_sees_its_granted_files_variables_and_secrets() {
    let env = env();
    env.add_plugin(&flow_test_artifacts::test_plugins_dir().join("fetch-py.wasm"));
    let py = |id: &str, input: &str, grants: &str| {
        format!("[nodes.{id}]\naction = \"fetch-py\"\ninput = {{ {input} }}\n{grants}\n\n")
    };
    let mut nodes = String::new();
    nodes += &py(
        "vars",
        "mode = \"env\"",
        "env = { REGION = \"eu\" }\nsecrets = [\"API_TOKEN\"]",
    );
    nodes += &py("read", "mode = \"read\", path = \"/data/in.txt\"", DATA);
    nodes += &py(
        "write_ro",
        "mode = \"write\", path = \"/data/new.txt\", text = \"x\"",
        DATA,
    );
    nodes += &py(
        "escape",
        "mode = \"read\", path = \"/data/../outside.txt\"",
        DATA,
    );
    let report = run(&env, &nodes, &[("FLOW_SECRET_API_TOKEN", "py-s3cret")], &[]);
    let vars = &node(&report, "vars")["output"]["vars"];
    assert_eq!(vars["REGION"], "eu", "{vars}");
    assert_eq!(
        vars["API_TOKEN"], "***",
        "the value is masked in the output: {vars}"
    );
    assert_eq!(node(&report, "read")["output"]["text"], "granted");
    assert_eq!(node(&report, "write_ro")["status"], "failed");
    assert_eq!(node(&report, "escape")["status"], "failed");
    assert!(!env.path().join("data/new.txt").exists());
}
