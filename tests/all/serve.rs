//! `flow serve`: the HTTP API over real HTTP, on an ephemeral loopback
//! port, with the real binary.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Env, Run, workflow};

/// A `flow serve` of a scratch directory; stopped (SIGTERM) when dropped.
pub struct Served {
    child: Option<Child>,
    pub url: String,
    agent: ureq::Agent,
    token: Option<String>,
}

/// A response: status, content type, body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub text: String,
}

impl Reply {
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Panics unless this is a problem document with this status.
    #[track_caller]
    pub fn problem(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(
            self.content_type, "application/problem+json",
            "{}",
            self.text
        );
        let problem = self.json();
        assert_eq!(problem["status"], status);
        assert!(
            problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{problem}"
        );
        problem
    }
}

impl Served {
    /// Another client of the same server, presenting `token`.
    pub fn with_token(&self, token: String) -> Self {
        Self {
            child: None,
            url: self.url.clone(),
            agent: agent(),
            token: Some(token),
        }
    }

    /// Starts `flow serve` in `env` with `workflows/` and `plugins/`, and
    /// these extra arguments; waits for its "listening" line.
    pub fn start(env: &Env, extra: &[&str]) -> Self {
        std::fs::create_dir_all(env.path().join("workflows")).unwrap();
        let mut child = env
            .flow()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--workflows",
                "workflows",
            ])
            .args(["--plugins", "plugins"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start flow serve");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let Some(url) = line.trim().strip_prefix("flow serve: listening on ") else {
            let stderr = crate::support::stderr_of(&mut child);
            panic!("flow serve did not start: {line}\n{stderr}");
        };
        let url = url.to_string();
        // Keep reading, so that the server never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let mut stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Self {
            child: Some(child),
            url,
            agent: agent(),
            token: None,
        }
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        let url = format!("{}{path}", self.url);
        let send = || {
            let mut builder = ureq::http::Request::builder().method(method).uri(&url);
            if let Some(token) = &self.token {
                builder = builder.header("authorization", format!("Bearer {token}"));
            }
            for (name, value) in headers {
                builder = builder.header(*name, *value);
            }
            match body {
                Some(body) => self.agent.run(
                    builder
                        .header("content-type", "application/json")
                        .body(body.to_string())
                        .unwrap(),
                ),
                None => self.agent.run(builder.body(()).unwrap()),
            }
        };
        let mut result = send();
        // A server may close a kept-alive connection as the next request
        // goes out on it (after refusing a request whose body it did not
        // read, say); a GET is sent again, as HTTP clients do.
        if method == "GET" && matches!(result, Err(ureq::Error::Io(_))) {
            result = send();
        }
        let mut response = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        Reply {
            status: response.status().as_u16(),
            content_type: response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default(),
            headers,
            text: response
                .body_mut()
                .with_config()
                .limit(1 << 30)
                .read_to_string()
                .unwrap(),
        }
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], None)
    }

    pub fn post(&self, path: &str, body: Option<&str>) -> Reply {
        self.request("POST", path, &[], body)
    }

    pub fn post_with(&self, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Reply {
        self.request("POST", path, headers, body)
    }

    pub fn delete(&self, path: &str) -> Reply {
        self.request("DELETE", path, &[], None)
    }

    /// Sends `head` (a request's line and headers, each ending in CRLF)
    /// and `body` as they are, over a connection of its own; the reply's
    /// status and body. For headers a client library writes itself, such
    /// as `Host`.
    pub fn raw(&self, head: &str, body: &str) -> (u16, String) {
        use std::io::Write;
        let address = self.url.strip_prefix("http://").unwrap();
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        write!(
            stream,
            "{head}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        let status = reply
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not HTTP: {reply}"));
        let body = reply.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        (status, body.to_string())
    }

    /// Starts a run of workflow file `name` with these parameters; its id.
    #[track_caller]
    pub fn start_run(&self, name: &str, params: Value) -> String {
        let reply = self.post(
            &format!("/api/v1/workflows/{name}/runs"),
            Some(&json!({ "params": params }).to_string()),
        );
        assert_eq!(reply.status, 201, "{}", reply.text);
        reply.json()["run_id"].as_str().unwrap().to_string()
    }

    /// The server's event stream (of one run, or all).
    pub fn events(&self, run: Option<&str>) -> Events {
        let path = match run {
            Some(run) => format!("/api/v1/events?run={run}"),
            None => "/api/v1/events".to_string(),
        };
        self.stream(&path)
    }

    /// A server-sent-events stream.
    pub fn stream(&self, path: &str) -> Events {
        let mut request = self.agent.get(format!("{}{path}", self.url));
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = request.call().unwrap();
        assert_eq!(response.status(), 200);
        Events {
            reader: BufReader::new(Box::new(response.into_body().into_reader())),
        }
    }

    /// Waits, through the event stream, until run `id` ended; its detail.
    pub fn wait(&self, id: &str, events: &mut Events) -> Value {
        loop {
            let detail = self.get(&format!("/api/v1/runs/{id}")).json();
            if detail["status"] != "running" {
                return detail;
            }
            // Something happened, or the keep-alive came: look again.
            events.next();
        }
    }

    /// Sends SIGTERM and waits for the server to exit; its exit code.
    pub fn terminate(&mut self) -> i32 {
        let mut child = self.child.take().expect("running");
        unsafe_kill(child.id(), "TERM");
        child.wait().unwrap().code().unwrap_or(-1)
    }
}

fn unsafe_kill(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe_kill(child.id(), "KILL");
            let _ = child.wait();
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// Events read from a stream.
pub struct Events {
    reader: BufReader<Box<dyn Read + Send>>,
}

impl Events {
    /// The next event: its name and data; `None` when the stream ended.
    pub fn next(&mut self) -> Option<(String, Value)> {
        let (mut name, mut data) = (String::new(), String::new());
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if name.is_empty() && data.is_empty() {
                    continue;
                }
                let value = serde_json::from_str(&data).unwrap_or(Value::String(data));
                return Some((name, value));
            }
            if let Some(value) = line.strip_prefix("event:") {
                name = value.trim().to_string();
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push_str(value.trim_start());
            }
            // Comments (`:` keep-alives) are skipped.
        }
    }

    /// Reads until an event named `name` for which `pick` holds.
    pub fn until(&mut self, name: &str, pick: impl Fn(&Value) -> bool) -> Value {
        loop {
            match self.next() {
                Some((n, data)) if n == name && pick(&data) => return data,
                Some(_) => {}
                None => panic!("the stream ended before a `{name}` event"),
            }
        }
    }
}

