//! Errors of the WebAssembly layer.

use std::path::PathBuf;

/// An error of wasmtime's, kept as the cause of ours.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The engine could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the WebAssembly engine: {message}")]
pub struct RuntimeError {
    message: String,
    #[source]
    source: Cause,
}

impl RuntimeError {
    pub(crate) fn engine(error: wasmtime::Error) -> Self {
        Self {
            message: format!("{error:#}"),
            source: error.into_boxed_dyn_error(),
        }
    }
}

/// A `.wasm` file that cannot be used as a plugin.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The file could not be read.
    #[error("{}: cannot read the file: {error}", path.display())]
    Read {
        /// The plugin file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        error: std::io::Error,
    },
    /// The file is not WebAssembly at all.
    #[error("{}: not a WebAssembly file; remove it from the plugins directory", path.display())]
    NotWasm {
        /// The plugin file.
        path: PathBuf,
    },
    /// The file is a core module, not a component.
    #[error(
        "{}: a core WebAssembly module, not a component; build Rust plugins for the \
         wasm32-wasip2 target (cargo build --target wasm32-wasip2), or wrap the module \
         with `wasm-tools component new`",
        path.display()
    )]
    CoreModule {
        /// The plugin file.
        path: PathBuf,
    },
    /// wasmtime could not compile the component.
    #[error("{}: cannot compile the component: {message}", path.display())]
    Compile {
        /// The plugin file.
        path: PathBuf,
        /// wasmtime's explanation, with its causes.
        message: String,
        /// wasmtime's error.
        #[source]
        source: Cause,
    },
    /// The component imports an interface the host does not link.
    #[error(
        "{}: imports `{interface}`, which the host does not provide (it links wasi:cli, \
         wasi:io, wasi:clocks, wasi:random, wasi:filesystem, wasi:sockets, wasi:http, \
         flow:plugin/host and flow:plugin/dependencies); build the plugin without it",
        path.display()
    )]
    UnknownImport {
        /// The plugin file.
        path: PathBuf,
        /// The interface, as the component names it.
        interface: String,
        /// wasmtime's error.
        #[source]
        source: Cause,
    },
    /// The component does not implement the `flow:plugin/action` world.
    #[error(
        "{}: not a flow action: {message}; a plugin must implement the world `action` \
         of the WIT package flow:plugin (wit/plugin.wit)",
        path.display()
    )]
    WrongWorld {
        /// The plugin file.
        path: PathBuf,
        /// What does not match.
        message: String,
        /// wasmtime's error.
        #[source]
        source: Cause,
    },
    /// The plugin's `describe` failed: it trapped, ran out of its bounds,
    /// or the component could not be instantiated.
    #[error("{}: `describe` failed: {source}", path.display())]
    Describe {
        /// The plugin file.
        path: PathBuf,
        /// Why, as for an attempt.
        #[source]
        source: super::AttemptError,
    },
    /// The plugin's `describe` returned a name flow cannot use.
    #[error("{}: `describe` failed: {why}", path.display())]
    BadName {
        /// The plugin file.
        path: PathBuf,
        /// What is wrong with the name.
        why: String,
    },
    /// Two files claim the same plugin name.
    #[error(
        "{} and {} are both called `{name}`; remove or rename one of them",
        first.display(),
        second.display()
    )]
    Duplicate {
        /// The plugin name.
        name: String,
        /// The first file (in name order).
        first: PathBuf,
        /// The second file.
        second: PathBuf,
    },
    /// A native action's name is already a plugin's or another native
    /// action's.
    #[error("cannot add the native action `{name}`: the name is taken by {by}; rename one of them")]
    NameTaken {
        /// The name.
        name: String,
        /// What has it.
        by: String,
    },
    /// A native action's `describe` returned a name flow cannot use.
    #[error("cannot add a native action: {why}")]
    BadNativeName {
        /// What is wrong with the name.
        why: String,
    },
}

/// A plugins directory that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The directory does not exist or cannot be listed.
    #[error("cannot read the plugins directory {}: {error}", dir.display())]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        #[source]
        error: std::io::Error,
    },
    /// Some plugins are unusable.
    #[error("{}", plugins_message(dirs, errors))]
    Plugins {
        /// The directories of the search path.
        dirs: Vec<PathBuf>,
        /// One error per unusable file.
        errors: Vec<PluginError>,
    },
}

fn plugins_message(dirs: &[PathBuf], errors: &[PluginError]) -> String {
    let dirs: Vec<String> = dirs.iter().map(|dir| dir.display().to_string()).collect();
    let mut message = format!(
        "the plugins {} {} {} {} unusable plugin{}:",
        if dirs.len() == 1 {
            "directory"
        } else {
            "directories"
        },
        dirs.join(", "),
        if dirs.len() == 1 { "has" } else { "have" },
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    for error in errors {
        message.push_str("\n  ");
        message.push_str(&error.to_string());
    }
    message
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;

    #[test]
    fn wasmtime_errors_stay_the_cause() {
        let error = RuntimeError::engine(wasmtime::format_err!("no pool for you"));
        assert_eq!(error.source().unwrap().to_string(), "no pool for you");
        let error = PluginError::Describe {
            path: "x.wasm".into(),
            source: super::super::AttemptError::Exited { code: 1 },
        };
        assert!(error.source().unwrap().is::<super::super::AttemptError>());
    }
}
