//! Compiled functions shared between components.
//!
//! Components built by one toolchain carry much of the same code: every
//! Python plugin the same CPython, every JavaScript plugin the same
//! JavaScript engine, every Rust plugin parts of the same standard library.
//! Cranelift's incremental cache keys each function by its content and the
//! compiler's settings, so a function compiled for one component serves
//! every later one that contains it: the first Python plugin compiles the
//! interpreter, the next only what is its own.
//!
//! Entries live beside the compile cache, in
//! `<dir>/functions/<engine key>/<2 hex digits>/<62 hex digits>`, one file
//! per function, written to a temporary name and renamed (several `flow`
//! processes may share the directory). Like the compiled components they
//! are machine code, trusted because the directory is private to flow. An
//! entry cranelift cannot read (another version's, a damaged one) is
//! compiled again and replaced.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use super::cache::{hex, store};

/// The store cranelift asks for compiled functions: the directory of the
/// compile cache a runtime last loaded a plugin with, or nothing.
#[derive(Debug, Default)]
pub(crate) struct FunctionCache {
    dir: RwLock<Option<PathBuf>>,
    hits: AtomicU64,
    stored: AtomicU64,
}

/// Functions found in the cache and functions compiled and stored, since
/// a runtime started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FunctionCacheStats {
    /// Compiled functions read from the cache (one that cranelift finds
    /// unusable is compiled again, and counted in `stored` too). Also counts
    /// functions that occur more than once in one component.
    pub reused: u64,
    /// Functions compiled and stored for later components.
    pub stored: u64,
}

impl FunctionCache {
    /// Keeps functions in `dir` from now on; `None` keeps none.
    pub(crate) fn use_dir(&self, dir: Option<PathBuf>) {
        *self.dir.write().unwrap_or_else(|e| e.into_inner()) = dir;
    }

    /// What the cache did so far.
    pub(crate) fn stats(&self) -> FunctionCacheStats {
        FunctionCacheStats {
            reused: self.hits.load(Ordering::Relaxed),
            stored: self.stored.load(Ordering::Relaxed),
        }
    }

    fn path(&self, key: &[u8]) -> Option<PathBuf> {
        let dir = self.dir.read().unwrap_or_else(|e| e.into_inner());
        let name = hex(key);
        let (shard, rest) = name.split_at(2.min(name.len()));
        Some(dir.as_ref()?.join(shard).join(rest))
    }
}

impl wasmtime::CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        let bytes = std::fs::read(self.path(key)?).ok()?;
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(Cow::Owned(bytes))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let Some(path) = self.path(key) else {
            return false;
        };
        match write(&path, &value) {
            Ok(()) => {
                self.stored.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(error) => {
                tracing::debug!(path = %path.display(), "cannot store a compiled function: {error}");
                false
            }
        }
    }
}

/// Writes `bytes` to `path`, creating its directory.
fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;

    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    store(dir, path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{CompileCache, Runtime, RuntimeConfig};

    /// `bytes` with a custom section appended: another component (another
    /// digest) with the very same code.
    fn with_custom_section(bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        // Section 0 (custom), 2 bytes: a name of 1 byte, "x".
        out.extend_from_slice(&[0, 2, 1, b'x']);
        out
    }

    /// A runtime, a compile cache in a scratch directory, and two plugin
    /// files there with the same code: `echo` and `echo` with a custom
    /// section.
    fn two_echoes() -> (Runtime, CompileCache, tempfile::TempDir, PathBuf, PathBuf) {
        let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let cache = CompileCache::open(runtime.engine(), scratch.path().join("cache")).unwrap();
        let echo = std::fs::read(flow_test_artifacts::plugins_dir().join("echo.wasm")).unwrap();
        let first = scratch.path().join("first.wasm");
        let second = scratch.path().join("second.wasm");
        std::fs::write(&first, &echo).unwrap();
        std::fs::write(&second, with_custom_section(&echo)).unwrap();
        (runtime, cache, scratch, first, second)
    }

    #[tokio::test]
    async fn a_component_reuses_the_functions_another_compiled_and_runs() {
        let (runtime, cache, _scratch, first, second) = two_echoes();
        runtime.load_plugin(&first, &cache).await.unwrap();
        let compiled = runtime.function_cache_stats();
        assert!(compiled.stored > 100, "{compiled:?}");

        // The second component is compiled (its digest is new) from the
        // first one's functions alone; `describe` runs that code.
        let plugin = runtime.load_plugin(&second, &cache).await.unwrap();
        assert_eq!(plugin.info.name, "echo");
        let after = runtime.function_cache_stats();
        // Most of it: some functions (about one in six here) get another
        // key from one compilation to the next, and compile again.
        let (reused, stored) = (
            after.reused - compiled.reused,
            after.stored - compiled.stored,
        );
        assert!(reused > compiled.stored / 2, "{compiled:?} then {after:?}");
        assert!(stored < compiled.stored / 2, "{compiled:?} then {after:?}");
    }

    #[tokio::test]
    async fn a_damaged_entry_is_compiled_again_and_replaced() {
        let (runtime, cache, _scratch, first, second) = two_echoes();
        runtime.load_plugin(&first, &cache).await.unwrap();
        let stored = runtime.function_cache_stats().stored;

        let entries = || {
            let shards = std::fs::read_dir(cache.functions_dir().unwrap()).unwrap();
            shards
                .flat_map(|shard| std::fs::read_dir(shard.unwrap().path()).unwrap())
                .map(|entry| entry.unwrap().path())
                .collect::<Vec<_>>()
        };
        for entry in entries() {
            std::fs::write(entry, b"not a function").unwrap();
        }

        let plugin = runtime.load_plugin(&second, &cache).await.unwrap();
        assert_eq!(plugin.info.name, "echo");
        // What was read was found unusable, compiled and stored again.
        let again = runtime.function_cache_stats().stored - stored;
        assert!(again > stored / 2, "{again} of {stored}");
        let damaged = entries()
            .into_iter()
            .filter(|entry| std::fs::read(entry).unwrap() == b"not a function")
            .count();
        assert!(damaged < entries().len() / 2, "{damaged} still damaged");
    }

    #[tokio::test]
    async fn without_a_compile_cache_nothing_is_kept() {
        let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
        let cache = CompileCache::disabled(runtime.engine());
        runtime
            .load_plugin(
                &flow_test_artifacts::plugins_dir().join("echo.wasm"),
                &cache,
            )
            .await
            .unwrap();
        assert_eq!(
            runtime.function_cache_stats(),
            FunctionCacheStats::default()
        );
    }
}