const SLEEPY: &str = "[workflow]\nid = \"sleepy\"\nplugins = \"../plugins\"\n\
    [nodes.nap]\naction = \"misbehave\"\ninput = { mode = \"sleep\", ms = 600000, first_attempt_only = true }\n\
    [nodes.after]\naction = \"echo\"\ndepends_on = [\"nap\"]\n";

const GREET: &str = "[workflow]\nid = \"greet\"\n\
    [params]\nname = { type = \"string\", default = \"Ada\" }\ntimes = { type = \"integer\" }\n\
    [nodes.hello]\naction = \"echo\"\ninput = { who = \"${{ run.params.name }}\", n = \"${{ run.params.times }}\" }\n\
    [nodes.log]\naction = \"misbehave\"\ndepends_on = [\"hello\"]\ninput = { mode = \"log\", count = 3 }\n";

pub fn served(env: &Env, extra: &[&str]) -> Served {
    env.write("workflows/greet.toml", GREET);
    env.write("workflows/sleepy.toml", SLEEPY);
    env.write(
        "workflows/broken.toml",
        "[workflow]\nid = \"broken\"\n[nodes.a]\naction = \"echo\"\ndepends_on = [\"ghost\"]\n",
    );
    Served::start(env, extra)
}

/// A new token called `name` in `tokens` of `env`.
pub fn token_of(env: &Env, name: &str) -> String {
    env.run(&["token", "--token-file", "tokens", "--name", name])
        .success()
        .stdout
        .trim()
        .to_string()
}

/// A new token in `tokens` of `env`.
pub fn token(env: &Env) -> String {
    token_of(env, "")
}

pub fn env() -> Env {
    let env = Env::new();
    std::fs::create_dir_all(env.path().join("workflows")).unwrap();
    env
}

#[test]
fn workflows_are_listed_with_their_graphs_params_and_errors() {
    let env = env();
    let server = served(&env, &[]);
    let list = server.get("/api/v1/workflows").json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["broken", "greet", "sleepy"]);
    let broken = &list[0];
    assert_eq!(broken["valid"], false);
    let message = broken["errors"]["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("ghost"), "{message}");
    assert_eq!(broken["errors"]["errors"][0]["line"], 5);
    let greet = &list[1];
    assert_eq!(greet["valid"], true);
    assert_eq!(greet["nodes"], 2);
    assert_eq!(
        greet["params"][0],
        json!({"name": "name", "type": "string", "default": "Ada", "description": null})
    );
    assert_eq!(greet["params"][1]["default"], Value::Null, "required");

    let detail = server.get("/api/v1/workflows/greet").json();
    assert_eq!(
        detail["graph"][1],
        json!({
            "id": "log", "action": "misbehave", "depends_on": ["hello"], "level": 1,
            "map": false, "conditional": false,
        })
    );
    let problem = server.get("/api/v1/workflows/nope").problem(404);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("has no nope.toml"),
        "{problem}"
    );
    // Names are looked up among the files, never joined into a path.
    server.get("/api/v1/workflows/..%2Fdb").problem(404);
}

#[test]
fn a_run_started_over_the_api_is_recorded_like_flow_run() {
    let env = env();
    let server = served(&env, &[]);
    let mut events = server.events(None);
    let id = server.start_run("greet", json!({"times": 3}));
    let detail = server.wait(&id, &mut events);
    assert_eq!(detail["status"], "succeeded", "{detail}");
    assert_eq!(detail["params"], json!({"name": "Ada", "times": 3}));
    assert_eq!(
        detail["nodes"][0]["output"],
        json!({"who": "Ada", "n": 3}),
        "{detail}"
    );
    assert_eq!(
        detail["nodes"][1]["attempt_records"][0]["fuel_used"]
            .as_u64()
            .map(|f| f > 0),
        Some(true)
    );

    // The same records `flow status` reads, once the server let go.
    let logs = server
        .get(&format!("/api/v1/runs/{id}/nodes/log/logs"))
        .json();
    assert_eq!(logs["lines"].as_array().unwrap().len(), 3, "{logs}");
    assert_eq!(logs["lines"][0]["node"], "log");
    assert_eq!(logs["lines"][0]["attempt"], 1);
    // A followed node that ended: its lines, then `end`.
    let mut follow = server.stream(&format!("/api/v1/runs/{id}/nodes/log/logs?follow=true"));
    for _ in 0..3 {
        assert_eq!(follow.next().unwrap().0, "line");
    }
    assert_eq!(follow.next().unwrap().0, "end");
    assert!(follow.next().is_none());
    server
        .get(&format!("/api/v1/runs/{id}/nodes/ghost/logs"))
        .problem(404);
    drop(server);
    let status = env.run(&["status", &id, "--json"]).success().json();
    assert_eq!(status["status"], "succeeded");
    assert_eq!(status["nodes"], detail["nodes"]);
}

