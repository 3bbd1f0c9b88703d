//! A pipeline's pool of guest instances: at most `concurrency` partitions
//! run the guest at once; instances are kept and reused between batches.
//!
//! The pool also holds the module that runs, and swaps it: [`InstancePool::swap`]
//! installs a new module (already compiled, its first instance already
//! started, off the hot path) under a new generation. A batch runs on the
//! instance it took at its start, so batches already running finish on the
//! old module; an instance of an older generation given back is dropped, and
//! the next batch of every partition takes an instance of the new module.

use crate::engine::{GuestError, Instance, Module};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Instances of the current module for one pipeline.
pub struct InstancePool {
    pipeline: String,
    config: Vec<(String, String)>,
    permits: Arc<Semaphore>,
    live: Mutex<Live>,
}

/// The module that runs, its generation, and its idle instances.
struct Live {
    module: Module,
    generation: u64,
    idle: Vec<Instance>,
}

/// An instance on loan; give it back with [`InstancePool::put_back`].
pub struct Loan {
    /// The instance.
    pub instance: Instance,
    generation: u64,
    _permit: OwnedSemaphorePermit,
}

impl InstancePool {
    /// A pool of up to `size` instances.
    pub fn new(module: Module, pipeline: &str, config: Vec<(String, String)>, size: usize) -> Self {
        InstancePool {
            pipeline: pipeline.to_string(),
            config,
            permits: Arc::new(Semaphore::new(size.max(1))),
            live: Mutex::new(Live { module, generation: 0, idle: Vec::new() }),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The module that runs now.
    pub fn module(&self) -> Module {
        self.live().module.clone()
    }

    /// The pipeline's guest configuration (what `init` receives).
    pub fn guest_config(&self) -> &[(String, String)] {
        &self.config
    }

    /// Wait for a free slot and take an instance of the current module (a
    /// new one when none is idle).
    pub async fn take(&self) -> Result<Loan, GuestError> {
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| {
            let module = self.module();
            GuestError {
                pipeline: self.pipeline.clone(),
                module: module.name().to_string(),
                digest: module.short_digest(),
                kind: crate::engine::GuestErrorKind::Init { reason: "instance pool closed".into() },
            }
        })?;
        let (module, generation, idle) = {
            let mut live = self.live();
            let idle = live.idle.pop();
            (live.module.clone(), live.generation, idle)
        };
        let instance = match idle {
            Some(instance) => instance,
            None => module.instantiate(&self.pipeline, self.config.clone()).await?,
        };
        Ok(Loan { instance, generation, _permit: permit })
    }

    /// Return an instance for reuse (dropped if the module was swapped since).
    pub fn put_back(&self, loan: Loan) {
        let mut live = self.live();
        if loan.generation == live.generation {
            live.idle.push(loan.instance);
        }
    }

    /// Run `module` from the next batch of every partition on; `first` is an
    /// instance of it, already started. Returns the module it replaces.
    pub fn swap(&self, module: Module, first: Instance) -> Module {
        let mut live = self.live();
        live.generation += 1;
        live.idle.clear();
        live.idle.push(first);
        std::mem::replace(&mut live.module, module)
    }
}
