//! The store's connection to PostgreSQL: a bounded pool on a runtime of the
//! store's own, reached from synchronous code, with retries while the
//! server cannot be reached.
//!
//! The [`WorkflowStore`](crate::WorkflowStore) trait is synchronous (sled
//! is), and its callers run both inside and outside tokio. An operation is
//! therefore spawned on the store's runtime and waited for on a channel,
//! which works from any thread: a runtime cannot be blocked on from inside
//! another.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod};
use tokio_postgres::error::SqlState;

use crate::store::StoreError;

/// Why one try of an operation failed.
#[derive(Debug)]
pub(super) enum OpError {
    /// The database answered with an error, or the connection broke.
    Db(tokio_postgres::Error),
    /// No connection could be had from the pool.
    Pool(PoolError),
    /// Anything else (a record that cannot be decoded, a refusal).
    Store(StoreError),
}

impl From<tokio_postgres::Error> for OpError {
    fn from(error: tokio_postgres::Error) -> Self {
        OpError::Db(error)
    }
}

impl From<StoreError> for OpError {
    fn from(error: StoreError) -> Self {
        OpError::Store(error)
    }
}

impl OpError {
    /// True when the server could not be reached or went away: the
    /// operation is worth trying again on a new connection.
    fn transient(&self) -> bool {
        match self {
            OpError::Pool(PoolError::Backend(error)) | OpError::Db(error) => transient_db(error),
            OpError::Pool(PoolError::Timeout(_)) => true,
            OpError::Pool(_) | OpError::Store(_) => false,
        }
    }

    /// Why, in a few words (for a log line that names the server).
    fn reason(&self) -> String {
        match self {
            OpError::Db(error) | OpError::Pool(PoolError::Backend(error)) => describe(error),
            OpError::Pool(error) => error.to_string(),
            OpError::Store(error) => error.to_string(),
        }
    }

    fn into_store(self, shown: &str) -> StoreError {
        match self {
            OpError::Store(error) => error,
            OpError::Db(error) | OpError::Pool(PoolError::Backend(error)) => StoreError::Io {
                message: format!("PostgreSQL at {shown}: {}", describe(&error)),
                source: Some(Box::new(error)),
            },
            OpError::Pool(error) => StoreError::Io {
                message: format!("PostgreSQL at {shown}: {error}"),
                source: Some(Box::new(error)),
            },
        }
    }
}

fn transient_db(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    match error.code() {
        // Class 08 (connection exception), and a server shutting down or
        // starting up.
        Some(code) => {
            code.code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                ]
                .contains(code)
        }
        // No code: the connection itself failed (refused, reset, timed out).
        None => {
            let text = error.to_string();
            text.contains("error connecting")
                || text.contains("connection")
                || text.contains("timed out")
                || std::error::Error::source(error).is_some_and(|s| s.is::<std::io::Error>())
        }
    }
}

/// The server's message with its detail and hint, without the Debug form.
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = db.message().to_string();
            if let Some(detail) = db.detail() {
                text.push_str(&format!(" ({detail})"));
            }
            if let Some(hint) = db.hint() {
                text.push_str(&format!("; {hint}"));
            }
            text
        }
        None => match std::error::Error::source(error) {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        },
    }
}

/// A pool of connections and the runtime that drives them.
pub(super) struct Bridge {
    runtime: Option<tokio::runtime::Runtime>,
    pool: Pool,
    /// Connections for the task queue, whose commits need not wait for the
    /// disk (see [`Bridge::attempt_queue`]).
    queue_pool: Pool,
    /// The server's address without its password, for messages.
    pub(super) shown: String,
    /// How long an operation keeps trying while the server is unreachable.
    retry_for: Duration,
}

