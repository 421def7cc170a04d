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
//! Entries live beside the compile cache, in `<dir>/functions/<engine
//! key>/`, in *packs*: each compilation that added functions writes them in
//! one file, with an index in front (see `pack.rs`), named by the time it
//! was written and written by a rename (several `flow` processes may share
//! the directory). A runtime reads the indexes of the packs there when it
//! first compiles, and a function's code when cranelift asks for it. One
//! file per compilation instead of one per function: a Python plugin
//! compiles some 13,000 functions, and as many files cost a first compile
//! seconds.
//!
//! Like the compiled components, entries are machine code, trusted because
//! the directory is private to flow. An entry cranelift cannot read (a
//! damaged one) is compiled again, and the newer pack wins; a pack whose
//! index is damaged is removed.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

mod pack;

use super::cache::create_private;

/// The store cranelift asks for compiled functions: the directory of the
/// compile cache a runtime last loaded a plugin with, or nothing.
#[derive(Debug, Default)]
pub(crate) struct FunctionCache {
    state: RwLock<State>,
    hits: AtomicU64,
    stored: AtomicU64,
}

/// Each key's pack (a position in [`State::packs`]) and place in it.
type Index = HashMap<Vec<u8>, (usize, pack::Span)>;

/// What the cache knows of its directory.
#[derive(Debug, Default)]
struct State {
    dir: Option<PathBuf>,
    /// Whether the packs in `dir` were read.
    read: bool,
    packs: Vec<Pack>,
    index: Index,
    /// Functions compiled since the last [`FunctionCache::flush`].
    pending: HashMap<Vec<u8>, Vec<u8>>,
}

impl State {
    /// Adds a pack whose entries replace those of earlier ones.
    fn add_pack(&mut self, path: PathBuf, index: Vec<(Vec<u8>, pack::Span)>) {
        let number = self.packs.len();
        self.packs.push(Pack {
            path,
            file: OnceLock::new(),
        });
        for (key, span) in index {
            self.index.insert(key, (number, span));
        }
    }
}

/// A pack in the directory. Its file is opened when a function is first
/// read from it, so that a cache of many packs does not hold as many files
/// open.
#[derive(Debug)]
struct Pack {
    path: PathBuf,
    file: OnceLock<Option<File>>,
}

impl Pack {
    fn read(&self, span: pack::Span) -> Option<Vec<u8>> {
        let file = self.file.get_or_init(|| {
            File::open(&self.path)
                .inspect_err(|error| {
                    tracing::debug!(path = %self.path.display(), "cannot open compiled functions: {error}");
                })
                .ok()
        });
        pack::read_value(file.as_ref()?, span)
            .inspect_err(|error| {
                tracing::debug!(path = %self.path.display(), "cannot read a compiled function: {error}");
            })
            .ok()
    }
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
        let mut state = self.state_mut();
        if state.dir != dir {
            *state = State {
                dir,
                ..State::default()
            };
        }
    }

    /// What the cache did so far.
    pub(crate) fn stats(&self) -> FunctionCacheStats {
        FunctionCacheStats {
            reused: self.hits.load(Ordering::Relaxed),
            stored: self.stored.load(Ordering::Relaxed),
        }
    }

    /// Writes the functions compiled since the last call, by this
    /// compilation and any running beside it, as one pack, and closes the
    /// packs' files until a compilation reads from them again (a runtime
    /// that lives long holds no file open between compilations). Called
    /// once a compilation ends.
    ///
    /// Functions that another process stored meanwhile, compiling the same
    /// plugin at the same time, are left out: its packs are read first.
    pub(crate) fn flush(&self) {
        let (dir, mut entries, known) = {
            let mut state = self.state_mut();
            for pack in &mut state.packs {
                pack.file = OnceLock::new();
            }
            let Some(dir) = state.dir.clone() else {
                return;
            };
            if state.pending.is_empty() {
                return;
            }
            let entries: Vec<(Vec<u8>, Vec<u8>)> = state.pending.drain().collect();
            let known: HashSet<PathBuf> =
                state.packs.iter().map(|pack| pack.path.clone()).collect();
            (dir, entries, known)
        };
        // Read and written without the lock, so that compilations beside
        // this one go on meanwhile.
        let newer: Vec<_> = list_packs(&dir)
            .into_iter()
            .filter(|path| !known.contains(path))
            .filter_map(|path| Some((read_pack(&path)?, path)))
            .collect();
        let present: HashSet<&[u8]> = newer
            .iter()
            .flat_map(|(index, _)| index.iter().map(|(key, _)| key.as_slice()))
            .collect();
        entries.retain(|(key, _)| !present.contains(key.as_slice()));
        let mut written = None;
        if !entries.is_empty() {
            match create_private(&dir).and_then(|()| pack::write(&dir, &entries)) {
                Ok((path, spans)) => {
                    self.stored
                        .fetch_add(entries.len() as u64, Ordering::Relaxed);
                    let keys = entries.into_iter().map(|(key, _)| key);
                    written = Some((keys.zip(spans).collect(), path));
                }
                Err(error) => {
                    tracing::debug!(dir = %dir.display(), "cannot store compiled functions: {error}");
                }
            }
        }
        let mut state = self.state_mut();
        // A directory not read yet shows the packs when it is; one given
        // up meanwhile (another compile cache) does not want them.
        if state.read && state.dir.as_ref() == Some(&dir) {
            for (index, path) in newer.into_iter().chain(written) {
                state.add_pack(path, index);
            }
        }
    }

    fn state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn state_mut(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the indexes of the packs in the directory, once.
    fn read_packs(&self) {
        if self.state().read {
            return;
        }
        let mut state = self.state_mut();
        if state.read {
            return;
        }
        state.read = true;
        if let Some(dir) = state.dir.clone() {
            for path in list_packs(&dir) {
                if let Some(index) = read_pack(&path) {
                    state.add_pack(path, index);
                }
            }
        }
    }
}

