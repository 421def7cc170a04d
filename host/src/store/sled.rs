//! The default store: an embedded sled database.
//!
//! Layout: tree `runs` maps a run id to its JSON header; tree `definitions`
//! maps a run id to the workflow text; tree `nodes` maps `run id, 0, node id`
//! to the node's JSON record; tree `attempts` maps
//! `run id, 0, node id, 0, attempt number (4 bytes, big-endian)` to the
//! attempt's JSON record. The default tree holds `schema_version`.

use std::path::{Path, PathBuf};

use super::{AttemptRecord, NodeRecord, RunRecord, StoreError, WorkflowStore};

/// Version of the layout above; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 2;

/// Runs kept in a sled database on disk.
#[derive(Debug, Clone)]
pub struct SledStore {
    path: PathBuf,
    db: sled::Db,
    runs: sled::Tree,
    definitions: sled::Tree,
    nodes: sled::Tree,
    attempts: sled::Tree,
}

impl SledStore {
    /// Opens (or creates) the database in directory `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if path.is_file() {
            return Err(StoreError::Open {
                path: path.to_path_buf(),
                message: "it is a file; the run database is a directory".into(),
            });
        }
        let db = sled::Config::new()
            .path(path)
            .open()
            .map_err(|error| open_error(path, error))?;
        let tree = |name: &str| db.open_tree(name).map_err(|error| open_error(path, error));
        let store = Self {
            path: path.to_path_buf(),
            runs: tree("runs")?,
            definitions: tree("definitions")?,
            nodes: tree("nodes")?,
            attempts: tree("attempts")?,
            db,
        };
        store.check_schema()?;
        Ok(store)
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check_schema(&self) -> Result<(), StoreError> {
        let expected = SCHEMA_VERSION.to_string();
        match self.db.get("schema_version").map_err(io)? {
            Some(found) if found.as_ref() == expected.as_bytes() => Ok(()),
            Some(found) => Err(StoreError::Schema {
                path: self.path.clone(),
                found: String::from_utf8_lossy(&found).into_owned(),
                expected: SCHEMA_VERSION,
            }),
            None => {
                self.db
                    .insert("schema_version", expected.as_bytes())
                    .map_err(io)?;
                Ok(())
            }
        }
    }
}

fn node_key(run_id: &str, node_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(run_id.len() + 1 + node_id.len());
    key.extend_from_slice(run_id.as_bytes());
    key.push(0);
    key.extend_from_slice(node_id.as_bytes());
    key
}

fn node_prefix(run_id: &str) -> Vec<u8> {
    node_key(run_id, "")
}

fn attempt_prefix(run_id: &str, node_id: &str) -> Vec<u8> {
    let mut key = node_key(run_id, node_id);
    key.push(0);
    key
}

fn attempt_key(run_id: &str, node_id: &str, number: u32) -> Vec<u8> {
    let mut key = attempt_prefix(run_id, node_id);
    key.extend_from_slice(&number.to_be_bytes());
    key
}

fn io(error: sled::Error) -> StoreError {
    StoreError::Io {
        message: error.to_string(),
    }
}

fn open_error(path: &Path, error: sled::Error) -> StoreError {
    let message = error.to_string();
    if message.contains("could not acquire lock") {
        return StoreError::Locked {
            path: path.to_path_buf(),
        };
    }
    let message = match error {
        sled::Error::Corruption { .. } => {
            "the database is corrupt; move it away and start a new one (the runs in it are lost to flow)".to_string()
        }
        sled::Error::Io(error) => error.to_string(),
        _ => message,
    };
    StoreError::Open {
        path: path.to_path_buf(),
        message,
    }
}

fn decode<T: serde::de::DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|error| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).replace('\0', "/"),
        message: error.to_string(),
    })
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialise to JSON")
}

impl WorkflowStore for SledStore {
    fn create_run(&self, run: &RunRecord, definition: &str) -> Result<(), StoreError> {
        self.definitions
            .insert(run.run_id.as_bytes(), definition.as_bytes())
            .map_err(io)?;
        self.runs
            .insert(run.run_id.as_bytes(), encode(run))
            .map_err(io)?;
        Ok(())
    }

