//! Watching runs from outside: JSON logs, stored guest logs, Prometheus
//! metrics, graphs, progress output, and the scripting flags.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

use crate::support::{Env, workflow};

/// A failing, a retried and a logging node, and one after them.
fn watched_workflow() -> String {
    workflow(
        "[nodes.talk]\naction = \"misbehave\"\ninput = { mode = \"log\", count = 2, message = \"hello from talk\" }\n\
         [nodes.loud]\naction = \"misbehave\"\ninput = { mode = \"print\", bytes = 3 }\n\
         [nodes.flaky]\naction = \"flaky\"\ninput = { fail_times = 1 }\nretries = 2\nretry_delay = \"1ms\"\n\
         [nodes.sum]\naction = \"math\"\ninput = { values = [1, 2] }\ndepends_on = [\"talk\", \"loud\", \"flaky\"]\n",
    )
}

#[test]
fn json_log_records_carry_the_node_fields() {
    let env = Env::new();
    let file = env.write("w.toml", &watched_workflow());
    let run = env
        .run(&[
            "--log-format",
            "json",
            "--log-level",
            "info",
            "run",
            file.to_str().unwrap(),
            "--json",
        ])
        .success();
    let run_id = run.json()["run_id"].as_str().unwrap().to_string();
    let records: Vec<Value> = run
        .stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let about_nodes: Vec<&Value> = records.iter().filter(|r| r.get("node").is_some()).collect();
    assert!(!about_nodes.is_empty(), "{}", run.stderr);
    for record in &about_nodes {
        assert_eq!(record["workflow"], "test", "{record}");
        assert_eq!(record["run"], run_id.as_str(), "{record}");
        assert!(record["attempt"].as_u64().unwrap() >= 1, "{record}");
        assert!(record["timestamp"].is_string() && record["level"].is_string());
    }
    let guest = records
        .iter()
        .find(|r| r["message"] == "hello from talk")
        .unwrap_or_else(|| panic!("no guest record in {}", run.stderr));
    assert_eq!(guest["node"], "talk");
    assert_eq!(guest["level"], "INFO");
    assert_eq!(guest["target"], "flow::plugin");
    let retry = records
        .iter()
        .find(|r| r["event"] == "retry_scheduled")
        .unwrap_or_else(|| panic!("no retry record in {}", run.stderr));
    assert_eq!(retry["target"], "flow::node");
    assert_eq!(retry["kind"], "retryable");
    assert_eq!(
        (retry["node"].as_str(), retry["attempt"].as_u64()),
        (Some("flaky"), Some(1))
    );
}

#[test]
fn flow_logs_prints_what_each_node_logged_and_printed() {
    let env = Env::new();
    let file = env.write("w.toml", &watched_workflow());
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .success()
        .json();
    let run_id = report["run_id"].as_str().unwrap();

    let status = env.run(&["status", run_id]).success().stdout;
    assert!(
        status.contains(&format!(
            "\nlogs: 5 lines from the actions (flow logs {run_id})"
        )),
        "{status}"
    );

    let all = env.run(&["logs", run_id]).success().stdout;
    assert!(
        all.contains("talk  #1  info   hello from talk\ntalk  #1  info   hello from talk\n"),
        "{all}"
    );
    assert!(
        all.contains("loud  #1  stdout xxx\nloud  #1  stderr xxx\n"),
        "{all}"
    );

    let one = env.run(&["logs", &run_id[..10], "loud"]).success().stdout;
    assert!(!one.contains("talk"), "{one}");
    assert!(one.contains("stdout xxx"), "{one}");

    let json = env
        .run(&["logs", run_id, "talk", "--attempt", "1", "--json"])
        .success()
        .stdout;
    let lines: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0],
        serde_json::json!({"node": "talk", "attempt": 1, "kind": "info", "text": "hello from talk"})
    );

    // Stored at every level, whatever the log filter: `json` logs at debug.
    let picky = env.write(
        "picky.toml",
        &workflow("[nodes.pick]\naction = \"json\"\ninput = { data = { a = 1, b = 2 }, select = [\"a\"] }\n"),
    );
    let picked = env
        .run(&["run", picky.to_str().unwrap(), "--json"])
        .success()
        .json();
    let picked = env
        .run(&["logs", picked["run_id"].as_str().unwrap()])
        .success()
        .stdout;
    assert_eq!(picked, "pick #1  debug  kept 1 of 2 fields\n");

    let quiet = env.run(&["logs", run_id, "sum"]).success();
    assert_eq!(quiet.stdout, "");
    assert_eq!(
        quiet.stderr.trim(),
        "nothing logged or printed by node `sum`"
    );

    let unknown = env.run(&["logs", run_id, "tlak"]).expect_code(2);
    assert!(
        unknown.stderr.contains(&format!(
            "run {run_id} has no node `tlak` that started; did you mean `talk`?"
        )),
        "{}",
        unknown.stderr
    );
}

