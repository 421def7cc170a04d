//! Accepting connections, bounded: at most `--max-connections` at once
//! (a connection waits in the kernel's queue until one ends), and each
//! must send a request's head within `--header-timeout`, the first and
//! each after, so that clients that connect and send nothing (or a byte
//! now and then) hold neither a connection nor a file for long. Requests
//! are HTTP/1.1; server-sent-event streams are answers like any other.
//!
//! On shutdown the listener closes, each connection finishes the request
//! it serves (event streams end with the server), and [`serve`] returns
//! when the last one closed, or after the shutdown grace at most.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_util::task::TaskTracker;

/// How connections are bounded.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Connections served at once.
    pub connections: usize,
    /// Time to send a request's head.
    pub header_timeout: Duration,
    /// After shutdown, how long the server waits for requests in flight
    /// (a client that stops sending a body, or reading an answer, holds
    /// the shutdown no longer than this).
    pub grace: Duration,
}

/// Serves `router` on `listener` until `shutdown` completes, then waits
/// for the connections to close; when shutdown began.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    bounds: Bounds,
    shutdown: impl Future<Output = ()>,
) -> tokio::time::Instant {
    let slots = Arc::new(Semaphore::new(bounds.connections));
    let (closing, closed) = watch::channel(());
    let connections = TaskTracker::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = accept(&listener, &slots) => accepted,
        };
        let Some((stream, slot)) = accepted else {
            continue;
        };
        let service = TowerToHyperService::new(router.clone());
        let mut closed = closed.clone();
        connections.spawn(async move {
            let _slot = slot;
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(bounds.header_timeout);
            let connection = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = closed.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    let began = tokio::time::Instant::now();
    drop(listener);
    drop(closing);
    connections.close();
    if tokio::time::timeout(bounds.grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            target: "flow::serve",
            "{} connection(s) still open after the shutdown grace; they are cut off when the server exits",
            connections.len()
        );
    }
    began
}

/// The next connection, once a slot is free; `None` after an error of
/// `accept`: a connection the client gave up on is passed over, any other
/// error (the process is out of files, say) is logged and retried after a
/// pause.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> Option<(tokio::net::TcpStream, tokio::sync::OwnedSemaphorePermit)> {
    use std::io::ErrorKind;
    let slot = slots.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, _)) => Some((stream, slot)),
        Err(error)
            if matches!(
                error.kind(),
                ErrorKind::ConnectionAborted
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionRefused
            ) =>
        {
            None
        }
        Err(error) => {
            tracing::warn!(target: "flow::serve", "cannot accept a connection: {error}; trying again in a second");
            tokio::time::sleep(Duration::from_secs(1)).await;
            None
        }
    }
}