    fn update_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        self.runs
            .insert(run.run_id.as_bytes(), encode(run))
            .map_err(io)?;
        Ok(())
    }

    fn put_node(&self, run_id: &str, node: &NodeRecord) -> Result<(), StoreError> {
        self.nodes
            .insert(node_key(run_id, &node.node_id), encode(node))
            .map_err(io)?;
        Ok(())
    }

    fn put_attempt(
        &self,
        run_id: &str,
        node_id: &str,
        attempt: &AttemptRecord,
    ) -> Result<(), StoreError> {
        self.attempts
            .insert(
                attempt_key(run_id, node_id, attempt.number),
                encode(attempt),
            )
            .map_err(io)?;
        Ok(())
    }

    fn attempts(&self, run_id: &str, node_id: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        self.attempts
            .scan_prefix(attempt_prefix(run_id, node_id))
            .map(|entry| {
                let (key, bytes) = entry.map_err(io)?;
                decode(&key, &bytes)
            })
            .collect()
    }

    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.runs
            .get(run_id.as_bytes())
            .map_err(io)?
            .map(|bytes| decode(run_id.as_bytes(), &bytes))
            .transpose()
    }

    fn definition(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .definitions
            .get(run_id.as_bytes())
            .map_err(io)?
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }

    fn nodes(&self, run_id: &str) -> Result<Vec<NodeRecord>, StoreError> {
        let mut nodes = self
            .nodes
            .scan_prefix(node_prefix(run_id))
            .map(|entry| {
                let (key, bytes) = entry.map_err(io)?;
                decode::<NodeRecord>(&key, &bytes)
            })
            .collect::<Result<Vec<_>, _>>()?;
        nodes.sort_by_key(|node| node.index);
        Ok(nodes)
    }

    fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        self.runs
            .iter()
            .rev()
            .map(|entry| {
                let (key, bytes) = entry.map_err(io)?;
                decode(&key, &bytes)
            })
            .collect()
    }

    fn delete_run(&self, run_id: &str) -> Result<bool, StoreError> {
        let existed = self.runs.remove(run_id.as_bytes()).map_err(io)?.is_some();
        self.definitions.remove(run_id.as_bytes()).map_err(io)?;
        for tree in [&self.nodes, &self.attempts] {
            let mut batch = sled::Batch::default();
            for key in tree.scan_prefix(node_prefix(run_id)).keys() {
                batch.remove(key.map_err(io)?);
            }
            tree.apply_batch(batch).map_err(io)?;
        }
        Ok(existed)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(io)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance;

    fn open() -> (tempfile::TempDir, SledStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("db")).unwrap();
        (dir, store)
    }

    #[test]
    fn round_trip() {
        conformance::round_trip(&open().1);
    }

    #[test]
    fn listing_and_prefixes() {
        conformance::listing_and_prefixes(&open().1);
    }

    #[test]
    fn deletion() {
        conformance::deletion(&open().1);
    }

    #[test]
    fn data_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let store = SledStore::open(&path).unwrap();
            let run = conformance::run_record("01A", crate::store::RunStatus::Succeeded);
            store.create_run(&run, "text").unwrap();
            store.flush().unwrap();
        }
        let store = SledStore::open(&path).unwrap();
        assert_eq!(store.run("01A").unwrap().unwrap().workflow_id, "wf");
    }

    #[test]
    fn a_file_is_not_a_database() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let error = SledStore::open(file.path()).unwrap_err();
        assert!(error.to_string().contains("it is a file"), "{error}");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let store = SledStore::open(&path).unwrap();
            store.db.insert("schema_version", "99").unwrap();
            store.flush().unwrap();
        }
        let error = SledStore::open(&path).unwrap_err();
        assert!(matches!(error, StoreError::Schema { .. }), "{error}");
    }
}
