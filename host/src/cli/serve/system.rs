//! The server's own endpoints: health, metrics, the event stream and the
//! OpenAPI document.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use utoipa::{IntoParams, OpenApi};

use super::events::Message;
use super::model::Health;
use super::problem::Query;
use super::state::App;

/// Whether the server is up, and how busy it is. Needs no token.
#[utoipa::path(get, path = "/healthz", tag = "server", responses((status = 200, body = Health)))]
pub async fn health(State(app): State<Arc<App>>) -> Json<Health> {
    let slots = app.engine.attempt_slots();
    Json(Health {
        status: if app.tasks.is_closed() {
            "stopping"
        } else {
            "ok"
        }
        .into(),
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_s: app.started.elapsed().as_secs_f64(),
        runs_active: app.active_runs(),
        attempts_running: slots.map_or(0, |s| s.in_use()),
        attempts_waiting: slots.map_or(0, |s| s.waiting()),
        max_attempts: slots.map_or(0, |s| s.total()),
    })
}

/// The engine's series in the Prometheus text format (those of
/// `flow run --metrics-out`, for every run of this server), and the
/// server's own.
#[utoipa::path(
    get, path = "/metrics", tag = "server",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    let mut text = app.metrics.render();
    let slots = app.engine.attempt_slots();
    let gauges = [
        (
            "flow_serve_runs_active",
            "Runs this server runs now.",
            app.active_runs(),
        ),
        (
            "flow_serve_attempts_running",
            "Attempts running across runs.",
            slots.map_or(0, |s| s.in_use()),
        ),
        (
            "flow_serve_attempts_waiting",
            "Attempts waiting for a slot (--max-attempts).",
            slots.map_or(0, |s| s.waiting()),
        ),
    ];
    for (name, help, value) in gauges {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
        ));
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Which events to stream.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilter {
    /// Only the events of this run (its whole id).
    pub run: Option<String>,
}

/// Server-sent events of every run (or one): `run_started`,
/// `attempt_started`, `attempt_finished`, `retry_scheduled`,
/// `node_finished`, `run_finished`, each with a JSON object that has
/// `run_id`. A client too slow to keep up gets `lagged`: read the state
/// again.
#[utoipa::path(
    get, path = "/api/v1/events", tag = "runs", params(EventFilter),
    responses((status = 200, description = "A text/event-stream", content_type = "text/event-stream", body = String))
)]
pub async fn events(
    State(app): State<Arc<App>>,
    Query(filter): Query<EventFilter>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let receiver = app.events.subscribe();
    let stream =
        futures_util::stream::unfold((receiver, filter.run), |(mut receiver, run)| async move {
            let (kind, data) = next_event(&mut receiver, run.as_deref()).await?;
            let event = SseEvent::default().event(kind).data(&*data);
            Some((Ok(event), (receiver, run)))
        });
    // Ends when the server shuts down, so that its connections close.
    let stream = stream.take_until(app.shutdown.clone().cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// The next event for a client that follows `run` (every run when
/// `None`): its name and data; `lagged` with the number missed when the
/// client fell too far behind; `None` once the broadcast closed.
async fn next_event(
    receiver: &mut broadcast::Receiver<Message>,
    run: Option<&str>,
) -> Option<(&'static str, Arc<str>)> {
    loop {
        match receiver.recv().await {
            Ok(message) => {
                if run.is_some_and(|run| *message.run_id != *run) {
                    continue;
                }
                return Some((message.kind, message.data));
            }
            Err(RecvError::Lagged(missed)) => {
                return Some(("lagged", format!("{{\"missed\":{missed}}}").into()));
            }
            Err(RecvError::Closed) => return None,
        }
    }
}

/// The API's OpenAPI 3.1 document.
#[utoipa::path(
    get, path = "/api/v1/openapi.json", tag = "server",
    responses((status = 200, description = "This document", body = Object))
)]
pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        super::openapi::ApiDoc::openapi()
            .to_pretty_json()
            .unwrap_or_default(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(run: &str, n: u32) -> Message {
        Message {
            run_id: run.into(),
            node: None,
            kind: "node_finished",
            data: format!("{{\"n\":{n}}}").into(),
        }
    }

    #[tokio::test]
    async fn a_client_that_falls_behind_is_told_how_many_it_missed() {
        let (sender, mut receiver) = broadcast::channel(2);
        for n in 0..5 {
            sender.send(message("01A", n)).unwrap();
        }
        let (kind, data) = next_event(&mut receiver, None).await.unwrap();
        assert_eq!((kind, &*data), ("lagged", "{\"missed\":3}"));
        // Then what is still kept, in order.
        assert_eq!(
            &*next_event(&mut receiver, None).await.unwrap().1,
            "{\"n\":3}"
        );
        assert_eq!(
            &*next_event(&mut receiver, None).await.unwrap().1,
            "{\"n\":4}"
        );
        drop(sender);
        assert!(next_event(&mut receiver, None).await.is_none());
    }

    #[tokio::test]
    async fn a_client_of_one_run_sees_only_its_events() {
        let (sender, mut receiver) = broadcast::channel(8);
        sender.send(message("01A", 1)).unwrap();
        sender.send(message("01B", 2)).unwrap();
        sender.send(message("01A", 3)).unwrap();
        assert_eq!(
            &*next_event(&mut receiver, Some("01B")).await.unwrap().1,
            "{\"n\":2}"
        );
        drop(sender);
        assert!(next_event(&mut receiver, Some("01B")).await.is_none());
    }
}
