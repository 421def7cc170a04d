//! On-disk cache of compiled components.
//!
//! Compiling a component is the slowest step of loading a plugin (seconds for
//! a Python or JavaScript component). The cache keeps the compiled artifact in
//! `<dir>/<sha256 of the component>-<engine key>.cwasm`, where the engine key
//! digests wasmtime's version and every compilation setting that matters.
//! A file is written to a temporary name and renamed, so concurrent `flow`
//! processes never see half a file. A cached file that fails to load is
//! compiled again and replaced.
//!
//! Under `functions/<engine key>/`, compiled functions serve every later
//! component that contains them, in packs (see `functions/`).
//!
//! Beside them, `<file key>-<engine key>.listing` remembers what a plugin
//! file's `describe` returned, keyed by the file's identity (path, device,
//! inode, size, modification and change times): a run that does not use a
//! plugin then lists it by name without reading, compiling or instantiating
//! it. Any change to the file changes its key.
//!
//! Only `flow` writes this directory, and it must not be writable by anyone
//! else: loading compiled code trusts its contents. [`CompileCache::open`]
//! creates it private (mode 0700) and refuses one that another user owns
//! or that its group or others may write to.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::PluginInfo;

/// Where compiled components are kept, if anywhere.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

/// Whether a component came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded compiled code from the cache.
    Hit,
    /// Compiled now (and stored, when the cache is enabled).
    Compiled,
}

/// A cache directory that cannot be trusted or created.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The directory cannot be created or inspected.
    #[error("cannot use {} as the compile cache: {source}", dir.display())]
    Io {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Someone else could place compiled code there.
    #[error(
        "the compile cache {} is {why}; compiled code loaded from it runs unchecked, so it must \
         belong to this user and be writable by no one else (chmod 700 it, or use another \
         directory)",
        dir.display()
    )]
    Unsafe {
        /// The directory.
        dir: PathBuf,
        /// What is wrong with it.
        why: String,
    },
}

impl CompileCache {
    /// A cache in `dir`, created private if missing. Refuses a directory
    /// that another user owns or that its group or others may write to.
    pub fn open(engine: &Engine, dir: impl Into<PathBuf>) -> Result<Self, CacheError> {
        let dir = dir.into();
        check_private(&dir)?;
        Ok(Self::with_dir(engine, Some(dir)))
    }

    /// No cache: every plugin compiles on every load.
    pub fn disabled(engine: &Engine) -> Self {
        Self::with_dir(engine, None)
    }

    /// Where flow keeps compiled plugins when not told otherwise:
    /// `~/.cache/flow/compiled` on Linux (the platform's cache directory).
    /// Library users who pass it share the `flow` command's cache.
    pub fn default_dir() -> Option<PathBuf> {
        dirs::cache_dir().map(|dir| dir.join("flow").join("compiled"))
    }

    fn with_dir(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let digest = hasher.0.finalize();
        Self {
            dir,
            engine_key: hex(&digest[..8]),
        }
    }

    /// The cache directory, if caching is on.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Where compiled functions are shared between components (see
    /// `functions/`), if caching is on.
    pub(crate) fn functions_dir(&self) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.join("functions").join(&self.engine_key))
    }

    /// Returns the compiled component for `bytes`, whose SHA-256 is `digest`.
    pub(crate) fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
        digest: &str,
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let Some(dir) = &self.dir else {
            return Ok((Component::new(engine, bytes)?, CacheOutcome::Compiled));
        };
        let path = dir.join(format!("{digest}-{}.cwasm", self.engine_key));
        if path.exists() {
            // SAFETY: the file was written by `store` below from the output
            // of `Engine::precompile_component` for an engine with the same
            // compatibility key; the directory is private to flow (see the
            // module docs). wasmtime still checks the header and version.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(error) => tracing::warn!(
                    path = %path.display(),
                    "compiled plugin in the cache is unusable, compiling again: {error}"
                ),
            }
        }
        let compiled = engine.precompile_component(bytes)?;
        // SAFETY: `compiled` was produced just now by this engine.
        let component = unsafe { Component::deserialize(engine, &compiled)? };
        if let Err(error) = store(dir, &path, &compiled) {
            tracing::warn!(
                dir = %dir.display(),
                "cannot write the compile cache, plugins will compile on every run: {error}"
            );
        }
        Ok((component, CacheOutcome::Compiled))
    }
}