#[test]
fn the_metrics_file_is_prometheus_text_with_the_engine_series() {
    let env = Env::new();
    let file = env.write("w.toml", &watched_workflow());
    let metrics = env.path().join("run.prom");
    env.run(&[
        "run",
        file.to_str().unwrap(),
        "--metrics-out",
        metrics.to_str().unwrap(),
        "-q",
    ])
    .success();
    let text = std::fs::read_to_string(&metrics).unwrap();
    let lines = text.lines().map(|line| Ok(line.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");

    let sample = |name: &str, labels: &[(&str, &str)]| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{text}"))
            .value
            .clone()
    };
    use prometheus_parse::Value::{Counter, Histogram};
    assert_eq!(
        sample(
            "flow_runs_total",
            &[("workflow", "test"), ("status", "succeeded")]
        ),
        Counter(1.0)
    );
    assert_eq!(
        sample(
            "flow_nodes_total",
            &[("action", "misbehave"), ("status", "succeeded")]
        ),
        Counter(2.0)
    );
    assert_eq!(
        sample(
            "flow_attempts_total",
            &[("action", "flaky"), ("outcome", "failed")]
        ),
        Counter(1.0)
    );
    assert_eq!(
        sample("flow_retries_total", &[("action", "flaky")]),
        Counter(1.0)
    );
    let Counter(fuel) = sample("flow_fuel_used_total", &[("node", "sum")]) else {
        panic!("fuel is a counter")
    };
    assert!(fuel > 0.0);
    // With observability off, collectors hear nothing.
    let silent = env.write(
        "silent.toml",
        "[workflow]\nid = \"silent\"\nplugins = \"plugins\"\nobservability = false\n[nodes.a]\naction = \"echo\"\n",
    );
    let none = env.path().join("none.prom");
    let warned = env
        .run(&[
            "run",
            silent.to_str().unwrap(),
            "--metrics-out",
            none.to_str().unwrap(),
            "-q",
        ])
        .success();
    assert_eq!(std::fs::read_to_string(&none).unwrap(), "");
    assert!(
        warned
            .stderr
            .contains("the workflow sets `observability = false`"),
        "{}",
        warned.stderr
    );

    // An unwritable metrics file is found before anything runs.
    let nowhere = env.path().join("no-such-dir").join("m.prom");
    let refused = env
        .run(&[
            "run",
            file.to_str().unwrap(),
            "--metrics-out",
            nowhere.to_str().unwrap(),
        ])
        .expect_code(3);
    assert!(
        refused.stderr.contains("cannot write the metrics to"),
        "{}",
        refused.stderr
    );
    assert_eq!(refused.stdout, "");
    let runs = env.run(&["list", "--json"]).success().json();
    assert_eq!(
        runs["runs"].as_array().unwrap().len(),
        2,
        "no third run: {runs}"
    );

    for histogram in [
        "flow_run_duration_seconds",
        "flow_node_duration_seconds",
        "flow_attempt_duration_seconds",
        "flow_retry_delay_seconds",
        "flow_worker_wait_seconds",
    ] {
        let Histogram(buckets) = sample(histogram, &[]) else {
            panic!("{histogram} is not a histogram:\n{text}")
        };
        assert!(
            buckets.iter().any(|b| b.count > 0.0),
            "{histogram}:\n{text}"
        );
        assert!(
            scrape.docs.contains_key(histogram),
            "{histogram} has no HELP"
        );
    }
}

#[test]
fn flow_graph_prints_dot_with_levels_and_run_states() {
    let env = Env::new();
    let file = env.write(
        "g.toml",
        &workflow(
            "[nodes.a]\naction = \"echo\"\n\
             [nodes.bad]\naction = \"math\"\ninput = { values = [\"x\"] }\ndepends_on = [\"a\"]\n\
             [nodes.after]\naction = \"echo\"\ndepends_on = [\"bad\"]\n",
        ),
    );
    let file = file.to_str().unwrap();
    let plain = env.run(&["graph", file]).success().stdout;
    let (ids, edges) = parse_dot(&plain);
    assert_eq!(
        ids,
        BTreeSet::from(["a".into(), "bad".into(), "after".into()])
    );
    assert_eq!(
        edges,
        BTreeSet::from([("a".into(), "bad".into()), ("bad".into(), "after".into())])
    );
    for level in 0..3 {
        assert!(
            plain.contains(&format!(
                "subgraph cluster_level_{level} {{\n    label=\"level {level}\";"
            )),
            "{plain}"
        );
    }

    let report = env.run(&["run", file, "--json"]).expect_code(1).json();
    let run_id = report["run_id"].as_str().unwrap();
    let coloured = env.run(&["graph", file, "--run", run_id]).success().stdout;
    parse_dot(&coloured);
    assert!(
        coloured.contains("\"a\" [label=\"a\\necho\\nsucceeded\", fillcolor=\"#d1e7dd\"];"),
        "{coloured}"
    );
    assert!(
        coloured.contains("\"bad\" [label=\"bad\\nmath\\nfailed\", fillcolor=\"#f8d7da\"];"),
        "{coloured}"
    );
    assert!(
        coloured.contains("\"after\" [label=\"after\\necho\\nskipped\", fillcolor=\"#e2e3e5\"];"),
        "{coloured}"
    );

    let mermaid = env
        .run(&["graph", file, "--format", "mermaid", "--run", run_id])
        .success()
        .stdout;
    assert!(
        mermaid.starts_with("flowchart TB\n  subgraph level_0[\"level 0\"]\n"),
        "{mermaid}"
    );
    assert!(mermaid.contains("  n0 --> n1\n  n1 --> n2\n"), "{mermaid}");
    assert!(mermaid.contains("  class n1 failed\n"), "{mermaid}");

    let other = env.write(
        "other.toml",
        "[workflow]\nid = \"other\"\nplugins = \"plugins\"\n[nodes.x]\naction = \"echo\"\n",
    );
    let refused = env
        .run(&["graph", other.to_str().unwrap(), "--run", run_id])
        .expect_code(2);
    assert!(
        refused
            .stderr
            .contains("is of workflow `test`, not of `other`"),
        "{}",
        refused.stderr
    );
}

/// The node ids and edges of a DOT graph, which must parse.
fn parse_dot(text: &str) -> (BTreeSet<String>, BTreeSet<(String, String)>) {
    let ast =
        dot_parser::ast::Graph::try_from(text).unwrap_or_else(|e| panic!("not DOT ({e}):\n{text}"));
    let graph = dot_parser::canonical::Graph::from(ast);
    let id = |id: &str| id.trim_matches('"').to_string();
    let nodes = graph.nodes.set.keys().map(|n| id(n)).collect();
    let edges = graph
        .edges
        .set
        .iter()
        .map(|e| (id(&e.from), id(&e.to)))
        .collect();
    (nodes, edges)
}

#[test]
fn without_a_terminal_progress_is_one_line_per_event_then_a_summary() {
    let env = Env::new();
    let file = env.write("w.toml", &watched_workflow());
    let out = env.run(&["run", file.to_str().unwrap()]).success().stdout;
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("run ") && lines[0].ends_with("of workflow `test` (4 nodes)"),
        "{out}"
    );
    for expected in [
        "  start    talk   misbehave  attempt 1",
        "  start    flaky  flaky      attempt 2",
        "  retry    flaky  flaky      attempt 1 failed: retryable error: attempt 1 of 1 fails on purpose; retrying in",
        "  ok       flaky  flaky      ",
        "  ok       sum    math       ",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(expected)),
            "no `{expected}` in:\n{out}"
        );
    }
    let summary = lines
        .iter()
        .position(|l| *l == "summary:")
        .expect("a summary");
    assert!(
        lines[summary + 1].starts_with("NODE   ACTION     STATUS     ATTEMPTS  DURATION"),
        "{out}"
    );
    let flaky = lines[summary..]
        .iter()
        .find(|l| l.starts_with("flaky "))
        .unwrap();
    let cells: Vec<&str> = flaky.split_whitespace().collect();
    assert_eq!(&cells[..4], ["flaky", "flaky", "succeeded", "2"], "{flaky}");
    assert!(
        cells.last().unwrap().parse::<u64>().unwrap() > 0,
        "fuel: {flaky}"
    );
    assert!(
        !out.contains('\r') && !out.contains('\x1b'),
        "no terminal codes: {out:?}"
    );

    let off = env
        .run(&["run", file.to_str().unwrap(), "--progress", "off"])
        .success()
        .stdout;
    assert!(!off.contains("  start "), "{off}");
    assert!(off.contains("summary:"), "{off}");
}

