//! Grants: HTTP destinations, directories, environment variables and
//! secrets, each reached only as far as the workflow file grants, against a
//! server these tests start on 127.0.0.1.

use serde_json::Value;

use crate::http_server::TestServer;
use crate::support::{Env, node, workflow};

/// An `Env` with the `reach` plugin.
fn env() -> Env {
    let env = Env::new();
    env.add_plugin(&flow_test_artifacts::test_plugins_dir().join("reach.wasm"));
    env
}

/// Runs `nodes` (failures allowed) and returns the report.
fn run(env: &Env, nodes: &str) -> Value {
    env.run_nodes(nodes, &[], &[])
}

/// Everything a node's attempts logged, one line each.
fn logs(report: &Value, id: &str) -> String {
    node(report, id)["attempt_records"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["logs"].as_array().unwrap().iter())
        .map(|line| line["text"].as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn error(report: &Value, id: &str) -> String {
    node(report, id)["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("node {id} did not fail: {}", node(report, id)))
        .to_string()
}

fn get(id: &str, url: &str, grant: &str) -> String {
    format!(
        "[nodes.{id}]\naction = \"reach\"\ninput = {{ mode = \"get\", url = \"{url}\" }}\nhttp = [{grant}]\n\n"
    )
}

#[test]
fn a_granted_request_succeeds_and_is_recorded() {
    let env = env();
    let server = TestServer::start();
    let grant = format!("\"{}\"", server.origin());
    let text = workflow(&get("fetch", &server.url("/json"), &grant));
    let file = env.write("fetch.toml", &text);
    let report = env
        .run(&[
            "run",
            file.to_str().unwrap(),
            "--json",
            "--metrics-out",
            "metrics.prom",
        ])
        .success()
        .json();
    let fetch = node(&report, "fetch");
    assert_eq!(fetch["output"]["status"], 200);
    let body: Value = serde_json::from_str(fetch["output"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 16);
    let http = &fetch["attempt_records"][0]["http"];
    assert_eq!(http["requests"], 1);
    assert_eq!(http["refused"], 0);
    assert!(http["bytes_in"].as_u64().unwrap() > 500, "{http}");

    let status = env
        .run(&["status", report["run_id"].as_str().unwrap(), "--json"])
        .success()
        .json();
    assert_eq!(node(&status, "fetch")["attempt_records"][0]["http"], *http);
    let metrics = std::fs::read_to_string(env.path().join("metrics.prom")).unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("flow_http_requests_total{") && l.ends_with(" 1")),
        "{metrics}"
    );
    assert!(
        metrics.contains("flow_http_received_bytes_total{"),
        "{metrics}"
    );
}

#[test]
fn requests_beyond_the_grants_are_refused_before_any_connection() {
    let env = env();
    let server = TestServer::start();
    let port = server.port();
    let origin = server.origin();
    let mut nodes = String::new();
    // No grant at all.
    nodes += &get("none", &server.url("/json"), "");
    // Another host.
    nodes += &get("host", &server.url("/json"), "\"https://api.example.com\"");
    // Another port.
    nodes += &get(
        "port",
        &server.url("/json"),
        &format!("\"http://127.0.0.1:{}\"", port.wrapping_add(1).max(1)),
    );
    // Another scheme.
    nodes += &get(
        "scheme",
        &server.url("/json"),
        &format!("\"https://127.0.0.1:{port}\""),
    );
    // Another path.
    nodes += &get("path", &server.url("/json"), &format!("\"{origin}/v1/\""));
    // A path that climbs out of the granted one.
    nodes += &get(
        "climb",
        &server.url("/v1/../json"),
        &format!("\"{origin}/v1/\""),
    );
    // Another method.
    nodes += &get(
        "method",
        &server.url("/json"),
        &format!("{{ url = \"{origin}\", methods = [\"POST\"] }}"),
    );
    let report = run(&env, &nodes);

    assert!(
        server.seen().is_empty(),
        "nothing reached the server: {:?}",
        server.seen()
    );
    for (id, says) in [
        (
            "none",
            format!("this node has no HTTP grant; allow it with http = [\"{origin}\"]"),
        ),
        (
            "host",
            format!("(it may reach https://api.example.com); allow it with \"{origin}\""),
        ),
        ("port", format!("allow it with \"{origin}\"")),
        (
            "scheme",
            format!("(it may reach https://127.0.0.1:{port}); allow it with \"{origin}\""),
        ),
        ("path", format!("(it may reach {origin}/v1/); allow it")),
        ("climb", format!("refused GET {origin}/v1/../json")),
        ("method", format!("(it may reach {origin} (POST))")),
    ] {
        let logged = logs(&report, id);
        assert!(logged.contains(&says), "{id}: {logged}");
        assert!(logged.contains("refused GET"), "{id}: {logged}");
        assert!(
            error(&report, id).contains("request refused by the host"),
            "{id}"
        );
        assert_eq!(node(&report, id)["error"]["kind"], "fatal", "{id}");
        assert_eq!(
            node(&report, id)["attempt_records"][0]["http"]["refused"],
            1,
            "{id}"
        );
    }
}

#[test]
fn a_name_that_resolves_to_the_hosts_own_network_needs_a_literal_grant() {
    let env = env();
    let server = TestServer::start();
    let port = server.port();
    let by_name = format!("http://localhost:{port}/json");
    let mut nodes = String::new();
    nodes += &get("named", &by_name, &format!("\"http://localhost:{port}\""));
    nodes += &get(
        "private",
        &by_name,
        &format!("{{ url = \"http://localhost:{port}\", private = true }}"),
    );
    nodes += &get(
        "literal",
        &server.url("/json"),
        &format!("\"{}\"", server.origin()),
    );
    let report = run(&env, &nodes);

    let logged = logs(&report, "named");
    assert!(
        logged.contains("localhost resolves to 127.0.0.1, a loopback address"),
        "{logged}"
    );
    assert!(error(&report, "named").contains("the host's own network"));
    assert_eq!(node(&report, "private")["output"]["status"], 200);
    assert_eq!(node(&report, "literal")["output"]["status"], 200);
    assert_eq!(
        server.seen().len(),
        2,
        "the refused request never reached the server"
    );
}

#[test]
fn a_redirect_to_a_refused_destination_is_refused() {
    let env = env();
    let server = TestServer::start();
    let origin = server.origin();
    let to_granted = server.url(&format!("/redirect?to={origin}/json"));
    let to_elsewhere = server.url("/redirect?to=http://127.0.0.2:9/json");
    let mut nodes = String::new();
    nodes += &get("followed", &to_granted, &format!("\"{origin}\""));
    nodes += &get("refused", &to_elsewhere, &format!("\"{origin}\""));
    let report = run(&env, &nodes);

    assert_eq!(node(&report, "followed")["output"]["status"], 200);
    assert_eq!(
        node(&report, "followed")["attempt_records"][0]["http"]["requests"],
        2
    );
    let logged = logs(&report, "refused");
    assert!(
        logged.contains("refused GET http://127.0.0.2:9/json"),
        "{logged}"
    );
}

#[test]
fn responses_are_capped_and_a_silent_server_meets_the_timeout() {
    let env = env();
    let server = TestServer::start();
    let grant = format!("\"{}\"", server.origin());
    let mut nodes = String::new();
    nodes += &get("small", &server.url("/big?bytes=1000"), &grant);
    nodes += &get("sized", &server.url("/big?bytes=100000"), &grant);
    nodes += &get("streamed", &server.url("/stream?bytes=100000"), &grant);
    nodes += &get("silent", &server.url("/hang"), &grant);
    nodes = nodes.replace("http = [", "http_max_response = \"4KiB\"\nhttp = [");
    nodes = nodes.replacen(
        "[nodes.silent]\n",
        "[nodes.silent]\ntimeout = \"300ms\"\n",
        1,
    );
    let report = run(&env, &nodes);

    assert_eq!(node(&report, "small")["status"], "succeeded");
    assert!(error(&report, "sized").contains("larger than the node's http_max_response"));
    assert!(logs(&report, "sized").contains("(http_max_response)"));
    assert_eq!(node(&report, "streamed")["status"], "failed");
    let silent = node(&report, "silent");
    assert_eq!(silent["status"], "failed", "{silent}");
    let kind = silent["error"]["kind"].as_str().unwrap();
    let message = error(&report, "silent");
    assert!(
        kind == "timeout" || message.contains("no response in time"),
        "{kind}: {message}"
    );
}

#[test]
fn plugins_say_what_they_reach_and_validate_warns_of_what_is_not_granted() {
    let env = env();
    let listed = env.run(&["plugins", "plugins", "--json"]).success().json();
    let reach = listed["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "reach")
        .unwrap();
    assert_eq!(
        reach["reaches"],
        serde_json::json!(["http", "filesystem", "environment"])
    );
    assert!(
        reach["imports"].as_array().unwrap().iter().any(|i| i
            .as_str()
            .unwrap()
            .starts_with("wasi:http/outgoing-handler@")),
        "{reach}"
    );
    let echo = listed["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "echo")
        .unwrap();
    assert!(
        !echo["reaches"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "http"),
        "{echo}"
    );
    let table = env.run(&["plugins", "plugins"]).success().stdout;
    assert!(table.contains("REACHES"), "{table}");
    assert!(table.contains("http, filesystem, environment"), "{table}");

    let mut nodes = get("granted", "http://127.0.0.1:9/", "\"http://127.0.0.1:9\"");
    nodes += &get("bare", "http://127.0.0.1:9/", "");
    nodes += "[nodes.plain]\naction = \"echo\"\n";
    let file = env.write("warn.toml", &workflow(&nodes));
    let run = env.run(&["validate", file.to_str().unwrap()]).success();
    assert!(
        run.stderr.contains(
            "warning: plugin `reach` imports wasi:http, but node bare has no `http` grant"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("but nodes granted, bare have no `files` grant"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("`echo`"), "{}", run.stderr);
    let verdict = env
        .run(&["validate", file.to_str().unwrap(), "--json"])
        .success()
        .json();
    assert_eq!(
        verdict["warnings"].as_array().unwrap().len(),
        2,
        "{verdict}"
    );
}

#[test]
fn a_changed_grant_is_a_changed_workflow_for_resume() {
    let env = env();
    let server = TestServer::start();
    let text = workflow(&get("fetch", &server.url("/json"), ""));
    let file = env.write("resume.toml", &text);
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .expect_code(1)
        .json();
    let run_id = report["run_id"].as_str().unwrap();
    let granted = text.replace("http = []", &format!("http = [\"{}\"]", server.origin()));
    env.write("resume.toml", &granted);
    let refused = env.run(&["resume", run_id]).expect_code(2);
    assert!(refused.stderr.contains("changed"), "{}", refused.stderr);
    let resumed = env
        .run(&["resume", run_id, "--force", "--json"])
        .success()
        .json();
    assert_eq!(node(&resumed, "fetch")["output"]["status"], 200);
}

#[test]
fn the_report_example_reads_fetches_with_a_secret_and_writes() {
    let env = Env::new();
    let server = TestServer::start();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let text = std::fs::read_to_string(examples.join("report.toml"))
        .unwrap()
        .replace("127.0.0.1:8088", &server.addr.to_string());
    std::fs::create_dir_all(env.path().join("data")).unwrap();
    std::fs::create_dir_all(env.path().join("out")).unwrap();
    std::fs::copy(
        examples.join("data/sales.csv"),
        env.path().join("data/sales.csv"),
    )
    .unwrap();
    let file = env.write("report.toml", &text);
    let plugins = env.plugins();
    let run = env
        .flow()
        .env("FLOW_SECRET_RATES_TOKEN", "t0ken-for-the-test")
        .args([
            "run",
            file.to_str().unwrap(),
            "--json",
            "--plugins",
            plugins.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(env.path().join("out/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["count"], 5);
    assert_eq!(report["sum"], 5096.5);
    assert_eq!(report["currency"], "EUR");
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0]
            .headers
            .contains(&("authorization".into(), "Bearer t0ken-for-the-test".into())),
        "{seen:?}"
    );
}

/// A plugin of another language makes one granted and one refused request;
/// the refused one fails with `refusal` in its error.
fn requests_from(plugin: &str, refusal: &str) -> Env {
    let env = env();
    env.add_test_plugin(plugin);
    let server = TestServer::start();
    let elsewhere = server.port().wrapping_add(1).max(1);
    let mut nodes = String::new();
    for (id, url) in [
        ("allowed", server.url("/json")),
        ("refused", format!("http://127.0.0.1:{elsewhere}/json")),
    ] {
        nodes += &format!(
            "[nodes.{id}]\naction = \"{plugin}\"\ninput = {{ url = \"{url}\" }}\nhttp = [\"{}\"]\n\n",
            server.origin()
        );
    }
    let report = run(&env, &nodes);
    let allowed = node(&report, "allowed");
    assert_eq!(allowed["output"]["status"], 200, "{allowed}");
    let body = allowed["output"]["body"].as_str().unwrap();
    assert!(body.contains("item number 3"), "{body}");
    assert!(
        error(&report, "refused").contains(refusal),
        "{}",
        error(&report, "refused")
    );
    assert_eq!(node(&report, "refused")["error"]["kind"], "fatal");
    assert!(logs(&report, "refused").contains("no grant of this node allows it"));
    assert_eq!(server.seen().len(), 1, "the refused request never left");
    env
}

#[test]
fn a_javascript_plugin_fetches_and_reads_as_far_as_its_node_is_granted() {
    let env = requests_from("fetch-js", "fetch failed");
    let mut nodes = String::new();
    nodes += "[nodes.granted]\naction = \"fetch-js\"\ninput = { mode = \"env\" }\nenv = { REGION = \"eu\" }\nsecrets = [\"API_TOKEN\"]\n\n";
    nodes += "[nodes.bare]\naction = \"fetch-js\"\ninput = { mode = \"env\" }\n";
    let report = env.run_nodes(&nodes, &[("FLOW_SECRET_API_TOKEN", "js-s3cret")], &[]);
    let granted = &node(&report, "granted")["output"];
    assert_eq!(granted["region"], "eu", "{granted}");
    assert_eq!(granted["token"], "***", "{granted}");
    assert!(error(&report, "bare").contains("the secret API_TOKEN is not granted to this node"));
}

#[test]
fn a_python_plugin_requests_as_far_as_its_node_is_granted() {
    let env = requests_from("fetch-py", "request refused by the host");
    // Several at once: the `/gather` requests are answered only once three
    // wait at the server together (one alone gets a 503 after 10 s).
    let server = TestServer::start();
    let origin = server.origin();
    let nodes = format!(
        r#"[nodes.many]
action = "fetch-py"
http = ["{origin}"]
input = {{ mode = "many", in_flight = 3, urls = [
  "{origin}/gather?n=3", "{origin}/redirect?to={origin}/gather?n=3", "http://127.0.0.2:9/x", "{origin}/gather?n=3",
] }}
"#
    );
    // Redirects are followed five deep and no further.
    let chain = |hops| redirect_chain(&origin, hops);
    let nodes = nodes
        + &format!(
            "[nodes.five]\naction = \"fetch-py\"\nhttp = [\"{origin}\"]\ninput = {{ url = \"{}\" }}\n\n\
             [nodes.six]\naction = \"fetch-py\"\nhttp = [\"{origin}\"]\ninput = {{ url = \"{}\" }}\n",
            chain(5),
            chain(6)
        );
    let report = run(&env, &nodes);
    let results = &node(&report, "many")["output"]["results"];
    // Two wait together; the third arrives when the redirect is followed.
    for i in [0, 1, 3] {
        assert_eq!(results[i]["body"], "{\"together\":3}", "{results}");
    }
    assert!(
        results[2]["error"]
            .as_str()
            .unwrap()
            .contains("request refused by the host"),
        "{results}"
    );
    assert_eq!(node(&report, "five")["output"]["status"], 200);
    let error = error(&report, "six");
    assert!(error.contains("more than 5 redirects"), "{error}");
}

#[test]
fn https_requests_go_over_tls_and_check_the_certificate() {
    use std::io::Read;
    // A server that records the first bytes it receives, then hangs up: no
    // certificate the web's roots sign can come from 127.0.0.1.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let first = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut bytes = [0; 5];
        stream.read_exact(&mut bytes).unwrap();
        bytes
    });
    let env = env();
    let url = format!("https://127.0.0.1:{port}/json");
    let report = run(
        &env,
        &get("tls", &url, &format!("\"https://127.0.0.1:{port}\"")),
    );
    let bytes = first.join().unwrap();
    assert_eq!(bytes[0], 0x16, "a TLS handshake record: {bytes:?}");
    assert_eq!(node(&report, "tls")["status"], "failed");
    let message = error(&report, "tls");
    assert!(
        message.contains("request failed: GET https://127.0.0.1"),
        "{message}"
    );
}

#[test]
fn an_attempt_sends_at_most_http_max_requests() {
    let env = env();
    let server = TestServer::start();
    let origin = server.origin();
    // A redirect is a second request: one over the limit of 1.
    let url = server.url(&format!("/redirect?to={origin}/json"));
    let nodes = get("capped", &url, &format!("\"{origin}\"")).replacen(
        "http = [",
        "http_max_requests = 1\nhttp = [",
        1,
    );
    let report = run(&env, &nodes);
    assert_eq!(node(&report, "capped")["status"], "failed");
    let logged = logs(&report, "capped");
    assert!(
        logged.contains("the attempt already sent 1 requests, the limit (http_max_requests)"),
        "{logged}"
    );
    assert_eq!(server.seen().len(), 1);
}

#[test]
fn a_guest_path_must_be_absolute() {
    let env = env();
    std::fs::create_dir_all(env.path().join("data")).unwrap();
    let nodes =
        "[nodes.n]\naction = \"reach\"\nfiles = [{ host = \"data\", guest = \"data/../x\" }]\n";
    let file = env.write("guest.toml", &workflow(nodes));
    let run = env
        .run(&["validate", file.to_str().unwrap()])
        .expect_code(2);
    assert!(
        run.stderr
            .contains("the guest path \"data/../x\" must be absolute"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("guest.toml:7:"), "{}", run.stderr);
}

#[test]
fn the_http_plugin_sends_a_list_of_requests_several_at_once() {
    let env = Env::new();
    let server = TestServer::start();
    let origin = server.origin();
    // The three `/gather` requests are answered only once all three wait
    // at the server together: one at a time, the first would wait 10 s
    // and get a 503.
    let nodes = format!(
        r#"[nodes.many]
action = "http"
http = ["{origin}"]
input = {{ in_flight = 3, requests = [
  {{ url = "{origin}/gather?n=3" }},
  {{ url = "{origin}/echo", method = "POST", json = {{ n = 1 }} }},
  {{ url = "{origin}/gather?n=3" }},
  {{ url = "{origin}/redirect?to={origin}/json" }},
  {{ url = "{origin}/gather?n=3" }},
  {{ url = "{origin}/big?bytes=150000" }},
  {{ url = "{origin}/stream?bytes=150000" }},
] }}

[nodes.refused]
action = "http"
http = ["{origin}"]
input = {{ requests = [{{ url = "{origin}/json" }}, {{ url = "http://127.0.0.2:9/x" }}, {{ url = "http://127.0.0.3:9/y" }}] }}
"#
    );
    let report = run(&env, &nodes);
    let many = node(&report, "many");
    assert_eq!(many["status"], "succeeded", "{many}");
    let responses = many["output"]["responses"].as_array().unwrap();
    assert_eq!(responses.len(), 7);
    for i in [0, 2, 4] {
        assert_eq!(responses[i]["body"], serde_json::json!({ "together": 3 }));
    }
    assert_eq!(responses[1]["body"]["method"], "POST");
    assert_eq!(responses[1]["body"]["body"], "{\"n\":1}");
    assert_eq!(responses[3]["status"], 200, "the redirect is followed");
    assert_eq!(responses[3]["body"]["items"].as_array().unwrap().len(), 16);
    // Bodies of several reads each, with a length and without (chunked).
    for i in [5, 6] {
        assert_eq!(responses[i]["body"].as_str().unwrap().len(), 150_000);
    }
    // Seven requests and the redirect's second.
    assert_eq!(many["attempt_records"][0]["http"]["requests"], 8);
    assert!(
        logs(&report, "many").contains("7 requests, 3 at once: "),
        "{}",
        logs(&report, "many")
    );

    // The first failure by place fails the node.
    let error = error(&report, "refused");
    assert!(
        error.contains("requests[1]: request refused by the host"),
        "{error}"
    );
    assert!(
        logs(&report, "refused").contains("refused GET http://127.0.0.2:9/x"),
        "{}",
        logs(&report, "refused")
    );
}

/// A URL of `origin` that redirects `hops` times before it reaches `/json`.
fn redirect_chain(origin: &str, hops: usize) -> String {
    (0..hops).fold(format!("{origin}/json"), |to, _| {
        format!("{origin}/redirect?to={to}")
    })
}

#[test]
fn redirects_are_followed_five_deep_and_no_further() {
    let env = env();
    let server = TestServer::start();
    let origin = server.origin();
    let chain = |hops| redirect_chain(&origin, hops);
    let grant = format!("\"{origin}\"");
    let nodes = get("five", &chain(5), &grant) + &get("six", &chain(6), &grant);
    let report = run(&env, &nodes);
    assert_eq!(node(&report, "five")["output"]["status"], 200);
    let error = error(&report, "six");
    assert!(error.contains("more than 5 redirects"), "{error}");
}
