//! The plugins directory: every `*.wasm` file, compiled (or loaded from the
//! compile cache), checked against the `action` world and indexed by the
//! name its `describe` returns.
//!
//! A file loaded before and unchanged since is known by name from the
//! cache's listing; when the caller does not want it (a workflow that does
//! not use it), it is listed without being read, compiled or instantiated.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use super::bindings::ActionPre;
use super::cache::{CacheOutcome, CompileCache, hex};
use super::error::{PluginError, RegistryError};
use super::native::{self, Action};
use super::sandbox::HostState;
use super::{PluginInfo, Runtime};

/// A loaded plugin, ready to instantiate.
pub struct Plugin {
    /// What `describe` returned.
    pub info: PluginInfo,
    /// The `.wasm` file; empty for a native action.
    pub path: PathBuf,
    /// SHA-256 of the file, hex (for a native action: `native:` and a hash
    /// of its name and version).
    pub digest: String,
    /// Size of the file in bytes.
    pub size: u64,
    /// Whether compiled code came from the cache.
    pub cache: CacheOutcome,
    /// Time to compile or load the component.
    pub load_time: Duration,
    /// The interfaces the component imports (`wasi:http/outgoing-handler@0.2.6`, ...).
    pub imports: Vec<String>,
    pub(crate) implementation: Implementation,
}

/// What runs a plugin's attempts.
pub(crate) enum Implementation {
    /// A WebAssembly component, linked and ready to instantiate.
    Wasm(ActionPre<HostState>),
    /// An action written in Rust (see [`Action`]).
    Native(Arc<dyn Action>),
}

impl Plugin {
    /// Whether this is a native action (see [`Action`]) rather than a
    /// WebAssembly component.
    pub fn is_native(&self) -> bool {
        matches!(self.implementation, Implementation::Native(_))
    }

    /// Whether the plugin asks for its dependencies' outputs one by one
    /// (it imports `flow:plugin/dependencies`) instead of taking them all
    /// in its request.
    pub fn takes_outputs_on_demand(&self) -> bool {
        super::dependencies::on_demand(&self.imports)
    }

    /// What beyond JSON in and out the plugin may try to reach, by the
    /// interfaces it imports: `http`, `filesystem`, `environment`,
    /// `sockets`. A node reaches only what its grants allow.
    pub fn capabilities(&self) -> Vec<Capability> {
        let mut found: Vec<Capability> = self
            .imports
            .iter()
            .filter_map(|name| Capability::of_import(name))
            .collect();
        found.sort();
        found.dedup();
        found
    }
}

/// A kind of access a plugin's imports ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// Outbound HTTP (`wasi:http`): reaches what the node's `http` grants.
    Http,
    /// Files (`wasi:filesystem`): the directories of the node's `files`.
    Filesystem,
    /// Environment variables (`wasi:cli/environment`): the node's `env`
    /// and `secrets`.
    Environment,
    /// Raw sockets (`wasi:sockets`): linked, but every socket is refused;
    /// network access goes through `wasi:http` and its grants.
    Sockets,
}

impl Capability {
    /// The capability an imported interface asks for, if any.
    pub fn of_import(name: &str) -> Option<Self> {
        if name.starts_with("wasi:http/") {
            Some(Capability::Http)
        } else if name.starts_with("wasi:filesystem/") {
            Some(Capability::Filesystem)
        } else if name.starts_with("wasi:cli/environment") {
            Some(Capability::Environment)
        } else if name.starts_with("wasi:sockets/") {
            Some(Capability::Sockets)
        } else {
            None
        }
    }

    /// Its name: `http`, `filesystem`, `environment`, `sockets`.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Http => "http",
            Capability::Filesystem => "filesystem",
            Capability::Environment => "environment",
            Capability::Sockets => "sockets",
        }
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.info.name)
            .field("path", &self.path)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

/// The plugins of a search path of directories, by name.
#[derive(Debug, Default)]
pub struct PluginRegistry {
    dirs: Vec<PathBuf>,
    plugins: BTreeMap<String, Arc<Plugin>>,
    /// Plugins known by name but not loaded (not wanted), with their files.
    listed: BTreeMap<String, PathBuf>,
    /// Files of a later directory hidden by a plugin of the same name in an
    /// earlier one.
    shadowed: Vec<Shadowed>,
}

