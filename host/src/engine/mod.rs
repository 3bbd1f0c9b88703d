//! The engine: loads guest components, checks them, caches their compiled
//! form, and runs them in a sandbox.
//!
//! - [`Engine`]: one wasmtime engine with the sandbox's settings and the epoch
//!   ticker that enforces call deadlines.
//! - [`Module`] (`module`): a loaded, checked, pre-instantiated component.
//! - [`Instance`] (`instance`): a live guest, reused across batches.
//! - `sandbox`: what a guest may import, its memory cap, its captured output.
//! - `world`: which world and version a component targets.
//! - `cache`: compiled components on disk.
//! - `error`: typed load and call errors.

mod bindings;
pub mod budget;
pub mod cache;
pub mod error;
pub mod guest_log;
pub mod http_reply;
mod instance;
mod module;
pub mod sandbox;
pub mod types;
mod wasi_stubs;
pub mod world;

pub use cache::{CacheOutcome, ModuleCache};
pub use error::{GuestError, GuestErrorKind, LoadError};
pub use instance::Instance;
pub use module::{digest_hex, Module};
pub use sandbox::{Lookups, NoLookups};
pub use world::WorldInfo;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Most core module instances one component may create (a Rust guest
/// creates three or four: its code and WASI's shims).
pub const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 8;
/// Most linear memories one component may define. The memory cap
/// (`memory_limit`) holds for all of an instance's memories together.
pub const MAX_MEMORIES_PER_COMPONENT: u32 = 2;
/// Most tables one component may define.
pub const MAX_TABLES_PER_COMPONENT: u32 = 8;

/// Settings of the engine and its sandbox.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Memory cap per guest instance, in bytes (default 64 MiB).
    pub memory_limit: usize,
    /// Deadline of one guest call (default 5 s).
    pub call_deadline: Duration,
    /// How often the epoch ticks; a running guest yields to the runtime at
    /// each tick (default 10 ms).
    pub epoch_tick: Duration,
    /// Where compiled components are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Guest instances that can be live at once (the size of the pooling
    /// allocator's pool; default 64). Memories, tables and call stacks are
    /// preallocated for this many and reused, so starting an instance or a
    /// call costs no fresh `mmap`.
    pub max_instances: u32,
    /// The most a batch's effects may hold ([`budget`]).
    pub output_budget: budget::OutputBudget,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            memory_limit: 64 * 1024 * 1024,
            call_deadline: Duration::from_secs(5),
            epoch_tick: Duration::from_millis(10),
            cache_dir: ModuleCache::default_dir(),
            max_instances: 64,
            output_budget: budget::OutputBudget::default(),
        }
    }
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// wasmtime refused the configuration.
    #[error("cannot configure the WebAssembly engine: {0}")]
    Config(String),
}

/// The WebAssembly engine shared by every pipeline.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    wasmtime: wasmtime::Engine,
    linker: wasmtime::component::Linker<sandbox::HostState>,
    settings: EngineSettings,
    cache: Option<ModuleCache>,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for EngineInner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Engine {
    /// An engine with these settings.
    pub fn new(settings: EngineSettings) -> Result<Self, EngineError> {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true).epoch_interruption(true).cranelift_opt_level(wasmtime::OptLevel::Speed);
        let mut pool = wasmtime::PoolingAllocationConfig::new();
        // A component instantiates a few core instances (the guest and its
        // WASI shims) with a memory and a table or two each. Each component
        // may have at most its share of the pool, so that no module can
        // starve other pipelines' instances; one with more is refused when
        // it is loaded (or deployed), with the count in the reason.
        let instances = settings.max_instances.max(1);
        pool.total_component_instances(instances)
            .total_core_instances(instances * MAX_CORE_INSTANCES_PER_COMPONENT)
            .total_memories(instances * MAX_MEMORIES_PER_COMPONENT)
            .total_tables(instances * MAX_TABLES_PER_COMPONENT)
            .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
            .max_memories_per_component(MAX_MEMORIES_PER_COMPONENT)
            .max_tables_per_component(MAX_TABLES_PER_COMPONENT)
            .total_stacks(instances)
            .max_memory_size(settings.memory_limit);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        if std::env::var_os("MONASCA_WASM_PERFMAP").is_some() {
            // Lets `perf` name guest functions (writes /tmp/perf-<pid>.map).
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let wasmtime = wasmtime::Engine::new(&config).map_err(|e| EngineError::Config(format!("{e:#}")))?;
        let linker = sandbox::linker(&wasmtime).map_err(|e| EngineError::Config(format!("{e:#}")))?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let ticker_engine = wasmtime.weak();
        let stop = ticker_stop.clone();
        let tick = settings.epoch_tick;
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    match ticker_engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| EngineError::Config(format!("cannot start the epoch ticker: {e}")))?;

        let cache = settings.cache_dir.clone().map(ModuleCache::new);
        Ok(Engine { inner: Arc::new(EngineInner { wasmtime, linker, settings, cache, ticker_stop }) })
    }

    /// The settings in force.
    pub fn settings(&self) -> &EngineSettings {
        &self.inner.settings
    }

    /// The compiled-module cache, if enabled.
    pub fn cache(&self) -> Option<&ModuleCache> {
        self.inner.cache.as_ref()
    }

    /// Load a component from a file (its name is the file stem).
    pub fn load_file(&self, path: impl AsRef<std::path::Path>) -> Result<Module, LoadError> {
        let path = path.as_ref();
        let bytes =
            std::fs::read(path).map_err(|source| LoadError::Read { path: path.display().to_string(), source })?;
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "module".into());
        self.load_bytes(&name, &bytes)
    }

    /// Load a component from bytes.
    pub fn load_bytes(&self, name: &str, bytes: &[u8]) -> Result<Module, LoadError> {
        Module::load(self, name, bytes)
    }

    pub(crate) fn wasmtime(&self) -> &wasmtime::Engine {
        &self.inner.wasmtime
    }

    pub(crate) fn linker(&self) -> &wasmtime::component::Linker<sandbox::HostState> {
        &self.inner.linker
    }
}
