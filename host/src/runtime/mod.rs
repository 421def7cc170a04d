//! WebAssembly: the engine, the plugin registry, and running one attempt.
//!
//! This layer knows components, fuel and traps; it knows nothing of
//! workflows. [`Runtime`] holds the wasmtime engine and linker;
//! [`Runtime::load_plugins`] turns a directory of `.wasm` files into a
//! [`PluginRegistry`]; [`Runtime::run`] runs one attempt of one action under
//! [`Limits`] and reports what happened as an [`AttemptReport`].

mod access;
mod attempt;
mod bindings;
mod cache;
mod dependencies;
mod error;
mod functions;
mod host_memory;
mod limits;
mod native;
mod registry;
mod sandbox;
mod ticker;

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine};

pub use access::{
    Access, FileGrant, Grants, HttpGrant, REDACTED, Redactor, SECRET_ENV_PREFIX, SecretMode,
    Secrets, SecretsError, valid_secret_name,
};
pub use attempt::{AttemptError, AttemptReport, Invocation};
pub use bindings::{ActionError, LogLevel, PluginInfo, RunContext};
pub use cache::{CacheError, CacheOutcome, CompileCache};
pub use error::{Cause, PluginError, RegistryError, RuntimeError};
pub use functions::FunctionCacheStats;
pub use host_memory::return_large_buffers;
pub use limits::{DEFAULT_FUEL, DEFAULT_MAX_OUTPUT, Limits, MemoryLimitExceeded};
pub use native::{Action, ActionContext};
pub use registry::{Capability, Plugin, PluginRegistry, Shadowed};
pub use sandbox::{LogRecord, MAX_LOG_MESSAGE};

use functions::FunctionCache;
use sandbox::HostState;
use ticker::EpochTicker;

/// How the WebAssembly engine is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Count fuel, so that [`Limits::fuel`] can bound an attempt. Costs some
    /// speed on CPU-bound plugins; compiled code differs with and without.
    pub fuel_metering: bool,
    /// Instances that may exist at once: at least the number of attempts
    /// that run at once. Instances come from a pool of this many
    /// preallocated slots, so instantiating one costs microseconds (and
    /// large Python or JavaScript components map their initial memory
    /// copy-on-write); `0` allocates each instance on demand instead.
    pub max_instances: u32,
    /// The bounds of a plugin's `describe` call when it is loaded.
    pub describe_limits: Limits,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            fuel_metering: true,
            max_instances: 64,
            describe_limits: Limits::describe(),
        }
    }
}

impl RuntimeConfig {
    /// A configuration for running at most `workers` attempts at once.
    pub fn for_workers(workers: usize) -> Self {
        // Twice the workers, and at least 32: freed slots are returned to
        // the kernel in batches, and the pool needs spare slots meanwhile.
        let workers = u32::try_from(workers).unwrap_or(u32::MAX / 2);
        Self {
            max_instances: workers.saturating_mul(2).max(32),
            ..Self::default()
        }
    }
}

/// The wasmtime engine, the linker with the host's imports, and the clock
/// that interrupts running guests.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    config: RuntimeConfig,
    functions: Arc<FunctionCache>,
    _ticker: EpochTicker,
}

impl Runtime {
    /// Sets up the engine.
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .consume_fuel(config.fuel_metering)
            .epoch_interruption(true);
        if config.max_instances > 0 {
            wasm.allocation_strategy(pool(config.max_instances));
        }
        // Functions compiled for one component serve the next that has
        // them, once plugins load with a compile cache (see `functions`).
        let functions = Arc::new(FunctionCache::default());
        wasm.enable_incremental_compilation(functions.clone())
            .map_err(RuntimeError::engine)?;

        let engine = Engine::new(&wasm).map_err(RuntimeError::engine)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(RuntimeError::engine)?;
        // Every plugin may import `wasi:http`; what a request reaches is
        // decided per node, in `access` (nothing without a grant).
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(RuntimeError::engine)?;
        bindings::Action::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| {
            state
        })
        .map_err(RuntimeError::engine)?;
        dependencies::add_to_linker(&mut linker).map_err(RuntimeError::engine)?;

        let ticker = EpochTicker::start(engine.clone());
        Ok(Self {
            engine,
            linker,
            config,
            functions,
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

    /// How many compiled functions plugins loaded so far reused from the
    /// compile cache, and how many they added to it.
    pub fn function_cache_stats(&self) -> FunctionCacheStats {
        self.functions.stats()
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The pooling allocator, sized for `instances` component instances of up
/// to the size of a Python or JavaScript component (tens of core instances,
/// a few memories and tables each).
fn pool(instances: u32) -> wasmtime::InstanceAllocationStrategy {
    let mut pool = wasmtime::PoolingAllocationConfig::default();
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .total_memories(instances.saturating_mul(MEMORIES_PER_COMPONENT))
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .total_tables(instances.saturating_mul(TABLES_PER_COMPONENT))
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .max_tables_per_module(TABLES_PER_COMPONENT)
        .table_elements(100_000)
        .total_stacks(instances)
        .max_component_instance_size(4 << 20)
        .max_core_instance_size(4 << 20)
        // Resetting a slot's first pages by hand is cheaper than returning
        // them to the kernel, whose TLB shootdowns stall every core.
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT / 16)
        .async_stack_keep_resident(KEEP_RESIDENT / 16)
        // The rest goes back to the kernel as soon as an instance ends. In
        // batches (of 16) the memory of finished instances stayed resident
        // meanwhile: 642 MB against 320 MB of peak memory for 200 readers of
        // a 20 MB output, and gigabytes for plugins that allocate while they
        // are described; the fan-out of 1,000 took as long either way.
        .decommit_batch_size(1);
    wasmtime::InstanceAllocationStrategy::Pooling(pool)
}

/// Bytes of each pooled memory reset in place on reuse (a sixteenth of it
/// for tables and stacks). Every reuse zeroes them whether the attempt
/// touched them or not: 1 MiB cost more than the page faults it saved
/// (fan-out of 1,000: 197 ms against 114 ms with 64 KiB).
const KEEP_RESIDENT: usize = 64 << 10;
const CORE_INSTANCES_PER_COMPONENT: u32 = 64;

const MEMORIES_PER_COMPONENT: u32 = 4;
const TABLES_PER_COMPONENT: u32 = 8;