impl Bridge {
    /// A pool of at most `connections` connections to the database at
    /// `url` (nothing is connected yet).
    pub(super) fn new(
        url: &str,
        connections: usize,
        retry_for: Duration,
    ) -> Result<Arc<Self>, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|error| StoreError::Io {
            message: format!(
                "`{}` is not a PostgreSQL address (postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE): {error}",
                hide_password(url)
            ),
            source: None,
        })?;
        if config.get_application_name().is_none() {
            config.application_name("flow");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        let shown = show(&config);
        let mut queue_config = config.clone();
        let options = queue_config.get_options().unwrap_or_default().to_string();
        queue_config.options(format!("{options} -c synchronous_commit=off").trim());
        let manager = |config| {
            Manager::from_config(
                config,
                tokio_postgres::NoTls,
                ManagerConfig {
                    recycling_method: RecyclingMethod::Fast,
                },
            )
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("flow-postgres")
            .enable_all()
            .build()
            .map_err(StoreError::io)?;
        let build = |config| {
            let _entered = runtime.enter();
            Pool::builder(manager(config))
                .max_size(connections.max(1))
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .wait_timeout(Some(Duration::from_secs(30)))
                .create_timeout(Some(Duration::from_secs(10)))
                .build()
                .map_err(|error| StoreError::io_message(format!("PostgreSQL pool: {error}")))
        };
        let pool = build(config)?;
        let queue_pool = build(queue_config)?;
        Ok(Arc::new(Self {
            runtime: Some(runtime),
            pool,
            queue_pool,
            shown,
            retry_for,
        }))
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the bridge")
    }

    /// Spawns a task on the store's runtime.
    pub(super) fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime().spawn(future)
    }

    /// Runs `op` on a pooled connection, again on a new one while the
    /// server cannot be reached (with backoff, up to the retry time), and
    /// waits for its result. Operations must be safe to repeat: a write
    /// whose commit was lost with its connection may have happened.
    pub(super) fn call<T, F, Fut>(self: &Arc<Self>, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(Object) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, OpError>> + Send,
    {
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        let this = self.clone();
        self.spawn(async move {
            let _ = sender.send(this.attempt(op).await);
        });
        receiver
            .recv()
            .map_err(|_| StoreError::io_message("the PostgreSQL store stopped"))?
    }

    /// [`Bridge::call`] for async callers on the store's runtime.
    pub(super) async fn attempt<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: Fn(Object) -> Fut,
        Fut: Future<Output = Result<T, OpError>>,
    {
        self.attempt_on(&self.pool, op).await
    }

    /// [`Bridge::attempt`] for the task queue, on connections whose commits
    /// do not wait for the disk: a task's state is not the run's record
    /// (that one is always committed to disk). A state lost in a server
    /// crash is a claim that lapses and an attempt run again, never a
    /// result lost.
    pub(super) async fn attempt_queue<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: Fn(Object) -> Fut,
        Fut: Future<Output = Result<T, OpError>>,
    {
        self.attempt_on(&self.queue_pool, op).await
    }

    async fn attempt_on<T, F, Fut>(&self, pool: &Pool, op: F) -> Result<T, StoreError>
    where
        F: Fn(Object) -> Fut,
        Fut: Future<Output = Result<T, OpError>>,
    {
        let started = Instant::now();
        let mut delay = Duration::from_millis(50);
        loop {
            let result = match pool.get().await {
                Ok(client) => op(client).await,
                Err(error) => Err(OpError::Pool(error)),
            };
            match result {
                Ok(value) => return Ok(value),
                Err(error) if error.transient() && started.elapsed() + delay < self.retry_for => {
                    tracing::warn!(
                        "PostgreSQL at {} cannot be reached ({}); trying again in {} ms",
                        self.shown,
                        error.reason(),
                        delay.as_millis()
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(error) => return Err(error.into_store(&self.shown)),
            }
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which is refused inside another one.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// `postgres://user@host:port/database`, without the password.
fn show(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or("")
    )
}

/// The address as given, with any password replaced by `***`.
pub fn hide_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((credentials, host)) if credentials.contains(':') => {
            let user = credentials.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            hide_password("postgres://flow:s3cret@db:5432/runs"),
            "postgres://flow:***@db:5432/runs"
        );
        assert_eq!(
            hide_password("postgres://flow@db/runs"),
            "postgres://flow@db/runs"
        );
        let bridge = Bridge::new("postgres://flow:s3cret@db:6000/runs", 1, Duration::ZERO)
            .ok()
            .unwrap();
        assert_eq!(bridge.shown, "postgres://flow@db:6000/runs");
        let Err(error) = Bridge::new("postgres://flow:s3cret@db:port/x", 1, Duration::ZERO) else {
            panic!("a bad port is refused");
        };
        assert!(!error.to_string().contains("s3cret"), "{error}");
    }
}
