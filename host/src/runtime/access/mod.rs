//! What a node may reach beyond JSON in and out: the grants a workflow
//! states, and how an attempt is given them.
//!
//! Nothing is granted by default. A workflow grants, per node or in
//! `[defaults]`: HTTP destinations (`http`), directories (`files`),
//! environment variables (`env`) and secrets (`secrets`). The host
//! enforces each grant itself: requests pass a check before any connection
//! is made, directories are preopened with their permissions, and secret
//! values are replaced by `***` in everything an attempt leaves behind.

mod http;
mod secrets;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub(crate) use http::HttpAccess;
pub use http::HttpGrant;
pub use secrets::{
    REDACTED, Redactor, SECRET_ENV_PREFIX, Secrets, SecretsError, valid_secret_name,
};

/// What a workflow grants a node. The default grants nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grants {
    /// Destinations it may send HTTP requests to.
    pub http: Vec<HttpGrant>,
    /// Directories it may open.
    pub files: Vec<FileGrant>,
    /// Environment variables it sees.
    pub env: BTreeMap<String, String>,
    /// Names of the secrets it sees, as environment variables.
    pub secrets: Vec<String>,
    /// How it sees them.
    pub secret_mode: SecretMode,
}

impl Grants {
    /// Whether nothing is granted.
    pub fn is_empty(&self) -> bool {
        self.http.is_empty()
            && self.files.is_empty()
            && self.env.is_empty()
            && self.secrets.is_empty()
    }
}

/// A directory of the host a node may open, under a path of its own.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileGrant {
    /// The directory on the host, relative to the workflow file's.
    pub host: PathBuf,
    /// Where the plugin finds it: an absolute path such as `/data`.
    pub guest: String,
    /// Whether it may create, change and delete files there.
    #[serde(default)]
    pub write: bool,
}

impl FileGrant {
    /// The host directory, resolved against the workflow file's `base`.
    pub fn host_dir(&self, base: &Path) -> PathBuf {
        base.join(&self.host)
    }

    /// Checks the guest path: absolute, without `.` or `..` segments.
    pub fn check(&self) -> Result<(), String> {
        let guest = &self.guest;
        if !guest.starts_with('/') || guest.split('/').any(|s| s == "." || s == "..") {
            return Err(format!(
                "the guest path \"{guest}\" must be absolute and without `.` or `..`, such as \"/data\""
            ));
        }
        Ok(())
    }
}

/// How a node sees its secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretMode {
    /// The value itself, in an environment variable of the secret's name.
    #[default]
    Value,
    /// An opaque token in its place; the host puts the value in the headers
    /// of requests to the destinations the node may reach, and nowhere
    /// else.
    Placeholder,
}

/// Everything an attempt is given beyond its input: the node's grants,
/// where its relative paths start, and the host's secret values.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    /// The node's grants.
    pub grants: &'a Grants,
    /// The directory relative host paths start from (the workflow file's).
    pub base: &'a Path,
    /// The host's secrets; the node sees those it is granted.
    pub secrets: &'a Secrets,
}

impl Access<'static> {
    /// Nothing granted.
    pub fn none() -> Self {
        static GRANTS: std::sync::LazyLock<Grants> = std::sync::LazyLock::new(Grants::default);
        static SECRETS: std::sync::LazyLock<Secrets> = std::sync::LazyLock::new(Secrets::new);
        Access {
            grants: &GRANTS,
            base: Path::new("."),
            secrets: &SECRETS,
        }
    }
}