impl wasmtime::CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        self.read_packs();
        let state = self.state();
        let value = match state.pending.get(key) {
            Some(value) => value.clone(),
            None => {
                let (number, span) = state.index.get(key)?;
                state.packs[*number].read(*span)?
            }
        };
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(Cow::Owned(value))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let mut state = self.state_mut();
        if state.dir.is_none() {
            return false;
        }
        state.pending.insert(key.to_vec(), value);
        true
    }
}

/// The packs in `dir`, in the order they were written (a pack's name
/// begins with the time). Removes the one-file-per-function shards that
/// earlier versions of flow wrote.
fn list_packs(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() && name.len() == 2 && name.chars().all(|c| c.is_ascii_hexdigit()) {
            let _ = std::fs::remove_dir_all(&path);
        } else if kind.is_file() && name.ends_with(".pack") {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// The index of the pack at `path`. Removes the pack if it is damaged.
fn read_pack(path: &Path) -> Option<Vec<(Vec<u8>, pack::Span)>> {
    let read = File::open(path)
        .map_err(pack::PackError::from)
        .and_then(|file| pack::read_index(&file));
    match read {
        Ok(index) => return Some(index),
        Err(pack::PackError::Damaged) => {
            tracing::debug!(path = %path.display(), "removing a damaged pack of compiled functions");
            let _ = std::fs::remove_file(path);
        }
        Err(pack::PackError::OtherVersion) => {}
        Err(error) => {
            tracing::debug!(path = %path.display(), "cannot read compiled functions: {error}");
        }
    }
    None
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

    /// The packs in the cache's function directory.
    fn packs(cache: &CompileCache) -> Vec<PathBuf> {
        std::fs::read_dir(cache.functions_dir().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|x| x == "pack"))
            .collect()
    }

    #[tokio::test]
    async fn a_compilation_writes_one_pack_and_a_damaged_function_is_compiled_again() {
        let (runtime, cache, scratch, first, second) = two_echoes();
        runtime.load_plugin(&first, &cache).await.unwrap();
        let stored = runtime.function_cache_stats().stored;
        let [pack] = &packs(&cache)[..] else {
            panic!("one pack: {:?}", packs(&cache))
        };

        // Every function's code damaged, the index intact.
        let index = pack::read_index(&File::open(pack).unwrap()).unwrap();
        assert_eq!(index.len() as u64, stored);
        let mut bytes = std::fs::read(pack).unwrap();
        for (_, span) in &index {
            bytes[span.offset as usize..][..span.len as usize].fill(0xff);
        }
        std::fs::write(pack, bytes).unwrap();

        // Another runtime, as another process would, reads the damaged
        // code, and compiles and stores it again.
        let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
        let plugin = runtime.load_plugin(&second, &cache).await.unwrap();
        assert_eq!(plugin.info.name, "echo");
        let again = runtime.function_cache_stats().stored;
        assert!(again > stored / 2, "{again} of {stored}");
        assert_eq!(packs(&cache).len(), 2);
        let closed = (runtime.functions.state().packs.iter()).all(|pack| pack.file.get().is_none());
        assert!(closed, "no pack is held open between compilations");

        // A third finds the newer code first. It also removes a damaged
        // pack and the one-file-per-function entries of earlier versions,
        // and leaves a pack of another format alone.
        let functions = cache.functions_dir().unwrap();
        std::fs::write(functions.join("0123456789abcdef.pack"), "not a pack").unwrap();
        std::fs::write(functions.join("fedcba9876543210.pack"), b"flow-fn\x02").unwrap();
        std::fs::create_dir(functions.join("ab")).unwrap();
        std::fs::write(functions.join("ab").join("cdef"), "a function").unwrap();
        let third = scratch.path().join("third.wasm");
        std::fs::write(
            &third,
            with_custom_section(&std::fs::read(&second).unwrap()),
        )
        .unwrap();
        let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
        runtime.load_plugin(&third, &cache).await.unwrap();
        let stats = runtime.function_cache_stats();
        assert!(stats.reused > stored / 2, "{stats:?} after {stored}");
        assert!(stats.stored < stored / 2, "{stats:?} after {stored}");
        assert!(!functions.join("0123456789abcdef.pack").exists());
        assert!(!functions.join("ab").exists());
        assert!(functions.join("fedcba9876543210.pack").exists());
    }

    #[tokio::test]
    async fn functions_another_process_stored_meanwhile_are_not_stored_again() {
        let (runtime, cache, _scratch, first, second) = two_echoes();
        // Another runtime, as another process would, reads the directory
        // while it is empty; then the first stores the functions of `first`.
        let other = Runtime::new(RuntimeConfig::default()).unwrap();
        other.functions.use_dir(cache.functions_dir());
        other.functions.read_packs();
        runtime.load_plugin(&first, &cache).await.unwrap();
        let stored = runtime.function_cache_stats().stored;

        // The other compiles the same code, knowing nothing of them, and
        // stores only what they lack.
        other.load_plugin(&second, &cache).await.unwrap();
        let also = other.function_cache_stats().stored;
        assert!(also < stored / 2, "{also} after {stored}");
        assert_eq!(other.functions.state().packs.len(), packs(&cache).len());
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
