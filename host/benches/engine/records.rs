//! Stored runs written directly, for the rows that read them back
//! (`flow status`, `flow serve`).

use std::path::Path;

use flow_host::report::{JsonText, NodeStatus, RunStatus, Timestamp};
use flow_host::store::{AttemptRecord, GuestLine, LineKind, NodeRecord, RunRecord};
use flow_host::{SledStore, WorkflowStore};

/// The header of a run of workflow `id` with `nodes` nodes that
/// succeeded, every node a sink.
pub fn run(run_id: &str, id: &str, nodes: usize, path: &Path) -> RunRecord {
    RunRecord {
        run_id: run_id.into(),
        workflow_id: id.into(),
        workflow_path: path.to_path_buf(),
        status: RunStatus::Succeeded,
        created_at: Timestamp::now(),
        finished_at: Some(Timestamp::now()),
        nodes,
        sinks: Some((0..nodes).map(|i| format!("n{i}")).collect()),
        error: None,
        failed_nodes: 0,
        workflow_sha256: String::new(),
        plugins_dirs: Vec::new(),
        plugins: Default::default(),
        overrides: Default::default(),
        secrets: Vec::new(),
        resumes: 0,
        params: Default::default(),
        retry_of: None,
        scheduled_for: None,
        parent: None,
    }
}

/// A run of `n` no-op nodes that succeeded, each with an attempt that
/// logged a line, and its workflow file at `path`.
pub fn big_run(store: &SledStore, run_id: &str, path: &Path, n: usize) {
    let mut text = String::from("[workflow]\nid = \"big\"\n\n[defaults]\nretries = 0\n");
    for i in 0..n {
        text.push_str(&format!("[nodes.n{i}]\naction = \"noop\"\n"));
    }
    std::fs::write(path, &text).unwrap();
    let header = run(run_id, "big", n, path);
    store.create_run(&header, &text).unwrap();
    let output = JsonText::parse(r#"{"value":42}"#, 100).unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
        let nodes: Vec<NodeRecord> = chunk
            .iter()
            .map(|&i| NodeRecord {
                node_id: format!("n{i}"),
                index: i,
                action: "noop".into(),
                status: NodeStatus::Succeeded,
                attempts: 1,
                started_at: Some(Timestamp::now()),
                finished_at: Some(Timestamp::now()),
                elapsed_us: Some(50),
                output: Some(output.clone()),
                error: None,
                fuel_used: Some(1000),
                reused_from: None,
                element: None,
                child_run: None,
            })
            .collect();
        let attempts: Vec<(String, AttemptRecord)> = chunk
            .iter()
            .map(|&i| {
                let attempt = AttemptRecord {
                    number: 1,
                    started_at: Timestamp::now(),
                    elapsed_us: Some(40),
                    error: None,
                    fuel_used: Some(1000),
                    retry_delay_ms: None,
                    logs: vec![GuestLine {
                        kind: LineKind::Info,
                        text: format!("node {i} did its work"),
                    }],
                    http: None,
                };
                (format!("n{i}"), attempt)
            })
            .collect();
        store.put_batch(run_id, &nodes, &attempts).unwrap();
    }
    store.flush().unwrap();
}