#[test]
fn on_a_terminal_progress_is_a_live_line() {
    // `script` runs flow on a pseudo-terminal and records what it drew.
    let env = Env::new();
    let file = env.write("w.toml", &watched_workflow());
    let record = env.path().join("typescript");
    let flow = env!("CARGO_BIN_EXE_flow");
    let command = format!("{flow} run {}", file.display());
    let status = Command::new("script")
        .args(["-qec", &command, record.to_str().unwrap()])
        .current_dir(env.path())
        .env("FLOW_DB", env.path().join("db"))
        .env("FLOW_CACHE_DIR", crate::support::shared_cache())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("`script` (util-linux) runs commands on a pseudo-terminal");
    assert!(status.success());
    let drawn = String::from_utf8_lossy(&std::fs::read(&record).unwrap()).into_owned();
    assert!(
        drawn.contains("\r\x1b[2K"),
        "the line is redrawn in place: {drawn:?}"
    );
    // How often the line is redrawn depends on timing; that it is drawn
    // does not (the counts it shows are unit-tested).
    assert!(drawn.contains("/4"), "{drawn:?}");
    assert!(drawn.contains("  ok       sum    math"), "{drawn:?}");
    assert!(drawn.contains("summary:"), "{drawn:?}");
}

#[test]
fn quiet_prints_only_errors() {
    let env = Env::new();
    let good = env.write("good.toml", &workflow("[nodes.a]\naction = \"echo\"\n"));
    let run = env
        .run(&["run", good.to_str().unwrap(), "--quiet"])
        .success();
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));

    let bad = env.write(
        "bad.toml",
        &workflow("[nodes.a]\naction = \"math\"\ninput = { values = [\"x\"] }\n"),
    );
    let run = env
        .run(&["-q", "run", bad.to_str().unwrap()])
        .expect_code(1);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.starts_with("run ") && run.stderr.contains(" failed in "),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("node `a` failed"), "{}", run.stderr);

    let checked = env
        .run(&["validate", good.to_str().unwrap(), "-q"])
        .success();
    assert_eq!((checked.stdout.as_str(), checked.stderr.as_str()), ("", ""));
    let run_id = run.stderr.split_whitespace().nth(1).unwrap();
    let resumed = env.run(&["resume", run_id, "-q"]).expect_code(1);
    assert_eq!(resumed.stdout, "");
    assert!(
        resumed.stderr.contains("node `a` failed"),
        "{}",
        resumed.stderr
    );
}

