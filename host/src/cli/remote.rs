//! The run database through a running `flow serve`: while a server holds
//! the database, `flow status`, `flow list`, `flow logs` and `flow graph
//! --run` read it through the server's API, and `flow cancel` asks the
//! server to stop a run.
//!
//! A server records its address beside the database (`db.server.json`);
//! when it asks for tokens, the command sends `FLOW_TOKEN`.

use std::path::Path;
use std::time::Duration;

use flow_host::WorkflowStore;
use flow_host::report::Timestamp;
use flow_host::store::{AttemptRecord, NodeHistory, NodeRecord, Records, RunRecord, StoreError};
use serde::Deserialize;

/// Where a server that holds the database listens.
#[derive(Debug, Deserialize)]
pub struct Address {
    pub url: String,
    pub pid: u32,
    pub token: bool,
}

/// The address a running server recorded beside `db`, if any, and if its
/// process is still there: a process of the user the file belongs to (a
/// server killed before it could remove the file leaves it behind, and
/// its number may since be another user's process, which may listen on
/// the port: it must not be sent `FLOW_TOKEN`).
pub fn server_of(db: &Path) -> Option<Address> {
    use std::io::Read as _;
    use std::os::unix::fs::MetadataExt as _;
    let mut file = std::fs::File::open(super::serve::address_file(db)).ok()?;
    let writer = file.metadata().ok()?.uid();
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    let address: Address = serde_json::from_str(&text).ok()?;
    let process = std::fs::metadata(format!("/proc/{}", address.pid)).ok()?;
    (process.uid() == writer).then_some(address)
}

/// A read-only store that asks a server.
pub struct RemoteStore {
    url: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl RemoteStore {
    /// A store that asks the server at `address`.
    pub fn new(address: &Address) -> Result<Self, StoreError> {
        let token = std::env::var("FLOW_TOKEN").ok().filter(|t| !t.is_empty());
        if address.token && token.is_none() {
            return Err(StoreError::Server {
                url: address.url.clone(),
                status: None,
                message: "it needs a token: set FLOW_TOKEN to one of its tokens".into(),
            });
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let store = Self {
            url: address.url.clone(),
            token,
            agent,
        };
        // Answered at once, and only with a token it takes.
        store.call("GET", "/api/v1/runs?limit=1")?;
        Ok(store)
    }

    /// Sends a request; the body of a 2xx answer, `None` for a 404, an
    /// error with the problem's detail otherwise.
    pub fn call(&self, method: &str, path: &str) -> Result<Option<String>, StoreError> {
        self.send(method, path, None)
    }

    /// [`call`](Self::call) with a JSON body.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url));
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let sent = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(body.to_string())
                .map(|request| self.agent.run(request)),
            None => request.body(()).map(|request| self.agent.run(request)),
        };
        let mut response = sent
            .map_err(|error| self.error(error))?
            .map_err(|error| self.error(error))?;
        let status = response.status();
        let body = response
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_string()
            .map_err(|error| self.error(error))?;
        if status.is_success() {
            return Ok(Some(body));
        }
        if status.as_u16() == 404 {
            return Ok(None);
        }
        let detail = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|problem| problem["detail"].as_str().map(String::from))
            .unwrap_or(body);
        Err(StoreError::Server {
            url: self.url.clone(),
            status: Some(status.as_u16()),
            message: format!("{status}: {detail}"),
        })
    }

    /// A server-sent-events stream: its lines.
    pub fn stream(&self, path: &str) -> Result<impl std::io::BufRead + use<>, StoreError> {
        // No time limit: a stream lasts as long as what it follows.
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut request = agent.get(format!("{}{path}", self.url));
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = request.call().map_err(|error| self.error(error))?;
        Ok(std::io::BufReader::new(response.into_body().into_reader()))
    }

    fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<Option<T>, StoreError> {
        match self.call("GET", path)? {
            None => Ok(None),
            Some(body) => serde_json::from_str(&body)
                .map(Some)
                .map_err(|error| self.error(format!("unexpected answer to {path}: {error}"))),
        }
    }

    fn error(&self, message: impl std::fmt::Display) -> StoreError {
        StoreError::Server {
            url: self.url.clone(),
            status: None,
            message: message.to_string(),
        }
    }

    fn read_only(&self) -> StoreError {
        self.error("it runs the workflows: start, cancel, resume and delete runs through its API, or stop it first")
    }

    fn page(&self, before: Option<&str>, prefix: &str) -> Result<Vec<RunRecord>, StoreError> {
        let mut path = format!("/api/v1/records/runs?prefix={prefix}");
        if let Some(before) = before {
            path.push_str(&format!("&before={before}"));
        }
        Ok(self.get(&path)?.unwrap_or_default())
    }

    fn paged(&self, prefix: String) -> Records<'_, RunRecord> {
        let mut buffer: std::collections::VecDeque<RunRecord> = Default::default();
        let mut before: Option<String> = None;
        let mut done = false;
        Box::new(std::iter::from_fn(move || {
            if buffer.is_empty() && !done {
                match self.page(before.as_deref(), &prefix) {
                    Ok(page) => {
                        done = page.len() < super::serve::RECORDS_PAGE;
                        before = page.last().map(|run| run.run_id.clone());
                        buffer.extend(page);
                    }
                    Err(error) => {
                        done = true;
                        return Some(Err(error));
                    }
                }
            }
            buffer.pop_front().map(Ok)
        }))
    }
}