/// A plugin file hidden by one of the same name earlier in the search path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shadowed {
    /// The plugin's name.
    pub name: String,
    /// The file used.
    pub used: PathBuf,
    /// The file hidden.
    pub hidden: PathBuf,
}

impl std::fmt::Display for Shadowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "plugin `{}` of {} is hidden by {}, which comes first in the search path",
            self.name,
            self.hidden.display(),
            self.used.display()
        )
    }
}

impl PluginRegistry {
    /// The directories scanned, first match first.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The loaded plugin called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.plugins.get(name)
    }

    /// The file of a plugin known by name but not loaded.
    pub fn listed(&self, name: &str) -> Option<&Path> {
        self.listed.get(name).map(PathBuf::as_path)
    }

    /// The names of every plugin found, loaded or only listed, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> + Clone {
        let mut names: Vec<&str> = self
            .plugins
            .keys()
            .chain(self.listed.keys())
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        names.into_iter()
    }

    /// The loaded plugins, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Plugin>> {
        self.plugins.values()
    }

    /// Number of loaded plugins.
    pub fn len(&self) -> usize {
        self.plugins.len()
    }

    /// True when no plugin is loaded.
    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    /// Plugin files hidden by others of the same name in an earlier
    /// directory of the search path.
    pub fn shadowed(&self) -> &[Shadowed] {
        &self.shadowed
    }

    /// Adds a native action (see [`Action`]) under the name its
    /// `describe` returns. Plugins and native actions share one set of
    /// names: a name taken by a plugin file of the search path (loaded or
    /// only listed) or by another native action is refused.
    pub fn add_native(&mut self, action: Arc<dyn Action>) -> Result<(), PluginError> {
        let plugin = native::plugin(action);
        let name = plugin.info.name.clone();
        check_name(&name).map_err(|why| PluginError::BadNativeName { why })?;
        if let Some(taken) = self.plugins.get(&name).filter(|plugin| plugin.is_native()) {
            return Err(PluginError::NameTaken {
                name,
                by: format!(
                    "the native action {} {}",
                    taken.info.name, taken.info.version
                ),
            });
        }
        if let Some(file) = self.claimed(&name) {
            return Err(PluginError::NameTaken {
                name,
                by: format!("the plugin {}", file.display()),
            });
        }
        self.plugins.insert(name, Arc::new(plugin));
        Ok(())
    }

    /// The file that already claims `name`, if any.
    fn claimed(&self, name: &str) -> Option<&Path> {
        self.plugins
            .get(name)
            .map(|plugin| plugin.path.as_path())
            .or_else(|| self.listed(name))
    }

    /// Adds a plugin found in `path`, the `dir`th directory of the search
    /// path; two of one name in one directory are an error, and a later
    /// directory's is hidden by an earlier one's.
    fn add(
        &mut self,
        name: &str,
        path: PathBuf,
        dir: usize,
        origins: &mut BTreeMap<String, usize>,
        plugin: Option<Plugin>,
    ) -> Result<(), PluginError> {
        if let Some(first) = self.claimed(name) {
            let first = first.to_path_buf();
            if origins.get(name) == Some(&dir) {
                return Err(PluginError::Duplicate {
                    name: name.to_string(),
                    first,
                    second: path,
                });
            }
            self.shadowed.push(Shadowed {
                name: name.to_string(),
                used: first,
                hidden: path,
            });
            return Ok(());
        }
        origins.insert(name.to_string(), dir);
        match plugin {
            Some(plugin) => {
                tracing::debug!(
                    plugin = %name,
                    path = %plugin.path.display(),
                    cache = ?plugin.cache,
                    load_ms = plugin.load_time.as_secs_f64() * 1e3,
                    "loaded plugin"
                );
                self.plugins.insert(name.to_string(), Arc::new(plugin));
            }
            None => {
                tracing::debug!(plugin = %name, path = %path.display(), "listed plugin");
                self.listed.insert(name.to_string(), path);
            }
        }
        Ok(())
    }
}

/// Plugin files loaded at once: compiling is itself parallel, but loading
/// from the cache and `describe` are not, and each holds an instance.
fn load_parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

impl Runtime {
    /// Loads every plugin of the search path `dirs`; fails if any file is
    /// unusable.
    pub async fn load_plugins(
        &self,
        dirs: &[impl AsRef<Path>],
        cache: &CompileCache,
    ) -> Result<PluginRegistry, RegistryError> {
        self.load_plugins_for(dirs, cache, &|_| true).await
    }