#[test]
fn validate_json_gives_the_verdict_with_lines_and_columns() {
    let env = Env::new();
    let good = env.write(
        "good.toml",
        &workflow(
            "[nodes.a]\naction = \"echo\"\n[nodes.b]\naction = \"echo\"\ndepends_on = [\"a\"]\n",
        ),
    );
    let verdict = env
        .run(&["validate", good.to_str().unwrap(), "--json"])
        .success()
        .json();
    assert_eq!(verdict["valid"], true);
    assert_eq!(verdict["levels"], serde_json::json!([["a"], ["b"]]));
    assert!(
        verdict["plugins"]
            .as_array()
            .unwrap()
            .contains(&Value::from("echo"))
    );

    let bad = env.write(
        "bad.toml",
        &workflow("[nodes.a]\naction = \"echo\"\ndepends_on = [\"nope\"]\n"),
    );
    let run = env
        .run(&["validate", bad.to_str().unwrap(), "--json"])
        .expect_code(2);
    assert_eq!(run.stderr, "");
    let verdict = run.json();
    assert_eq!(verdict["valid"], false);
    let error = &verdict["errors"][0];
    assert!(
        error["message"].as_str().unwrap().contains("nope"),
        "{verdict}"
    );
    assert_eq!(
        (error["line"].as_u64(), error["column"].as_u64()),
        (Some(7), Some(15)),
        "{verdict}"
    );

    let unknown = env.write("unknown.toml", &workflow("[nodes.a]\naction = \"ecko\"\n"));
    let verdict = env
        .run(&["validate", unknown.to_str().unwrap(), "--json"])
        .expect_code(2)
        .json();
    assert_eq!(verdict["valid"], false);
    assert_eq!(verdict["errors"][0]["line"], 6, "{verdict}");
}

