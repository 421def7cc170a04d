//! Errors of the persistence layer.

use std::path::PathBuf;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the database.
    #[error(
        "the run database {} is in use by another flow process{owner}; one process at a time \
         can use a database",
        path.display()
    )]
    Locked {
        /// The database directory.
        path: PathBuf,
        /// Which process holds it, as ` (process N since T (command))`, when known.
        owner: String,
    },
    /// A `flow serve` holds the database and could not answer, or was
    /// asked for what only its API does.
    #[error("the flow server at {url}, which holds the run database: {message}")]
    Server {
        /// The server's address.
        url: String,
        /// The HTTP status of its answer, when it answered.
        status: Option<u16>,
        /// What went wrong.
        message: String,
    },
    /// The database could not be opened.
    #[error("cannot open the run database {}: {message}", path.display())]
    Open {
        /// The database directory.
        path: PathBuf,
        /// Why.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The path holds something other than a flow run database.
    #[error("{} is not a flow run database: {why}", path.display())]
    NotADatabase {
        /// The path.
        path: PathBuf,
        /// What was found there instead.
        why: String,
    },
    /// The database was written by an incompatible version of flow.
    #[error(
        "the run database {} has schema version {found}, but this flow reads versions up to {expected}; \
         use a flow of the matching version",
        path.display()
    )]
    Schema {
        /// The database directory.
        path: PathBuf,
        /// The version found.
        found: String,
        /// The newest version this build understands.
        expected: u32,
    },
    /// A read or write failed.
    #[error("run database error: {message}")]
    Io {
        /// Why.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A stored record cannot be decoded.
    #[error("the run database holds an unreadable record ({key}): {source}")]
    Corrupt {
        /// Which record.
        key: String,
        /// Why it cannot be read.
        #[source]
        source: serde_json::Error,
    },
    /// Another live process holds the run (a shared store).
    #[error(
        "run {run_id} is being run by {owner}; wait for it to end, or, if that process is gone, \
         for its lease to lapse"
    )]
    Held {
        /// The run.
        run_id: String,
        /// The holder, as `host:pid:random`.
        owner: String,
    },
    /// An empty run id was given.
    #[error("the run id is empty")]
    EmptyRunId,
    /// No run has this id or prefix.
    #[error("no run with id `{id}`")]
    UnknownRun {
        /// The id given.
        id: String,
    },
    /// Several runs start with this prefix.
    #[error("{} runs have ids starting with `{id}`; give more of the id", counted(*.count))]
    AmbiguousRun {
        /// The prefix given.
        id: String,
        /// How many matched, counted up to 1,000.
        count: usize,
    },
}

impl StoreError {
    /// A read or write error with its cause.
    pub fn io(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Io {
            message: error.to_string(),
            source: Some(Box::new(error)),
        }
    }

    /// A read or write error described by a message only.
    pub fn io_message(message: impl Into<String>) -> Self {
        StoreError::Io {
            message: message.into(),
            source: None,
        }
    }
}

/// Runs an ambiguous prefix matches are counted up to this many, so that
/// a prefix of one character does not read every run of the store.
pub const MOST_COUNTED: usize = 1_000;

fn counted(count: usize) -> String {
    if count >= MOST_COUNTED {
        format!("{MOST_COUNTED} or more")
    } else {
        count.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ambiguous_prefix_says_how_many_runs_it_matches_up_to_a_bound() {
        let error = |count| StoreError::AmbiguousRun {
            id: "01".into(),
            count,
        };
        assert_eq!(
            error(2).to_string(),
            "2 runs have ids starting with `01`; give more of the id"
        );
        assert!(
            error(MOST_COUNTED)
                .to_string()
                .starts_with("1000 or more runs")
        );
    }
}
