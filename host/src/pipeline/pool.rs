//! A pipeline's pool of guest instances: at most `concurrency` partitions
//! run the guest at once; instances are kept and reused between batches.

use crate::engine::{GuestError, Instance, Module};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Instances of one module for one pipeline.
pub struct InstancePool {
    module: Module,
    pipeline: String,
    config: Vec<(String, String)>,
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Instance>>,
}

/// An instance on loan; give it back with [`InstancePool::put_back`].
pub struct Loan {
    /// The instance.
    pub instance: Instance,
    _permit: OwnedSemaphorePermit,
}

impl InstancePool {
    /// A pool of up to `size` instances.
    pub fn new(module: Module, pipeline: &str, config: Vec<(String, String)>, size: usize) -> Self {
        InstancePool {
            module,
            pipeline: pipeline.to_string(),
            config,
            permits: Arc::new(Semaphore::new(size.max(1))),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The module the pool runs.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// Wait for a free slot and take an instance (a new one when none is idle).
    pub async fn take(&self) -> Result<Loan, GuestError> {
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| GuestError {
            pipeline: self.pipeline.clone(),
            module: self.module.name().to_string(),
            digest: self.module.short_digest(),
            kind: crate::engine::GuestErrorKind::Init { reason: "instance pool closed".into() },
        })?;
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let instance = match idle {
            Some(instance) => instance,
            None => self.module.instantiate(&self.pipeline, self.config.clone()).await?,
        };
        Ok(Loan { instance, _permit: permit })
    }

    /// Return an instance for reuse.
    pub fn put_back(&self, loan: Loan) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(loan.instance);
    }
}
