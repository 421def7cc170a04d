//! The server's stream of run and node events: an observer of the engine
//! that turns each event into one JSON text and broadcasts it to the
//! server-sent-events clients.

use std::sync::Arc;

use flow_host::{Event, Observer};
use serde_json::json;
use tokio::sync::broadcast;

/// One event, ready to send.
#[derive(Debug, Clone)]
pub struct Message {
    /// The run it belongs to.
    pub run_id: Arc<str>,
    /// Its node, if it is about one.
    pub node: Option<Arc<str>>,
    /// The SSE event name: `run_started`, `attempt_started`,
    /// `attempt_finished`, `retry_scheduled`, `node_finished`,
    /// `run_finished`.
    pub kind: &'static str,
    /// The event as JSON text.
    pub data: Arc<str>,
}

/// Sends every event of the engine's runs to the clients listening.
#[derive(Debug, Clone)]
pub struct Broadcaster {
    sender: broadcast::Sender<Message>,
}

impl Broadcaster {
    /// Keeps up to `capacity` events for slow clients; a client further
    /// behind is told it missed some (`lagged`) and should read the state
    /// again.
    pub fn new(capacity: usize) -> Self {
        Self {
            sender: broadcast::channel(capacity).0,
        }
    }

    /// A new listener.
    pub fn subscribe(&self) -> broadcast::Receiver<Message> {
        self.sender.subscribe()
    }
}

impl Observer for Broadcaster {
    fn on_event(&self, _event: &Event<'_>) {}

    fn on_run_event(&self, run_id: &str, event: &Event<'_>) {
        // Nobody listens: nothing to build.
        if self.sender.receiver_count() == 0 {
            return;
        }
        let (kind, node, data) = match event {
            Event::RunStarted {
                workflow_id,
                nodes,
                finished,
                ..
            } => (
                "run_started",
                None,
                json!({"run_id": run_id, "workflow_id": workflow_id, "nodes": nodes, "finished": finished}),
            ),
            Event::AttemptStarted { node, attempt } => (
                "attempt_started",
                Some(*node),
                json!({"run_id": run_id, "node": node, "attempt": attempt}),
            ),
            Event::AttemptFinished {
                node,
                attempt,
                error,
                elapsed,
            } => (
                "attempt_finished",
                Some(*node),
                json!({
                    "run_id": run_id, "node": node, "attempt": attempt, "error": error,
                    "elapsed_ms": elapsed.as_secs_f64() * 1e3,
                }),
            ),
            Event::RetryScheduled {
                node,
                attempt,
                error,
                delay,
            } => (
                "retry_scheduled",
                Some(*node),
                json!({
                    "run_id": run_id, "node": node, "attempt": attempt, "error": error,
                    "delay_ms": delay.as_secs_f64() * 1e3,
                }),
            ),
            Event::NodeFinished { node } => (
                "node_finished",
                Some(node.id.as_str()),
                json!({
                    "run_id": run_id, "node": node.id, "status": node.status.name(),
                    "reason": node.status.reason(), "attempts": node.attempts,
                    "elapsed_ms": node.elapsed.as_secs_f64() * 1e3, "error": node.error,
                }),
            ),
            Event::RunFinished { report } => (
                "run_finished",
                None,
                json!({
                    "run_id": run_id, "status": report.status, "error": report.error,
                    "elapsed_ms": report.elapsed.as_secs_f64() * 1e3,
                    "failed_nodes": report.failed_nodes,
                }),
            ),
            _ => return,
        };
        let _ = self.sender.send(Message {
            run_id: run_id.into(),
            node: node.map(Arc::from),
            kind,
            data: data.to_string().into(),
        });
    }
}