#[test]
fn a_runs_nodes_are_read_a_page_at_a_time_and_one_in_full() {
    let env = env();
    env.write(
        "workflows/fan.toml",
        "[workflow]\nid = \"fan\"\n\
         [nodes.list]\naction = \"echo\"\ninput = { items = [1, 2, 3] }\n\
         [nodes.each]\naction = \"echo\"\ndepends_on = [\"list\"]\nmap = \".deps.list.items\"\ninput = { n = \"${{ item }}\" }\n\
         [nodes.last]\naction = \"echo\"\ndepends_on = [\"list\", \"each\"]\n",
    );
    let server = served(&env, &[]);
    let mut events = server.events(None);
    let id = server.start_run("fan", json!({}));
    server.wait(&id, &mut events);

    let page = server
        .get(&format!("/api/v1/runs/{}/nodes", &id[..20]))
        .json();
    assert_eq!(page["run"]["run_id"], id.as_str());
    assert_eq!(page["run"]["status"], "succeeded");
    assert_eq!(
        (page["total"].as_u64(), page["levels"].as_u64()),
        (Some(3), Some(3))
    );
    let nodes = page["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    assert_eq!(nodes[1]["id"], "each");
    assert_eq!(nodes[1]["map"], true);
    assert_eq!(nodes[1]["elements"], 3);
    assert_eq!(nodes[2]["depends_on"], json!([0, 1]));
    assert_eq!(nodes[2]["level"], 2);
    assert_eq!(nodes[2]["status"], "succeeded");
    assert!(nodes[2].get("output").is_none(), "a page holds no outputs");
    let second = server
        .get(&format!("/api/v1/runs/{id}/nodes?offset=1&limit=1"))
        .json();
    assert_eq!(second["offset"], 1);
    assert_eq!(second["nodes"][0]["id"], "each");
    let past = server
        .get(&format!("/api/v1/runs/{id}/nodes?offset=9"))
        .json();
    assert_eq!(past["nodes"], json!([]));
    for (bad, status) in [
        ("limit=0", 422),
        ("limit=10001", 422),
        ("offset=-1", 400),
        ("limit=many", 400),
    ] {
        server
            .get(&format!("/api/v1/runs/{id}/nodes?{bad}"))
            .problem(status);
    }
    server.get("/api/v1/runs/01ZZZZZZ/nodes").problem(404);

    // One node in full: its input as written, output, attempts.
    let each = server.get(&format!("/api/v1/runs/{id}/nodes/each")).json();
    assert_eq!(each["input"], json!({"n": "${{ item }}"}));
    assert_eq!(each["depends_on"], json!(["list"]));
    assert_eq!(each["output"], json!([{"n": 1}, {"n": 2}, {"n": 3}]));
    assert_eq!(each["elements"].as_array().unwrap().len(), 3);
    assert_eq!(each["elements"][2]["id"], "each[2]");
    let element = server
        .get(&format!("/api/v1/runs/{id}/nodes/each%5B1%5D"))
        .json();
    assert_eq!(element["output"], json!({"n": 2}));
    assert_eq!(element["attempt_records"][0]["number"], 1);
    assert!(element.get("elements").is_none());
    server
        .get(&format!("/api/v1/runs/{id}/nodes/ghost"))
        .problem(404);
}

#[test]
fn the_dashboard_is_served_by_the_binary() {
    let env = env();
    let server = served(&env, &[]);
    for path in [
        "/",
        "/workflows",
        "/workflows/greet",
        "/runs",
        "/runs/01ABC",
    ] {
        let page = server.get(path);
        assert_eq!(page.status, 200, "{path}");
        assert!(
            page.text
                .contains("<script type=\"module\" src=\"/ui/app.js\">")
        );
    }
    let script = server.get("/ui/app.js");
    assert_eq!(script.content_type, "text/javascript; charset=utf-8");
    assert_eq!(script.header("x-content-type-options"), Some("nosniff"));
    let tag = script.header("etag").unwrap().to_string();
    let again = server.request("GET", "/ui/app.js", &[("if-none-match", &tag)], None);
    assert_eq!(again.status, 304);
    assert!(again.text.is_empty());
    let stale = server.request("GET", "/ui/app.js", &[("if-none-match", "\"old\"")], None);
    assert_eq!(stale.status, 200);
    assert_eq!(
        server.get("/ui/app.css").content_type,
        "text/css; charset=utf-8"
    );
    server.get("/ui/../Cargo.toml").problem(404);
    server.get("/ui/secrets.js").problem(404);
    // Nothing is fetched from elsewhere: every script, style and image
    // the page names is the server's own.
    let page = server.get("/").text;
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );
}

#[test]
fn the_event_stream_follows_each_node() {
    let env = env();
    let server = served(&env, &[]);
    let mut all = server.events(None);
    let id = server.start_run("greet", json!({"times": 1}));
    let mut seen = Vec::new();
    loop {
        let (name, data) = all.next().unwrap();
        if data["run_id"] != id.as_str() {
            continue;
        }
        seen.push(format!("{name} {}", data["node"].as_str().unwrap_or("")));
        if name == "run_finished" {
            assert_eq!(data["status"], "succeeded");
            break;
        }
    }
    assert_eq!(
        seen,
        [
            "run_started ",
            "attempt_started hello",
            "attempt_finished hello",
            "node_finished hello",
            "attempt_started log",
            "attempt_finished log",
            "node_finished log",
            "run_finished ",
        ]
    );
}

