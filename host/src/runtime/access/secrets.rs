//! Secret values: where they come from, and keeping them out of everything
//! the host stores or shows.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The prefix of the environment variables secrets are read from:
/// `FLOW_SECRET_API_TOKEN` holds the secret `API_TOKEN`.
pub const SECRET_ENV_PREFIX: &str = "FLOW_SECRET_";

/// What replaces a secret's value wherever it would be stored or shown.
pub const REDACTED: &str = "***";

/// The secret values a host holds, by name. Its `Debug` shows names only.
#[derive(Clone, Default)]
pub struct Secrets {
    values: BTreeMap<String, Arc<str>>,
}

/// Why secrets cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The file cannot be read.
    #[error("cannot read the secrets file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Other users may read the file.
    #[error(
        "the secrets file {} may be read by other users (mode {mode:o}); \
         make it private: chmod 600 {}",
        path.display(),
        path.display()
    )]
    Readable {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A line is not `NAME=value`.
    #[error("{}:{line}: expected NAME=value, with NAME of letters, digits and `_`", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
    },
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

/// Whether `name` can name a secret: letters, digits and `_`, not empty.
pub fn valid_secret_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Secrets {
    /// No secrets.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a secret.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.values.insert(name.into(), Arc::from(value.into()));
    }

    /// The secrets of the process's environment: each `FLOW_SECRET_<NAME>`.
    pub fn from_env() -> Self {
        let mut secrets = Self::new();
        for (key, value) in std::env::vars_os() {
            let (Some(key), Some(value)) = (key.to_str(), value.to_str()) else {
                continue;
            };
            if let Some(name) = key.strip_prefix(SECRET_ENV_PREFIX)
                && valid_secret_name(name)
            {
                secrets.insert(name, value);
            }
        }
        secrets
    }

    /// Adds the secrets of a file of `NAME=value` lines (blank lines and
    /// lines starting with `#` are skipped). The file must not be readable
    /// by other users.
    pub fn read_file(&mut self, path: &Path) -> Result<(), SecretsError> {
        let read = |source| SecretsError::Read {
            path: path.to_path_buf(),
            source,
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).map_err(read)?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(SecretsError::Readable {
                    path: path.to_path_buf(),
                    mode: mode & 0o777,
                });
            }
        }
        let text = std::fs::read_to_string(path).map_err(read)?;
        for (number, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            match line.split_once('=') {
                Some((name, value)) if valid_secret_name(name.trim()) => {
                    self.insert(name.trim(), value);
                }
                _ => {
                    return Err(SecretsError::Syntax {
                        path: path.to_path_buf(),
                        line: number + 1,
                    });
                }
            }
        }
        Ok(())
    }

    /// The value of a secret.
    pub fn get(&self, name: &str) -> Option<&Arc<str>> {
        self.values.get(name)
    }

    /// Whether there is a secret of that name.
    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// The names of the secrets held.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// A redactor of every value held (not just those of one node: a
    /// plugin may have learnt another's value by other means).
    pub fn redactor(&self) -> Redactor {
        Redactor::new(self.values.values().map(|v| v.to_string()))
    }
}

/// Replaces secret values in text with [`REDACTED`].
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Values and their forms inside JSON strings, longest first.
    needles: Vec<String>,
}

impl Redactor {
    /// A redactor of these values (empty ones are ignored).
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut needles = Vec::new();
        for value in values.into_iter().filter(|v| !v.is_empty()) {
            // Inside stored JSON a value appears escaped as serde_json
            // writes it (the canonical form every output is stored in).
            let quoted = serde_json::Value::from(value.as_str()).to_string();
            let escaped = quoted[1..quoted.len() - 1].to_string();
            if escaped != value {
                needles.push(escaped);
            }
            needles.push(value);
        }
        needles.sort_by_key(|needle| std::cmp::Reverse(needle.len()));
        needles.dedup();
        Self { needles }
    }

    /// Whether there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` with every secret value replaced; borrowed when none occurs.
    pub fn redact<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        let mut text = std::borrow::Cow::Borrowed(text);
        for needle in &self.needles {
            if text.contains(needle.as_str()) {
                text = std::borrow::Cow::Owned(text.replace(needle.as_str(), REDACTED));
            }
        }
        text
    }

    /// Redacts `text` in place.
    pub fn redact_in_place(&self, text: &mut String) {
        if let std::borrow::Cow::Owned(redacted) = self.redact(text) {
            *text = redacted;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_their_json_forms_are_redacted() {
        let redactor = Redactor::new(["s3cr\"t".to_string(), "tok".to_string()]);
        assert_eq!(redactor.redact("a s3cr\"t b tok"), "a *** b ***");
        assert_eq!(redactor.redact(r#"{"v":"s3cr\"t"}"#), r#"{"v":"***"}"#);
        assert!(matches!(
            redactor.redact("nothing"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn debug_shows_names_only() {
        let mut secrets = Secrets::new();
        secrets.insert("API_TOKEN", "hunter2");
        assert_eq!(format!("{secrets:?}"), "{\"API_TOKEN\"}");
    }

    #[test]
    fn files_must_be_private_and_well_formed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets");
        std::fs::write(&path, "# comment\nA=1=2\n\nB_2= spaced \n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = Secrets::new().read_file(&path).unwrap_err().to_string();
        assert!(error.contains("chmod 600"), "{error}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut secrets = Secrets::new();
        secrets.read_file(&path).unwrap();
        assert_eq!(&**secrets.get("A").unwrap(), "1=2");
        assert_eq!(&**secrets.get("B_2").unwrap(), " spaced ");
        std::fs::write(&path, "not a secret\n").unwrap();
        let error = Secrets::new().read_file(&path).unwrap_err().to_string();
        assert!(
            error.ends_with(":1: expected NAME=value, with NAME of letters, digits and `_`"),
            "{error}"
        );
    }
}
