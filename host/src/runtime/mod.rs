//! WebAssembly: the engine, the plugin registry, and running one attempt.
//!
//! This layer knows components, fuel and traps; it knows nothing of
//! workflows. [`Runtime`] holds the wasmtime engine and linker;
//! [`Runtime::load_plugins`] turns a directory of `.wasm` files into a
//! [`PluginRegistry`]; [`Runtime::run`] runs one attempt of one action under
//! [`Limits`] and reports what happened as an [`AttemptReport`].

mod attempt;
mod bindings;
mod cache;
mod error;
mod limits;
mod registry;
mod sandbox;
mod ticker;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine};

pub use attempt::{AttemptError, AttemptReport, Invocation};
pub use bindings::{LogLevel, PluginInfo};
pub use cache::{CacheOutcome, CompileCache};
pub use error::{PluginError, RegistryError, RuntimeError};
pub use limits::{DEFAULT_FUEL, Limits, MemoryLimitExceeded};
pub use registry::{Plugin, PluginRegistry};
pub use sandbox::{LogRecord, MAX_LOG_MESSAGE};

use sandbox::HostState;
use ticker::EpochTicker;

/// How the WebAssembly engine is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Count fuel, so that [`Limits::fuel`] can bound an attempt. Costs some
    /// speed on CPU-bound plugins; compiled code differs with and without.
    pub fuel_metering: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            fuel_metering: true,
        }
    }
}

/// The wasmtime engine, the linker with the host's imports, and the clock
/// that interrupts running guests.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    config: RuntimeConfig,
    _ticker: EpochTicker,
}

impl Runtime {
    /// Sets up the engine.
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .consume_fuel(config.fuel_metering)
            .epoch_interruption(true);
        let engine = Engine::new(&wasm).map_err(RuntimeError::engine)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(RuntimeError::engine)?;
        bindings::Action::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| {
            state
        })
        .map_err(RuntimeError::engine)?;

        let ticker = EpochTicker::start(engine.clone());
        Ok(Self {
            engine,
            linker,
            config,
            _ticker: ticker,
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// How the engine was set up.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