    /// Loads the plugins of the search path `dirs` whose names `wanted`
    /// accepts; the others that loaded fine before and have not changed
    /// since are only listed by name (see the module docs). Fails if any
    /// file it reads is unusable, or if two files of one directory claim
    /// one name.
    pub async fn load_plugins_for(
        &self,
        dirs: &[impl AsRef<Path>],
        cache: &CompileCache,
        wanted: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<PluginRegistry, RegistryError> {
        let (registry, errors) = self.scan_plugins_for(dirs, cache, wanted).await?;
        if errors.is_empty() {
            Ok(registry)
        } else {
            Err(RegistryError::Plugins {
                dirs: registry.dirs,
                errors,
            })
        }
    }

    /// Loads what can be loaded from the search path `dirs`, and says what
    /// could not.
    pub async fn scan_plugins(
        &self,
        dirs: &[impl AsRef<Path>],
        cache: &CompileCache,
    ) -> Result<(PluginRegistry, Vec<PluginError>), RegistryError> {
        self.scan_plugins_for(dirs, cache, &|_| true).await
    }

    /// Loads what can be loaded from the search path `dirs` and is
    /// `wanted`, lists the rest, and says what could not be loaded.
    /// Several files load at once; the outcome is as if they loaded one by
    /// one, in directory order and then file name order.
    pub async fn scan_plugins_for(
        &self,
        dirs: &[impl AsRef<Path>],
        cache: &CompileCache,
        wanted: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<(PluginRegistry, Vec<PluginError>), RegistryError> {
        use futures_util::StreamExt;

        let mut files: Vec<(usize, PathBuf)> = Vec::new();
        for (index, dir) in dirs.iter().enumerate() {
            for path in wasm_files(dir.as_ref())? {
                files.push((index, path));
            }
        }
        // What the cache says of each file, and whether it must be read.
        let plans: Vec<(usize, PathBuf, Option<PathBuf>, Option<PluginInfo>)> = files
            .into_iter()
            .map(|(dir, path)| {
                let listing = cache.listing_path(&path);
                let listed = listing.as_deref().and_then(|l| cache.listing(l));
                (dir, path, listing, listed)
            })
            .collect();
        // Made before they are streamed: a closure in the stream's type
        // would keep the future from being `Send` for every lifetime
        // (which a server's handlers need).
        let pending: Vec<_> = plans
            .iter()
            .map(|(_, path, _, listed)| {
                // A file the cache knows by name is read only if wanted.
                let needed = listed.as_ref().is_none_or(|info| wanted(&info.name));
                async move {
                    match needed {
                        true => Some(self.load_plugin(path, cache).await),
                        false => None,
                    }
                }
            })
            .collect();
        let loads = futures_util::stream::iter(pending)
            .buffered(load_parallelism())
            .collect::<Vec<_>>()
            .await;

        let mut registry = PluginRegistry {
            dirs: dirs.iter().map(|dir| dir.as_ref().to_path_buf()).collect(),
            ..PluginRegistry::default()
        };
        let mut errors = Vec::new();
        let mut origins = BTreeMap::new();
        for ((dir, path, listing, listed), loaded) in plans.into_iter().zip(loads) {
            let (name, plugin) = match loaded {
                None => match listed {
                    Some(info) => (info.name, None),
                    None => continue,
                },
                Some(Err(error)) => {
                    errors.push(error);
                    continue;
                }
                Some(Ok(plugin)) => {
                    // Remembered only if the file did not change while it
                    // loaded.
                    if let Some(listing) = listing
                        && !listed.as_ref().is_some_and(|info| same(info, &plugin.info))
                        && cache.listing_path(&path).as_ref() == Some(&listing)
                    {
                        cache.remember(&listing, &plugin.info);
                    }
                    (plugin.info.name.clone(), Some(plugin))
                }
            };
            if let Err(error) = registry.add(&name, path, dir, &mut origins, plugin) {
                errors.push(error);
            }
        }
        Ok((registry, errors))
    }

    /// Loads one `.wasm` file.
    pub async fn load_plugin(
        &self,
        path: &Path,
        cache: &CompileCache,
    ) -> Result<Plugin, PluginError> {
        let started = Instant::now();
        let bytes = std::fs::read(path).map_err(|error| PluginError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        check_header(path, &bytes)?;
        let digest = hex(&Sha256::digest(&bytes));
        let size = bytes.len() as u64;
        // Compiling takes milliseconds to seconds of CPU: keep it off the
        // async workers.
        self.functions.use_dir(cache.functions_dir());
        let (engine, cache, key) = (self.engine.clone(), cache.clone(), digest.clone());
        let functions = self.functions.clone();
        let compiled = tokio::task::spawn_blocking(move || {
            let compiled = cache.load(&engine, &bytes, &key);
            functions.flush();
            compiled
        })
        .await
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()));
        let (component, outcome) = compiled.map_err(|error| PluginError::Compile {
            path: path.to_path_buf(),
            message: format!("{error:#}"),
            source: error.into_boxed_dyn_error(),
        })?;
        let pre = self.prepare(&component).map_err(|error| {
            let message = format!("{error:#}");
            match unknown_import(&message) {
                Some(interface) => PluginError::UnknownImport {
                    path: path.to_path_buf(),
                    interface,
                    source: error.into_boxed_dyn_error(),
                },
                None => PluginError::WrongWorld {
                    path: path.to_path_buf(),
                    message,
                    source: error.into_boxed_dyn_error(),
                },
            }
        })?;
        let load_time = started.elapsed();
        let imports = component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let info = self
            .describe_plugin(&pre, &self.config.describe_limits)
            .await
            .map_err(|source| PluginError::Describe {
                path: path.to_path_buf(),
                source,
            })?;
        check_name(&info.name).map_err(|why| PluginError::BadName {
            path: path.to_path_buf(),
            why,
        })?;
        Ok(Plugin {
            info,
            path: path.to_path_buf(),
            digest,
            size,
            cache: outcome,
            load_time,
            imports,
            implementation: Implementation::Wasm(pre),
        })
    }

    /// Links the component and checks its exports.
    fn prepare(&self, component: &Component) -> wasmtime::Result<ActionPre<HostState>> {
        ActionPre::new(self.linker.instantiate_pre(component)?)
    }
}

/// The interface a linking error says the host lacks, when that is the
/// error: wasmtime writes "component imports instance `NAME`, but a
/// matching implementation was not found in the linker".
fn unknown_import(message: &str) -> Option<String> {
    let rest = message.split("component imports instance `").nth(1)?;
    let (name, rest) = rest.split_once('`')?;
    // The flow:plugin world's own imports are the host's: a mismatch there
    // is a plugin of another version of the interface, not a missing one.
    (rest.contains("not found in the linker") && !name.starts_with("flow:plugin/"))
        .then(|| name.to_string())
}

/// The `.wasm` files of `dir`, sorted by name.
fn wasm_files(dir: &Path) -> Result<Vec<PathBuf>, RegistryError> {
    let dir_error = |error| RegistryError::Dir {
        dir: dir.to_path_buf(),
        error,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(dir_error)? {
        let path = entry.map_err(dir_error)?.path();
        if path.extension().is_some_and(|ext| ext == "wasm") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Whether two `describe` results are the same.
fn same(a: &PluginInfo, b: &PluginInfo) -> bool {
    (&a.name, &a.version, &a.description) == (&b.name, &b.version, &b.description)
}

/// Tells a component from a core module or a file that is not WebAssembly.
fn check_header(path: &Path, bytes: &[u8]) -> Result<(), PluginError> {
    let path = path.to_path_buf();
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(PluginError::NotWasm { path });
    }
    // Bytes 4..8: version (2 bytes) and layer (2 bytes); layer 1 is a component.
    match bytes[6..8] {
        [1, 0] => Ok(()),
        _ => Err(PluginError::CoreModule { path }),
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "it returned the name `{name}`; a plugin name uses ASCII letters, digits, `-` and `_`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        let path = Path::new("x.wasm");
        assert!(matches!(
            check_header(path, b"hello world"),
            Err(PluginError::NotWasm { .. })
        ));
        assert!(matches!(
            check_header(path, b"\0asm\x01\0\0\0"),
            Err(PluginError::CoreModule { .. })
        ));
        assert!(check_header(path, b"\0asm\x0d\0\x01\0").is_ok());
    }

    #[test]
    fn names() {
        assert!(check_name("json-2_x").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("-a").is_err());
    }
}