#[test]
fn runs_are_listed_a_page_at_a_time_with_filters() {
    let env = env();
    let server = served(&env, &[]);
    let mut events = server.events(None);
    let mut ids = Vec::new();
    for times in 0..5 {
        let id = server.start_run("greet", json!({"times": times}));
        server.wait(&id, &mut events);
        ids.push(id);
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut path = "/api/v1/runs?limit=2".to_string();
    loop {
        let page = server.get(&path).json();
        let runs = page["runs"].as_array().unwrap();
        assert!(runs.len() <= 2);
        seen.extend(
            runs.iter()
                .map(|r| r["run_id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/runs?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every run once, newest first");

    let count = |query: &str| {
        server.get(&format!("/api/v1/runs?{query}")).json()["runs"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(count("workflow=greet"), 5);
    assert_eq!(count("workflow=other"), 0);
    assert_eq!(count("status=succeeded"), 5);
    assert_eq!(count("status=failed"), 0);
    let third = server.get(&format!("/api/v1/runs/{}", ids[2])).json();
    let created = third["created_at"].as_str().unwrap();
    assert_eq!(count(&format!("since={created}")), 3);
    assert_eq!(count(&format!("until={created}")), 2);

    for (query, needle) in [
        ("limit=0", "limit must be 1 to 500"),
        ("limit=x", "limit"),
        ("status=done", "is not one of running"),
        ("since=yesterday", "is not an RFC 3339 time"),
    ] {
        let problem = server.get(&format!("/api/v1/runs?{query}")).problem(400);
        assert!(
            problem["detail"].as_str().unwrap().contains(needle),
            "{query}: {problem}"
        );
    }
}

#[test]
fn an_idempotency_key_starts_one_run() {
    let env = env();
    let server = served(&env, &[]);
    let body = json!({"params": {"times": 2}}).to_string();
    let key = [("idempotency-key", "order-42")];
    let first = server.post_with("/api/v1/workflows/greet/runs", &key, Some(&body));
    assert_eq!(first.status, 201, "{}", first.text);
    let again = server.post_with("/api/v1/workflows/greet/runs", &key, Some(&body));
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json()["run_id"], first.json()["run_id"]);
    let other = json!({"params": {"times": 3}}).to_string();
    let problem = server
        .post_with("/api/v1/workflows/greet/runs", &key, Some(&other))
        .problem(422);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("was used for another request")
    );
    let long = "k".repeat(256);
    server
        .post_with(
            "/api/v1/workflows/greet/runs",
            &[("idempotency-key", &long)],
            Some(&body),
        )
        .problem(400);
    let runs = server.get("/api/v1/runs").json();
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1);
}

#[test]
fn bad_requests_get_problem_documents() {
    let env = env();
    let server = served(&env, &[]);
    let cases: Vec<(Reply, u16, &str)> = vec![
        (
            server.post("/api/v1/workflows/greet/runs", Some("{bad")),
            400,
            "JSON",
        ),
        (
            server.post("/api/v1/workflows/greet/runs", Some(r#"{"parms": {}}"#)),
            422,
            "unknown field `parms`",
        ),
        (
            server.post("/api/v1/workflows/greet/runs", Some(r#"{"params": {}}"#)),
            422,
            "times",
        ),
        (
            server.post(
                "/api/v1/workflows/greet/runs",
                Some(r#"{"params": {"times": "many"}}"#),
            ),
            422,
            "times",
        ),
        (
            server.post("/api/v1/workflows/broken/runs", None),
            422,
            "ghost",
        ),
        (
            server.post("/api/v1/workflows/nope/runs", None),
            404,
            "nope",
        ),
        (
            server.get("/api/v1/runs/01ZZZZZZZZZZZZZZZZZZZZZZZZ"),
            404,
            "01ZZZZZZZZZZZZZZZZZZZZZZZZ",
        ),
        (
            server.post("/api/v1/runs/01ZZZZZZZZZZZZZZZZZZZZZZZZ/cancel", None),
            404,
            "01ZZZZZZZZZZZZZZZZZZZZZZZZ",
        ),
        (
            server.delete("/api/v1/runs/01ZZZZZZZZZZZZZZZZZZZZZZZZ"),
            404,
            "whole id",
        ),
        (server.get("/api/v1/nothing"), 404, "no such path"),
        (server.get("/api/v1/runs/%FF"), 400, "UTF-8"),
        (
            server.delete("/api/v1/workflows"),
            405,
            "DELETE is not allowed",
        ),
    ];
    for (reply, status, needle) in cases {
        let problem = reply.problem(status);
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(needle), "{needle:?} not in {detail}");
    }
    let invalid = server.post("/api/v1/workflows/broken/runs", None).json();
    assert_eq!(invalid["errors"]["errors"][0]["line"], 5, "{invalid}");
}

#[test]
fn connections_are_bounded_in_number_and_in_time() {
    use std::io::{ErrorKind, Write};
    use std::net::TcpStream;
    let env = env();
    let health = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    let connect = |server: &Served| {
        let stream = TcpStream::connect(server.url.strip_prefix("http://").unwrap()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        stream
    };

    // A client that sends half a request's head, and no more, is cut off.
    let server = served(&env, &["--header-timeout", "300ms"]);
    let mut slow = connect(&server);
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: 1").unwrap();
    let mut reply = String::new();
    slow.read_to_string(&mut reply)
        .expect("the server closes the connection");
    assert!(!reply.contains("200 OK"), "{reply}");
    drop(server);

    // Two connections that send nothing take both slots: a third waits in
    // the kernel's queue until one of them closes.
    let server = served(&env, &["--max-connections", "2"]);
    let mut idle: Vec<TcpStream> = (0..2).map(|_| connect(&server)).collect();
    let mut third = connect(&server);
    third.write_all(health.as_bytes()).unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0; 1];
    let waiting = third.read(&mut byte).unwrap_err();
    assert!(
        matches!(waiting.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{waiting}"
    );
    idle.pop();
    third
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut reply = String::new();
    third.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    drop(server);

    // A client that stops in the middle of a request's body holds the
    // server's shutdown no longer than the grace.
    let server = served(&env, &["--shutdown-grace", "300ms"]);
    let mut stalled = connect(&server);
    stalled
        .write_all(
            b"POST /api/v1/workflows/greet/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n\
              Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"params\"",
        )
        .unwrap();
    // Another connection is answered meanwhile: the handler of the first
    // waits for its body.
    assert_eq!(server.get("/healthz").status, 200);
    let (exited, exit) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut server = server;
        let _ = exited.send(server.terminate());
    });
    let code = exit
        .recv_timeout(Duration::from_secs(60))
        .expect("the server stops within its grace, whatever the stalled client does");
    assert_eq!(code, 0);
    drop(stalled);

    // Bad values are refused when the server starts.
    for (flag, value) in [("--max-connections", "0"), ("--header-timeout", "0s")] {
        let refused = env.run(&["serve", flag, value]).expect_code(2);
        assert!(refused.stderr.contains(flag), "{}", refused.stderr);
    }
}

#[test]
fn following_a_run_the_server_hears_nothing_of_ends_with_the_run() {
    // With observability off, a run tells no observer (nor the server's
    // event stream) anything; a follower finds its end in the store.
    let env = env();
    let server = served(&env, &[]);
    env.write(
        "workflows/quiet.toml",
        &SLEEPY.replace("id = \"sleepy\"", "id = \"quiet\"\nobservability = false"),
    );
    let id = server.start_run("quiet", json!({}));
    let mut follow = server.stream(&format!("/api/v1/runs/{id}/nodes/nap/logs?follow=true"));
    let reply = server.post(&format!("/api/v1/runs/{id}/cancel"), None);
    assert_eq!(reply.status, 202, "{}", reply.text);
    assert_eq!(follow.next().unwrap().0, "end");
    assert!(follow.next().is_none());
    assert_eq!(
        server.get(&format!("/api/v1/runs/{id}")).json()["status"],
        "cancelled"
    );
}

#[test]
fn cancel_resume_retry_and_delete() {
    let env = env();
    let server = served(&env, &[]);
    let mut events = server.events(None);
    let id = server.start_run("sleepy", json!({}));
    events.until("attempt_started", |e| {
        e["run_id"] == id.as_str() && e["node"] == "nap"
    });
    // A running run is neither deleted nor retried.
    server.delete(&format!("/api/v1/runs/{id}")).problem(409);
    server
        .post(&format!("/api/v1/runs/{id}/retry"), None)
        .problem(409);
    let reply = server.post(&format!("/api/v1/runs/{}/cancel", &id[..20]), None);
    assert_eq!(reply.status, 202, "{}", reply.text);
    let detail = server.wait(&id, &mut events);
    assert_eq!(detail["status"], "cancelled");
    assert_eq!(detail["nodes"][0]["status"], "cancelled");
    let problem = server
        .post(&format!("/api/v1/runs/{id}/cancel"), None)
        .problem(409);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("is not running: it cancelled"),
        "{problem}"
    );

    // Resumed, the nap's second attempt does not sleep.
    let reply = server.post(&format!("/api/v1/runs/{id}/resume"), None);
    assert_eq!(reply.status, 202, "{}", reply.text);
    assert_eq!(reply.json()["run_id"], id.as_str());
    let detail = server.wait(&id, &mut events);
    assert_eq!(detail["status"], "succeeded", "{detail}");
    assert_eq!(detail["resumes"], 1);
    server
        .post(&format!("/api/v1/runs/{id}/resume"), None)
        .problem(409);

    // Retry from `after`: `nap` keeps its output.
    let reply = server.post(
        &format!("/api/v1/runs/{id}/retry"),
        Some(r#"{"from": ["after"]}"#),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    let retry = reply.json()["run_id"].as_str().unwrap().to_string();
    let detail = server.wait(&retry, &mut events);
    assert_eq!(detail["status"], "succeeded");
    assert_eq!(detail["retry_of"], id.as_str());
    assert_eq!(detail["nodes"][0]["reused_from"], id.as_str());
    assert_eq!(detail["nodes"][1]["reused_from"], Value::Null);
    let problem = server
        .post(
            &format!("/api/v1/runs/{id}/retry"),
            Some(r#"{"from": ["ghost"]}"#),
        )
        .problem(422);
    assert!(problem["detail"].as_str().unwrap().contains("ghost"));

    // A prefix is not enough to delete.
    server
        .delete(&format!("/api/v1/runs/{}", &retry[..20]))
        .problem(404);
    assert_eq!(server.delete(&format!("/api/v1/runs/{retry}")).status, 204);
    server.get(&format!("/api/v1/runs/{retry}")).problem(404);
    assert_eq!(
        server.get("/api/v1/runs").json()["runs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn sigterm_with_a_run_in_flight_loses_nothing() {
    let env = env();
    let mut server = served(&env, &["--shutdown-grace", "0s"]);
    let mut events = server.events(None);
    let id = server.start_run("sleepy", json!({}));
    events.until("attempt_started", |e| e["run_id"] == id.as_str());
    assert!(
        env.path().join("db.server.json").exists(),
        "the address is recorded beside the database"
    );
    assert_eq!(server.terminate(), 0);
    assert!(!env.path().join("db.server.json").exists());
    let status = env.run(&["status", &id, "--json"]).success().json();
    assert_eq!(status["status"], "cancelled", "{status}");
    assert_eq!(status["nodes"][0]["status"], "cancelled");
    assert_eq!(
        status["nodes"][0]["attempt_records"][0]["error"]["kind"],
        "cancelled"
    );
    // A new server resumes it.
    let server = served(&env, &[]);
    let mut events = server.events(None);
    assert_eq!(
        server
            .post(&format!("/api/v1/runs/{id}/resume"), None)
            .status,
        202
    );
    assert_eq!(server.wait(&id, &mut events)["status"], "succeeded");
}

#[test]
fn tokens_are_required_off_loopback_and_checked() {
    let env = env();
    let refused = env.run(&["serve", "--listen", "0.0.0.0:0"]).expect_code(2);
    assert!(
        refused
            .stderr
            .contains("refusing to listen on 0.0.0.0:0 without --token-file"),
        "{}",
        refused.stderr
    );

    let made = env
        .run(&["token", "--token-file", "tokens", "--name", "ci"])
        .success();
    let token = made.stdout.trim().to_string();
    assert!(token.starts_with("flow_") && token.len() == 69, "{token}");
    let stored = std::fs::read_to_string(env.path().join("tokens")).unwrap();
    assert!(!stored.contains(&token[5..]), "only the hash is kept");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(env.path().join("tokens"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let server = served(&env, &["--token-file", "tokens"]);
    for path in [
        "/api/v1/runs",
        "/api/v1/workflows",
        "/metrics",
        "/api/v1/openapi.json",
    ] {
        let reply = server.get(path);
        let problem = reply.problem(401);
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("needs a token")
        );
        assert_eq!(
            reply.header("www-authenticate"),
            Some("Bearer realm=\"flow\"")
        );
    }
    server
        .post("/api/v1/workflows/greet/runs", None)
        .problem(401);
    assert_eq!(server.get("/healthz").status, 200, "health needs no token");
    let wrong = server.with_token(format!("{token}x"));
    let problem = wrong.get("/api/v1/runs").problem(401);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("not one this server accepts")
    );
    let right = server.with_token(token.clone());
    assert_eq!(right.get("/api/v1/runs").status, 200);
    let mut events = right.events(None);
    let id = right.start_run("greet", json!({"times": 1}));
    assert_eq!(right.wait(&id, &mut events)["status"], "succeeded");
    drop(events);

    // Revoked without a restart: its line leaves the file.
    let other = token_of(&env, "other");
    let text = std::fs::read_to_string(env.path().join("tokens")).unwrap();
    let kept: String = text
        .lines()
        .filter(|line| !line.ends_with(" ci"))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(env.path().join("tokens"), kept).unwrap();
    right.get("/api/v1/runs").problem(401);
    let added = server.with_token(other);
    assert_eq!(
        added.get("/api/v1/runs").status,
        200,
        "added without a restart"
    );

    // A token file others may write is refused.
    std::fs::set_permissions(
        env.path().join("tokens"),
        std::fs::Permissions::from_mode(0o622),
    )
    .unwrap();
    let refused = env.run(&["serve", "--token-file", "tokens"]).expect_code(3);
    assert!(refused.stderr.contains("chmod go-w"), "{}", refused.stderr);
}

#[test]
fn without_tokens_what_web_pages_of_other_sites_could_send_is_refused() {
    let env = env();
    let server = served(&env, &[]);
    let port = server.url.rsplit(':').next().unwrap().to_string();
    let start = "POST /api/v1/workflows/greet/runs HTTP/1.1\r\n";
    let body = r#"{"params":{"times":1}}"#;
    // DNS rebinding: a page whose own name now resolves to 127.0.0.1
    // reads the API as its own.
    let (status, text) = server.raw(
        &format!("GET /api/v1/runs HTTP/1.1\r\nHost: evil.example:{port}\r\n"),
        "",
    );
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("not to Host \\\"evil.example"), "{text}");
    // Cross-site request forgery: a form-like POST (text/plain, no
    // preflight) from a page of another site.
    let (status, text) = server.raw(
        &format!(
            "{start}Host: 127.0.0.1:{port}\r\nOrigin: https://evil.example\r\nContent-Type: text/plain\r\n"
        ),
        body,
    );
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("other sites"), "{text}");
    assert_eq!(
        server.get("/api/v1/runs").json()["runs"],
        json!([]),
        "nothing ran"
    );
    // The dashboard's own requests, and those of programs of the machine.
    for host in ["127.0.0.1", "localhost"] {
        let (status, text) = server.raw(
            &format!(
                "{start}Host: {host}:{port}\r\nOrigin: http://{host}:{port}\r\nContent-Type: application/json\r\n"
            ),
            body,
        );
        assert_eq!(status, 201, "{text}");
    }
    assert_eq!(
        server.get("/api/v1/runs").json()["runs"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(server.get("/healthz").status, 200);
    drop(server);

    // With a token, a request to any name is answered (behind a proxy,
    // say): a page cannot present a token it does not know.
    let token = token(&env);
    let guarded = served(&env, &["--token-file", "tokens"]);
    let port = guarded.url.rsplit(':').next().unwrap().to_string();
    let (status, text) = guarded.raw(
        &format!(
            "GET /api/v1/runs HTTP/1.1\r\nHost: flow.example.com:{port}\r\nAuthorization: Bearer {token}\r\n"
        ),
        "",
    );
    assert_eq!(status, 200, "{text}");
    let (status, _) = guarded.raw(
        &format!("GET /api/v1/runs HTTP/1.1\r\nHost: flow.example.com:{port}\r\n"),
        "",
    );
    assert_eq!(status, 401);
}

#[test]
fn health_metrics_and_the_openapi_document() {
    let env = env();
    let server = served(&env, &["--max-attempts", "3"]);
    let health = server.get("/healthz").json();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["max_attempts"], 3);
    let mut events = server.events(None);
    let id = server.start_run("greet", json!({"times": 1}));
    server.wait(&id, &mut events);
    let metrics = server.get("/metrics");
    assert!(metrics.content_type.starts_with("text/plain"));
    let parsed =
        prometheus_parse::Scrape::parse(metrics.text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let nodes: f64 = parsed
        .samples
        .iter()
        .filter(|s| s.metric == "flow_nodes_total")
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum();
    assert_eq!(nodes, 2.0, "{}", metrics.text);
    assert!(
        metrics.text.contains("\nflow_serve_runs_active "),
        "{}",
        metrics.text
    );

    let served_doc = server.get("/api/v1/openapi.json").json();
    assert_eq!(served_doc["openapi"], "3.1.0");
    let paths = served_doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/runs",
        "/api/v1/runs/{id}",
        "/api/v1/workflows/{name}/runs",
        "/api/v1/events",
        "/metrics",
        "/healthz",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    // docs/openapi.json is the document the code generates.
    let printed = env.run(&["serve", "--print-openapi"]).success().stdout;
    let file =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json"))
            .unwrap();
    assert!(
        printed == file,
        "docs/openapi.json is out of date: flow serve --print-openapi > docs/openapi.json"
    );
    assert_eq!(serde_json::from_str::<Value>(&printed).unwrap(), served_doc);
}

#[test]
fn runs_of_a_busy_server_share_the_attempt_bound() {
    let env = env();
    let wide = workflow(
        &(0..6)
            .map(|i| format!("[nodes.n{i}]\naction = \"misbehave\"\ninput = {{ mode = \"sleep\", ms = 20 }}\n"))
            .collect::<String>(),
    )
    .replace("plugins = \"plugins\"", "plugins = \"../plugins\"\nmax_concurrency = 6");
    env.write("workflows/wide.toml", &wide);
    let server = served(&env, &["--max-attempts", "2"]);
    let mut events = server.events(None);
    let ids: Vec<String> = (0..3)
        .map(|_| server.start_run("wide", json!({})))
        .collect();
    let (mut running, mut most, mut ended) = (0i32, 0i32, 0);
    while ended < 3 {
        let (name, _) = events.next().unwrap();
        match name.as_str() {
            "attempt_started" => {}
            "attempt_finished" => running -= 1,
            "run_finished" => ended += 1,
            _ => continue,
        }
        if name == "attempt_started" {
            running += 1;
        }
        most = most.max(running);
    }
    for id in &ids {
        assert_eq!(
            server.get(&format!("/api/v1/runs/{id}")).json()["status"],
            "succeeded"
        );
    }
    // An attempt starts once it has a slot and gives it back after its
    // end is reported: never more than 2 between the two events.
    assert_eq!(most, 2, "at most 2 attempts at once across the 3 runs");
    assert_eq!(server.get("/healthz").json()["attempts_running"], 0);
}

#[test]
fn a_schedule_starts_runs_by_itself_and_says_when() {
    let env = env();
    env.write(
        "workflows/tick.toml",
        "[workflow]\nid = \"tick\"\nplugins = \"../plugins\"\ncron = \"* * * * * *\"\ntimezone = \"Europe/Berlin\"\n\
         [nodes.a]\naction = \"echo\"\n",
    );
    let server = served(&env, &[]);
    let tick = server.get("/api/v1/workflows/tick").json();
    let schedule = &tick["schedule"];
    assert_eq!(schedule["cron"], "* * * * * *");
    assert_eq!(schedule["timezone"], "Europe/Berlin");
    assert_eq!(schedule["overlap"], "skip");
    assert!(schedule["next_fire"].is_string(), "{tick}");
    assert_eq!(
        server.get("/api/v1/workflows/greet").json()["schedule"],
        Value::Null
    );

    // Every second: the first fire comes within one.
    let mut events = server.events(None);
    let started = events.until("run_started", |e| e["workflow_id"] == "tick");
    let id = started["run_id"].as_str().unwrap().to_string();
    let detail = server.wait(&id, &mut events);
    assert_eq!(detail["status"], "succeeded");
    let due = detail["scheduled_for"]
        .as_str()
        .expect("the time it was due");
    assert!(due.ends_with(".000Z"), "a whole second: {due}");
    let listed = server.get("/api/v1/runs?workflow=tick&limit=1").json();
    assert_eq!(listed["runs"][0]["scheduled_for"], due);
    drop(server);

    // The last fire is in the store: a new server knows it.
    let status = env
        .run(&["list", "--json", "--workflow", "tick"])
        .success()
        .json();
    assert!(!status["runs"].as_array().unwrap().is_empty());
    let server = served(&env, &[]);
    let schedule = server.get("/api/v1/workflows/tick").json()["schedule"].clone();
    assert!(
        schedule["last_fire"]
            .as_str()
            .is_some_and(|last| *last >= *due),
        "{schedule}"
    );
}

#[test]
fn commands_go_through_a_running_server() {
    let env = env();
    let server = served(&env, &[]);
    let mut events = server.events(None);
    let done = server.start_run("greet", json!({"times": 1}));
    server.wait(&done, &mut events);
    let sleepy = server.start_run("sleepy", json!({}));
    events.until("attempt_started", |e| e["run_id"] == sleepy.as_str());

    // The server holds the database: these read through its API.
    let listed = env.run(&["list", "--json"]).success().json();
    let ids: Vec<&str> = listed["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [sleepy.as_str(), done.as_str()]);
    let text = env.run(&["list"]).success().stdout;
    assert!(text.contains(&sleepy) && text.contains("running"), "{text}");
    let status = env.run(&["status", &done, "--json"]).success().json();
    assert_eq!(status, server.get(&format!("/api/v1/runs/{done}")).json());
    let text = env.run(&["status", &done[..10]]).success().stdout;
    assert!(text.contains("succeeded"), "{text}");
    let logs = env.run(&["logs", &done, "log"]).success().stdout;
    assert_eq!(logs.lines().count(), 3, "{logs}");
    // Writing is the server's: refused with the way to do it.
    let refused = env.run(&["delete", &done]).expect_code(3);
    assert!(
        refused.stderr.contains("in use by another flow process"),
        "{}",
        refused.stderr
    );

    env.run(&["cancel", &sleepy[..12]]).success();
    let detail = server.wait(&sleepy, &mut events);
    assert_eq!(detail["status"], "cancelled");
    let again = env.run(&["cancel", &sleepy]).expect_code(2);
    assert!(
        again.stderr.contains("is not running: it cancelled"),
        "{}",
        again.stderr
    );
    drop(server);
    let without = env.run(&["cancel", &sleepy]).expect_code(2);
    assert!(
        without.stderr.contains("no flow serve holds"),
        "{}",
        without.stderr
    );
}

#[test]
fn commands_bring_a_token_to_a_server_that_wants_one() {
    let env = env();
    let token = token(&env);
    let _server = served(&env, &["--token-file", "tokens"]);
    let refused = env.run(&["list"]).expect_code(3);
    assert!(
        refused.stderr.contains("set FLOW_TOKEN"),
        "{}",
        refused.stderr
    );
    let wrong = Run::from(
        env.flow()
            .env("FLOW_TOKEN", "flow_nope")
            .args(["list"])
            .output()
            .unwrap(),
    );
    assert_eq!(wrong.code, 3);
    assert!(
        wrong.stderr.contains("not one this server accepts"),
        "{}",
        wrong.stderr
    );
    let listed = Run::from(
        env.flow()
            .env("FLOW_TOKEN", &token)
            .args(["list", "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!(listed.code, 0, "{}", listed.stderr);
}

#[test]
fn flow_run_goes_to_the_server_that_holds_the_database() {
    let env = env();
    let _server = served(&env, &[]);
    let ran = env
        .run(&[
            "run",
            "workflows/greet.toml",
            "--param",
            "times=2",
            "--json",
        ])
        .success()
        .json();
    assert_eq!(ran["status"], "succeeded");
    assert_eq!(ran["params"], json!({"name": "Ada", "times": 2}));
    assert_eq!(ran["nodes"][0]["output"], json!({"who": "Ada", "n": 2}));

    let text = env
        .run(&["run", "workflows/greet.toml", "--param", "times=1"])
        .success();
    assert!(
        text.stderr
            .contains("on the flow serve at http://127.0.0.1:"),
        "{}",
        text.stderr
    );
    assert!(
        text.stderr.contains("succeeded hello (1 attempt"),
        "{}",
        text.stderr
    );
    assert!(text.stdout.contains("succeeded"), "{}", text.stdout);

    // A failed run fails the command, as `flow run` does.
    let failed = env.run(&["run", "workflows/greet.toml"]).expect_code(2);
    assert!(
        failed.stderr.contains("times"),
        "a missing parameter: {}",
        failed.stderr
    );

    // The server runs only its own workflows, with its own settings.
    env.write("other.toml", &workflow("[nodes.a]\naction = \"echo\"\n"));
    let refused = env.run(&["run", "other.toml"]).expect_code(2);
    assert!(
        refused
            .stderr
            .contains("runs only the workflows of its --workflows directory"),
        "{}",
        refused.stderr
    );
    let refused = env
        .run(&[
            "run",
            "workflows/greet.toml",
            "--retries",
            "3",
            "--param",
            "times=1",
        ])
        .expect_code(2);
    assert!(
        refused.stderr.contains("leave out --plugins, option flags"),
        "{}",
        refused.stderr
    );
}

#[test]
fn a_changed_plugin_file_is_loaded_again_at_the_next_run() {
    let env = env();
    let server = served(&env, &[]);
    let mut events = server.events(None);
    let id = server.start_run("greet", json!({"times": 1}));
    assert_eq!(server.wait(&id, &mut events)["status"], "succeeded");
    // `echo.wasm` now holds the `hash` plugin: the workflow's `echo` is gone.
    std::fs::copy(
        flow_test_artifacts::plugins_dir().join("hash.wasm"),
        env.plugins().join("echo.wasm"),
    )
    .unwrap();
    let problem = server
        .post(
            "/api/v1/workflows/greet/runs",
            Some(r#"{"params": {"times": 1}}"#),
        )
        .problem(422);
    assert!(
        problem["detail"].as_str().unwrap().contains("echo"),
        "{problem}"
    );
}
