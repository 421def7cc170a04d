//! The PostgreSQL layout and its versioned migrations.
//!
//! Every table's name starts with `flow_`, so the store can share a
//! database with others. `flow_schema` lists the migrations applied; a
//! store applies the missing ones when it opens, in one transaction under
//! an advisory lock, so hosts starting together migrate once. A database
//! migrated by a newer flow is refused rather than misread.
//!
//! Records are JSON text, as in sled (a node's output keeps its numbers
//! exactly as the plugin wrote them, which `jsonb` would not). Ids use the
//! "C" collation: byte order, the order of sled's keys, and prefix searches
//! that use the index.

use tokio_postgres::Client;

use super::bridge::OpError;
use crate::store::StoreError;

/// One step of the layout.
pub(super) struct Migration {
    pub(super) version: i32,
    pub(super) description: &'static str,
    pub(super) sql: &'static str,
}

/// Every migration, oldest first. Never edit one that has shipped: add one.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "runs, nodes, attempts and schedules",
        sql: r#"
CREATE TABLE flow_runs (
    run_id      text COLLATE "C" PRIMARY KEY,
    status      text NOT NULL,
    header      text NOT NULL,
    definition  text,
    sinks       text,
    -- The process running the run, and until when it holds it: a run
    -- whose holder stopped renewing is shown interrupted.
    owner       text,
    lease_until timestamptz
);
CREATE INDEX flow_runs_running ON flow_runs (owner) WHERE status = 'running';
CREATE TABLE flow_nodes (
    run_id   text COLLATE "C" NOT NULL,
    node_id  text COLLATE "C" NOT NULL,
    position bigint NOT NULL,
    element  bigint,
    record   text NOT NULL,
    PRIMARY KEY (run_id, node_id)
);
CREATE TABLE flow_attempts (
    run_id  text COLLATE "C" NOT NULL,
    node_id text COLLATE "C" NOT NULL,
    number  integer NOT NULL,
    record  text NOT NULL,
    PRIMARY KEY (run_id, node_id, number)
);
CREATE TABLE flow_schedules (
    name      text PRIMARY KEY,
    last_fire bigint NOT NULL
);
"#,
    },
    Migration {
        version: 2,
        description: "the task queue of workers",
        sql: r#"
-- Set by `flow cancel` on any host; the run's process stops the run.
ALTER TABLE flow_runs ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false;
CREATE SEQUENCE flow_task_tokens;
CREATE TABLE flow_tasks (
    id            bigserial PRIMARY KEY,
    run_id        text COLLATE "C" NOT NULL,
    node_id       text COLLATE "C" NOT NULL,
    attempt       integer NOT NULL,
    action        text NOT NULL,
    plugin_sha256 text NOT NULL,
    input         text NOT NULL,
    -- ready, claimed, done or lost
    state         text NOT NULL DEFAULT 'ready',
    worker        text,
    token         bigint,
    lease_until   timestamptz,
    report        text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (run_id, node_id, attempt)
);
CREATE INDEX flow_tasks_ready ON flow_tasks (id) WHERE state = 'ready';
CREATE INDEX flow_tasks_claimed ON flow_tasks (worker) WHERE state = 'claimed';
-- Runs a worker may take up: queued, or left by a process that stopped.
CREATE INDEX flow_runs_unfinished ON flow_runs (run_id) WHERE status IN ('queued', 'running');
-- Live workers and the plugins they serve (name and SHA-256), renewed
-- like a lease.
CREATE TABLE flow_workers (
    worker     text PRIMARY KEY,
    actions    text[] NOT NULL,
    digests    text[] NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_until timestamptz NOT NULL
);
"#,
    },
];

/// The newest version this flow knows.
pub(super) fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Applies the migrations the database lacks.
pub(super) async fn migrate(client: &mut Client, shown: &str) -> Result<(), OpError> {
    let transaction = client.transaction().await?;
    // Any constant: hosts that open the store together wait here in turn.
    transaction
        .execute("SELECT pg_advisory_xact_lock(7243145061)", &[])
        .await?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS flow_schema (
                 version     integer PRIMARY KEY,
                 description text NOT NULL,
                 applied_at  timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await?;
    let found: i32 = transaction
        .query_one("SELECT coalesce(max(version), 0) FROM flow_schema", &[])
        .await?
        .get(0);
    if found > latest() {
        return Err(OpError::Store(StoreError::Schema {
            path: shown.into(),
            found: found.to_string(),
            expected: latest() as u32,
        }));
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > found) {
        transaction.batch_execute(migration.sql).await?;
        transaction
            .execute(
                "INSERT INTO flow_schema (version, description) VALUES ($1, $2)",
                &[&migration.version, &migration.description],
            )
            .await?;
        tracing::info!(
            "PostgreSQL at {shown}: applied migration {} ({})",
            migration.version,
            migration.description
        );
    }
    transaction.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_rise_by_one() {
        for (at, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version, at as i32 + 1);
        }
    }
}
