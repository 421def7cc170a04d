//! `flow run` while a `flow serve` holds the database: the run goes to the
//! server, which runs it like any other; this command follows it over the
//! event stream and prints it as `flow status` does when it ends.
//!
//! Only the server's own workflows (its `--workflows` directory) run this
//! way: a server never runs a file a client names, so that nobody who can
//! reach it can make it run what its owner did not put there.

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::Context as _;
use flow_host::{RunStatus, WorkflowStore};
use serde_json::Value;

use super::remote::{Address, RemoteStore};
use super::{Context, Exit, UsageError, out};

/// Runs `workflow` on the server at `address`, with these parameters.
pub fn run(
    context: &Context,
    address: &Address,
    workflow: &Path,
    params: Option<serde_json::Map<String, Value>>,
    json: bool,
) -> anyhow::Result<Exit> {
    let server = RemoteStore::new(address)?;
    let wanted = std::fs::canonicalize(workflow)
        .with_context(|| format!("cannot read {}", workflow.display()))?;
    let list: Vec<Value> =
        serde_json::from_str(&server.call("GET", "/api/v1/workflows")?.unwrap_or_default())
            .unwrap_or_default();
    let name = list.iter().find_map(|entry| {
        let file = std::fs::canonicalize(entry["file"].as_str()?).ok()?;
        (file == wanted).then(|| entry["name"].as_str().map(String::from))?
    });
    let Some(name) = name else {
        return Err(UsageError(format!(
            "a flow serve ({}) holds the run database, and it runs only the workflows of its --workflows directory; \
             {} is not one of them: put it there, or give this run another --db",
            address.url,
            workflow.display()
        ))
        .into());
    };
    // Listening before the run starts, so that no event is missed.
    let mut events = server.stream("/api/v1/events")?;
    let body = serde_json::json!({ "params": params.unwrap_or_default() }).to_string();
    let started: Value = serde_json::from_str(
        &server
            .send(
                "POST",
                &format!("/api/v1/workflows/{name}/runs"),
                Some(&body),
            )?
            .unwrap_or_default(),
    )?;
    let run_id = started["run_id"].as_str().unwrap_or_default().to_string();
    let talk = !json && !context.quiet;
    if talk {
        out::eprint(format_args!(
            "run {run_id} of `{name}` on the flow serve at {} (Ctrl-C cancels it)",
            address.url
        ));
    }
    cancel_on_signal(address, &run_id);
    let (mut kind, mut data) = (String::new(), String::new());
    loop {
        let mut line = String::new();
        if events.read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end();
        if let Some(value) = line.strip_prefix("event:") {
            kind = value.trim().to_string();
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push_str(value.trim_start());
        } else if line.is_empty() && !kind.is_empty() {
            let event: Value = serde_json::from_str(&data).unwrap_or_default();
            data.clear();
            if event["run_id"] != run_id.as_str() {
                kind.clear();
                continue;
            }
            if talk && kind == "node_finished" {
                out::eprint(format_args!(
                    "  {:<9} {} ({} attempt{}, {:.1} ms){}",
                    event["status"].as_str().unwrap_or(""),
                    event["node"].as_str().unwrap_or(""),
                    event["attempts"],
                    if event["attempts"] == 1 { "" } else { "s" },
                    event["elapsed_ms"].as_f64().unwrap_or(0.0),
                    event["error"]["message"]
                        .as_str()
                        .map_or(String::new(), |m| format!(": {m}")),
                ));
            }
            if kind == "run_finished" {
                break;
            }
            kind.clear();
        }
    }
    let run = server.find_run(&run_id)?;
    if !context.quiet || json {
        super::status::show(context, &server, &run, json)?;
    }
    std::io::stdout().flush()?;
    Ok(match run.status {
        RunStatus::Succeeded => Exit::Success,
        RunStatus::Cancelled => Exit::Cancelled,
        _ => Exit::RunFailed,
    })
}

/// The first Ctrl-C or SIGTERM asks the server to cancel the run.
fn cancel_on_signal(address: &Address, run_id: &str) {
    let (Ok(server), run_id) = (RemoteStore::new(address), run_id.to_string()) else {
        return;
    };
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut interrupt), Ok(mut terminate)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        });
        out::eprint(format_args!("cancelling run {run_id} on the server"));
        let _ = server.call("POST", &format!("/api/v1/runs/{run_id}/cancel"));
    });
}