impl CompileCache {
    /// What `describe` returned for the plugin file whose listing is
    /// `listing` (see [`CompileCache::listing_path`]), if it was loaded
    /// before and has not changed since.
    pub(crate) fn listing(&self, listing: &Path) -> Option<PluginInfo> {
        let text = std::fs::read_to_string(listing).ok()?;
        let value: serde_json::Value = serde_json::from_str(&text).ok()?;
        let field = |name: &str| value.get(name)?.as_str().map(String::from);
        Some(PluginInfo {
            name: field("name")?,
            version: field("version")?,
            description: field("description")?,
        })
    }

    /// Remembers, in `listing`, what `describe` returned.
    pub(crate) fn remember(&self, listing: &Path, info: &PluginInfo) {
        let Some(dir) = &self.dir else {
            return;
        };
        let text = serde_json::json!({
            "name": info.name,
            "version": info.version,
            "description": info.description,
        })
        .to_string();
        if let Err(error) = store(dir, listing, text.as_bytes()) {
            tracing::debug!(dir = %dir.display(), "cannot write a plugin listing: {error}");
        }
    }

    /// The listing file of the plugin file at `path` as it is now: any
    /// change to the file, or another version of flow, gives another one.
    pub(crate) fn listing_path(&self, path: &Path) -> Option<PathBuf> {
        use std::os::unix::fs::MetadataExt;

        let dir = self.dir.as_ref()?;
        let meta = std::fs::metadata(path).ok()?;
        let path = std::fs::canonicalize(path).ok()?;
        let mut hasher = Sha256::new();
        // What makes a plugin usable (the world, the name rules) may change
        // between versions of flow.
        hasher.update(env!("CARGO_PKG_VERSION").as_bytes());
        hasher.update(path.as_os_str().as_encoded_bytes());
        for number in [
            meta.dev(),
            meta.ino(),
            meta.size(),
            meta.mtime() as u64,
            meta.mtime_nsec() as u64,
            meta.ctime() as u64,
            meta.ctime_nsec() as u64,
        ] {
            hasher.update(number.to_le_bytes());
        }
        let key = hex(&hasher.finalize()[..16]);
        Some(dir.join(format!("{key}-{}.listing", self.engine_key)))
    }
}

/// Creates `dir` private if missing, and checks that only this user (or
/// root) can write to it.
fn check_private(dir: &Path) -> Result<(), CacheError> {
    use std::os::unix::fs::MetadataExt;

    let io = |source| CacheError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    create_private(dir).map_err(io)?;
    let meta = std::fs::metadata(dir).map_err(io)?;
    let unsafe_because = |why: String| CacheError::Unsafe {
        dir: dir.to_path_buf(),
        why,
    };
    if !meta.is_dir() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "it is not a directory",
        )));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(unsafe_because(format!(
            "owned by another user (uid {})",
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(unsafe_because(format!(
            "writable by its group or by others (mode {mode:o})"
        )));
    }
    Ok(())
}

/// Creates `dir` (and its parents) private (mode 0700), if missing.
pub(super) fn create_private(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;

    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Writes `compiled` to `path` in `dir` by a rename, so that a reader never
/// sees half a file.
fn store(dir: &Path, path: &Path, compiled: &[u8]) -> std::io::Result<()> {
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(compiled)?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Lower-case hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Feeds `Hash` data into SHA-256, for a key that is stable across processes.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        unreachable!("only the SHA-256 digest is used")
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_new_cache_directory_is_private_and_a_shared_one_is_refused() {
        let engine = Engine::default();
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().join("a/b/compiled");
        CompileCache::open(&engine, &dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = CompileCache::open(&engine, &dir).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("writable by its group or by others (mode 777)"),
            "{error}"
        );
    }
}