#[derive(Deserialize)]
struct RunAndDefinition {
    run: RunRecord,
    definition: Option<String>,
}

impl WorkflowStore for RemoteStore {
    fn create_run(&self, _: &RunRecord, _: &str) -> Result<(), StoreError> {
        Err(self.read_only())
    }

    fn update_run(&self, _: &RunRecord) -> Result<(), StoreError> {
        Err(self.read_only())
    }

    fn put_batch(
        &self,
        _: &str,
        _: &[NodeRecord],
        _: &[(String, AttemptRecord)],
    ) -> Result<(), StoreError> {
        Err(self.read_only())
    }

    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let found: Option<RunAndDefinition> =
            self.get(&format!("/api/v1/records/runs/{run_id}"))?;
        Ok(found.map(|found| found.run))
    }

    fn definition(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        let found: Option<RunAndDefinition> =
            self.get(&format!("/api/v1/records/runs/{run_id}"))?;
        Ok(found.and_then(|found| found.definition))
    }

    fn nodes(&self, run_id: &str) -> Result<Vec<NodeRecord>, StoreError> {
        let mut nodes = Vec::new();
        for history in self.history(run_id)? {
            nodes.push(history.node);
            nodes.extend(history.elements.into_iter().map(|element| element.node));
        }
        Ok(nodes)
    }

    fn attempts(&self, run_id: &str, node_id: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        Ok(self
            .history(run_id)?
            .into_iter()
            .flat_map(|history| {
                let elements = history.elements;
                std::iter::once(NodeHistory::new(history.node, history.attempts)).chain(elements)
            })
            .find(|history| history.node.node_id == node_id)
            .map(|history| history.attempts)
            .unwrap_or_default())
    }

    fn history(&self, run_id: &str) -> Result<Vec<NodeHistory>, StoreError> {
        Ok(self
            .get(&format!("/api/v1/records/runs/{run_id}/history"))?
            .unwrap_or_default())
    }

    fn runs(&self) -> Records<'_, RunRecord> {
        self.paged(String::new())
    }

    fn runs_with_prefix(&self, prefix: &str) -> Records<'_, RunRecord> {
        self.paged(prefix.to_string())
    }

    fn delete_run(&self, _: &str) -> Result<bool, StoreError> {
        Err(self.read_only())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn last_fire(&self, _: &str) -> Result<Option<Timestamp>, StoreError> {
        Err(self.read_only())
    }

    fn set_last_fire(&self, _: &str, _: Timestamp) -> Result<(), StoreError> {
        Err(self.read_only())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_server_counts_only_while_its_users_process_lives() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let file = super::super::serve::address_file(&db);
        let write = |pid: u32| {
            std::fs::write(
                &file,
                format!(r#"{{"url": "http://127.0.0.1:1", "pid": {pid}, "token": true}}"#),
            )
            .unwrap();
        };
        write(std::process::id());
        assert_eq!(server_of(&db).map(|a| a.pid), Some(std::process::id()));
        // Gone: the number is no process.
        write(u32::MAX);
        assert!(server_of(&db).is_none());
        // The number is now another user's process (here: the file is
        // another user's; giving it away takes root, as tests run in CI).
        write(std::process::id());
        if std::os::unix::fs::chown(&file, Some(12_345), None).is_err() {
            assert_ne!(rustix::process::geteuid().as_raw(), 0);
            return;
        }
        assert!(server_of(&db).is_none());
    }
}
