//! Bearer tokens: the server keeps only their SHA-256 hashes, read from
//! `--token-file`, and compares in constant time.
//!
//! A token is 32 random bytes written as 64 hex digits after `flow_`;
//! `flow token --token-file FILE` makes one, prints it once and adds its
//! hash to the file. The file's lines are `sha256:<64 hex digits> [name]`;
//! blank lines and lines starting with `#` are ignored.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The hashes of the tokens the server accepts.
#[derive(Debug, Clone)]
pub struct Tokens {
    hashes: Vec<([u8; 32], String)>,
}

/// A token file, read again when it changes (its size, times or inode),
/// so that tokens are added and revoked without a restart. A file that
/// can no longer be used (damaged, writable by others, removed) accepts no
/// token until it is fixed: an error is logged, requests get a 401.
#[derive(Debug)]
pub struct TokenFile {
    path: PathBuf,
    read: std::sync::Mutex<Read>,
}

/// The file as last read.
#[derive(Debug)]
struct Read {
    stamp: Option<Stamp>,
    /// `None`: the file cannot be used.
    tokens: Option<Tokens>,
}

/// What tells that a file changed: device, inode, modification and
/// status-change times, size.
type Stamp = (u64, u64, i64, i64, i64, i64, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some((
        meta.dev(),
        meta.ino(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
        meta.len(),
    ))
}

impl TokenFile {
    /// Reads the token file at `path`; refuses one that cannot be used.
    pub fn open(path: &Path) -> Result<Self, TokenError> {
        let stamp = stamp(path);
        let tokens = Tokens::read(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            read: std::sync::Mutex::new(Read {
                stamp,
                tokens: Some(tokens),
            }),
        })
    }

    /// How many tokens the file held when last read.
    pub fn len(&self) -> usize {
        self.lock().tokens.as_ref().map_or(0, Tokens::len)
    }

    /// Whether `presented` is one of the tokens the file holds now.
    pub fn accepts(&self, presented: &str) -> bool {
        let now = stamp(&self.path);
        let mut read = self.lock();
        if now != read.stamp {
            read.stamp = now;
            read.tokens = match Tokens::read(&self.path) {
                Ok(tokens) => {
                    tracing::info!(target: "flow::tokens", "{}: read again, {} token(s)", self.path.display(), tokens.len());
                    Some(tokens)
                }
                Err(error) => {
                    tracing::error!(target: "flow::tokens", "{error}; no token is accepted until it is fixed");
                    None
                }
            };
        }
        read.tokens
            .as_ref()
            .is_some_and(|tokens| tokens.check(presented).is_some())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Read> {
        self.read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A token file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read the token file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the token file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}:{line}: expected `sha256:<64 hex digits> [name]` (make tokens with `flow token --token-file {path}`)"
    )]
    Syntax { path: PathBuf, line: usize },
    #[error("{path} holds no token; add one with `flow token --token-file {path}`")]
    Empty { path: PathBuf },
    #[error(
        "{path} may be changed by other users (mode {mode:o}): anyone who can write it can let themselves in; run `chmod go-w {path}`"
    )]
    Unsafe { path: PathBuf, mode: u32 },
    #[error(
        "{path} belongs to another user (uid {uid}), who could let themselves in; use a token file of your own (`flow token --token-file FILE`)"
    )]
    Foreign { path: PathBuf, uid: u32 },
    #[error("cannot make a random token: {0}")]
    Random(String),
}

impl Tokens {
    /// Reads a token file; refuses one that others may write, or that
    /// belongs to another user (root's is accepted, as for a service).
    pub fn read(path: &Path) -> Result<Self, TokenError> {
        use std::os::unix::fs::MetadataExt;
        let read = |source| TokenError::Read {
            path: path.to_path_buf(),
            source,
        };
        // What is checked is what is read: one open file, not the path
        // twice (the file could be swapped between).
        let mut file = std::fs::File::open(path).map_err(read)?;
        let meta = file.metadata().map_err(read)?;
        let uid = meta.uid();
        if uid != rustix::process::geteuid().as_raw() && uid != 0 {
            return Err(TokenError::Foreign {
                path: path.to_path_buf(),
                uid,
            });
        }
        let mode = meta.mode();
        if mode & 0o022 != 0 {
            return Err(TokenError::Unsafe {
                path: path.to_path_buf(),
                mode: mode & 0o777,
            });
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut file, &mut text).map_err(read)?;
        let mut hashes = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (hash, name) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let hash = hash
                .strip_prefix("sha256:")
                .and_then(parse_hex)
                .ok_or_else(|| TokenError::Syntax {
                    path: path.to_path_buf(),
                    line: number + 1,
                })?;
            hashes.push((hash, name.trim().to_string()));
        }
        if hashes.is_empty() {
            return Err(TokenError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(Self { hashes })
    }

    /// The name of the token `presented` is, if the server accepts it.
    /// Every stored hash is compared, each in constant time.
    pub fn check(&self, presented: &str) -> Option<&str> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (hash, name) in &self.hashes {
            if bool::from(hash.ct_eq(&digest)) {
                found = Some(name.as_str());
            }
        }
        found
    }