#[test]
fn errors_show_no_internal_detail_unless_verbose() {
    let env = Env::empty();
    let plain = env.run(&["status", "01NOPE"]).expect_code(2);
    assert!(
        !plain.stderr.contains("Error {") && !plain.stderr.contains("detail (--verbose)"),
        "{}",
        plain.stderr
    );
    let verbose = env.run(&["status", "01NOPE", "--verbose"]).expect_code(2);
    assert!(
        verbose.stderr.starts_with(plain.stderr.trim_end()),
        "{}",
        verbose.stderr
    );
    assert!(
        verbose.stderr.contains("detail (--verbose):"),
        "{}",
        verbose.stderr
    );
}

#[test]
fn big_runs_summarise_what_did_not_succeed() {
    let env = Env::new();
    let mut nodes = String::new();
    for i in 0..55 {
        nodes.push_str(&format!("[nodes.n{i}]\naction = \"echo\"\n"));
    }
    nodes.push_str("[nodes.bad]\naction = \"math\"\ninput = { values = [\"x\"] }\n");
    let file = env.write("big.toml", &workflow(&nodes));
    let out = env
        .run(&["run", file.to_str().unwrap(), "--progress", "off"])
        .expect_code(1)
        .stdout;
    let summary = &out[out.find("summary:").expect("a summary")..];
    assert!(summary.contains("\nbad "), "{summary}");
    assert!(!summary.contains("\nn0 "), "{summary}");
    assert!(
        summary.contains("(55 succeeded nodes not shown; all of them: flow status "),
        "{summary}"
    );

    let good = env.write(
        "good.toml",
        &workflow(&nodes[..nodes.find("[nodes.bad]").unwrap()]),
    );
    let out = env
        .run(&["run", good.to_str().unwrap(), "--progress", "off"])
        .success()
        .stdout;
    assert!(
        out.contains("summary: all 55 nodes succeeded (each of them: flow status "),
        "{out}"
    );
}

#[test]
fn live_progress_without_a_terminal_falls_back_to_plain_lines() {
    let env = Env::new();
    let file = env.write("w.toml", &workflow("[nodes.a]\naction = \"echo\"\n"));
    let out = env
        .run(&["run", file.to_str().unwrap(), "--progress", "live"])
        .success()
        .stdout;
    assert!(out.contains("  start    a  echo  attempt 1\n"), "{out}");
    assert!(out.contains("  ok       a  echo  "), "{out}");
}

#[test]
fn quiet_silences_plugin_logs_and_a_bad_filter_is_refused() {
    let env = Env::new();
    let file = env.write("w.toml", &watched_workflow());
    let loud = env
        .run(&["run", file.to_str().unwrap(), "--progress", "off"])
        .success();
    assert!(loud.stderr.contains("hello from talk"), "{}", loud.stderr);
    let quiet = env.run(&["run", file.to_str().unwrap(), "-q"]).success();
    assert_eq!((quiet.stdout.as_str(), quiet.stderr.as_str()), ("", ""));

    let bad = env
        .run(&["--log-level", "info,=nope=", "list"])
        .expect_code(2);
    assert!(
        bad.stderr.starts_with(
            "error: the log filter `info,=nope=` given by --log-level (or FLOW_LOG) is invalid"
        ),
        "{}",
        bad.stderr
    );
    let report = env
        .run(&["run", file.to_str().unwrap(), "--json"])
        .success()
        .json();
    let missing = env
        .run(&[
            "logs",
            report["run_id"].as_str().unwrap(),
            "talk",
            "--attempt",
            "7",
        ])
        .expect_code(2);
    assert!(
        missing.stderr.contains("node `talk` of run "),
        "{}",
        missing.stderr
    );
    assert!(
        missing.stderr.contains(" has no attempt 7; it made 1"),
        "{}",
        missing.stderr
    );
}
