//! The `monasca-wasm` subcommands. Each returns `anyhow::Result`: this is the
//! binary's edge, where typed errors become messages for a person.

pub mod admin;
pub mod generate;
pub mod import_config;
pub mod inspect;
pub mod new;
pub mod run;
pub mod supervise;
pub mod test;
pub mod validate;

use crate::engine::{Engine, EngineSettings};
use std::path::PathBuf;
use std::time::Duration;

/// Engine options shared by the subcommands that load modules.
#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// Memory cap per guest instance, in MiB.
    #[arg(long, default_value_t = 64, value_name = "MIB")]
    pub memory_limit_mib: usize,
    /// Deadline of one guest call, in milliseconds.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub deadline_ms: u64,
    /// Directory of the compiled-module cache [default: ~/.cache/monasca-wasm].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compile every time; do not read or write the cache.
    #[arg(long)]
    pub no_cache: bool,
}

impl EngineArgs {
    /// Build the engine these options describe.
    pub fn engine(&self) -> anyhow::Result<Engine> {
        let defaults = EngineSettings::default();
        let settings = EngineSettings {
            memory_limit: self.memory_limit_mib * 1024 * 1024,
            call_deadline: Duration::from_millis(self.deadline_ms),
            cache_dir: if self.no_cache { None } else { self.cache_dir.clone().or(defaults.cache_dir.clone()) },
            ..defaults
        };
        Ok(Engine::new(settings)?)
    }
}