    /// The token a request presents in `Authorization: Bearer <token>`
    /// (the scheme's name in any case, as HTTP allows).
    pub fn presented(headers: &axum::http::HeaderMap) -> Option<&str> {
        let value = headers
            .get(axum::http::header::AUTHORIZATION)?
            .to_str()
            .ok()?;
        let (scheme, token) = value.trim_start().split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then_some(token.trim())
    }

    /// How many tokens are accepted.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }
}

/// Makes a token, adds its hash (and `name`) to the file at `path`
/// (created readable by its owner only), and returns the token.
pub fn add_token(path: &Path, name: &str) -> Result<String, TokenError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| TokenError::Random(error.to_string()))?;
    let mut token = String::from("flow_");
    for byte in bytes {
        let _ = write!(token, "{byte:02x}");
    }
    let digest = Sha256::digest(token.as_bytes());
    let mut line = String::from("sha256:");
    for byte in digest {
        let _ = write!(line, "{byte:02x}");
    }
    if !name.is_empty() {
        line.push(' ');
        line.push_str(name);
    }
    line.push('\n');
    let write = |source| TokenError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(write)?;
    file.write_all(line.as_bytes()).map_err(write)?;
    Ok(token)
}

fn parse_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stored_hashed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        let ci = add_token(&path, "ci").unwrap();
        let alice = add_token(&path, "").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&ci[5..]), "the token itself is not stored");
        assert_eq!(text.lines().count(), 2);
        let tokens = Tokens::read(&path).unwrap();
        assert_eq!(tokens.check(&ci), Some("ci"));
        assert_eq!(tokens.check(&alice), Some(""));
        assert_eq!(tokens.check("flow_00"), None);
        assert_eq!(tokens.check(""), None);
    }

    #[test]
    fn a_changed_token_file_is_read_again_and_a_broken_one_accepts_none() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        let first = add_token(&path, "first").unwrap();
        let file = TokenFile::open(&path).unwrap();
        assert!(file.accepts(&first));
        // Added without a restart.
        let second = add_token(&path, "second").unwrap();
        assert!(file.accepts(&second));
        assert_eq!(file.len(), 2);
        // Revoked without a restart: the first token's line goes.
        let text = std::fs::read_to_string(&path).unwrap();
        let kept: String = text
            .lines()
            .filter(|l| !l.ends_with(" first"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&path, kept).unwrap();
        assert!(!file.accepts(&first));
        assert!(file.accepts(&second));
        // Made writable by others: no token at all until it is fixed.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(!file.accepts(&second));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(file.accepts(&second));
        std::fs::remove_file(&path).unwrap();
        assert!(!file.accepts(&second));
        assert_eq!(file.len(), 0);
    }

    #[test]
    fn a_token_file_of_another_user_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        add_token(&path, "ci").unwrap();
        // Giving a file away takes root (as tests run in CI).
        if std::os::unix::fs::chown(&path, Some(12_345), None).is_err() {
            assert_ne!(rustix::process::geteuid().as_raw(), 0);
            return;
        }
        let error = Tokens::read(&path).err().unwrap().to_string();
        assert!(
            error.contains("belongs to another user (uid 12345)"),
            "{error}"
        );
    }

    #[test]
    fn the_token_is_read_from_the_authorization_header() {
        let presented = |value: &str| {
            let mut headers = axum::http::HeaderMap::new();
            headers.insert("authorization", value.parse().unwrap());
            Tokens::presented(&headers).map(str::to_string)
        };
        for value in ["Bearer flow_1", "bearer flow_1", "BEARER  flow_1 "] {
            assert_eq!(presented(value).as_deref(), Some("flow_1"), "{value}");
        }
        for value in ["Basic Zmxvdw==", "Bearerflow_1", "flow_1"] {
            assert_eq!(presented(value), None, "{value}");
        }
        assert_eq!(Tokens::presented(&axum::http::HeaderMap::new()), None);
    }

    #[test]
    fn bad_token_files_are_refused_with_the_line() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, "# tokens\nsha256:abc\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let error = Tokens::read(&path).unwrap_err().to_string();
        assert!(error.contains("tokens:2: expected `sha256:"), "{error}");
        std::fs::write(&path, "# none\n").unwrap();
        let error = Tokens::read(&path).unwrap_err().to_string();
        assert!(error.contains("holds no token"), "{error}");
        add_token(&path, "x").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let error = Tokens::read(&path).unwrap_err().to_string();
        assert!(error.contains("chmod go-w"), "{error}");
    }
}
