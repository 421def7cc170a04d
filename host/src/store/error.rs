//! Errors of the persistence layer.

use std::path::PathBuf;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the database.
    #[error(
        "the run database {} is in use by another flow process{owner}; one process at a time \
         can use a database, so wait for it to finish, or give this command another database \
         with --db",
        path.display()
    )]
    Locked {
        /// The database directory.
        path: PathBuf,
        /// Which process holds it, as ` (process N since T (command))`, when known.
        owner: String,
    },

    /// The database could not be opened.
    #[error("cannot open the run database {}: {message}", path.display())]
    Open {
        /// The database directory.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The database was written by an incompatible version of flow.
    #[error(
        "the run database {} has schema version {found}, but this flow reads version {expected}; \
         use a flow of the matching version, or a new database with --db",
        path.display()
    )]
    Schema {
        /// The database directory.
        path: PathBuf,
        /// The version found.
        found: String,
        /// The version this build understands.
        expected: u32,
    },
    /// A read or write failed.
    #[error("run database error: {message}")]
    Io {
        /// Why.
        message: String,
    },
    /// A stored record cannot be decoded.
    #[error("the run database holds an unreadable record ({key}): {message}")]
    Corrupt {
        /// Which record.
        key: String,
        /// Why.
        message: String,
    },
    /// No run has this id or prefix.
    #[error("no run with id `{id}`; `flow list` shows the runs")]
    UnknownRun {
        /// The id given.
        id: String,
    },
    /// Several runs start with this prefix.
    #[error("{count} runs have ids starting with `{id}`; give more of the id")]
    AmbiguousRun {
        /// The prefix given.
        id: String,
        /// How many matched.
        count: usize,
    },
}
