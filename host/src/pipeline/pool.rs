//! A pipeline's pool of guest instances: at most `concurrency` partitions
//! run the guest at once; instances are kept and reused between batches.
//!
//! The pool also holds the module that runs, and swaps it: [`InstancePool::swap`]
//! installs a new module (already compiled, its first instance already
//! started, off the hot path) under a new generation. A batch runs on the
//! instance it took at its start, so batches already running finish on the
//! old module; an instance of an older generation given back is dropped, and
//! the next batch of every partition takes an instance of the new module.
//!
//! A module swapped in by a deployment is on probation (see
//! [`crate::config::RollbackConfig`]): the pool counts its consecutive failed
//! batches and, at the limit, asks for a rollback once through the channel
//! that [`InstancePool::rollback_requests`] hands out (the deployer listens).

use crate::config::RollbackConfig;
use crate::engine::{GuestError, Instance, Lookups, Module};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

/// Instances of the current module for one pipeline.
pub struct InstancePool {
    pipeline: String,
    config: Vec<(String, String)>,
    size: u32,
    permits: Arc<Semaphore>,
    live: Mutex<Live>,
    rollback: RollbackConfig,
    lookups: Arc<dyn Lookups>,
    rollback_tx: mpsc::UnboundedSender<String>,
    rollback_rx: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
}

/// The module that runs, its generation, its idle instances, and how it
/// fares while on probation.
struct Live {
    module: Module,
    generation: u64,
    idle: Vec<Instance>,
    probation: bool,
    successes: u64,
    failures: u32,
}

/// What to do after a batch failed on a module on probation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Not on probation: isolate the poison messages as usual.
    Isolate,
    /// Try the batch again (a rollback may be on its way).
    Retry,
}

/// An instance on loan; give it back with [`InstancePool::put_back`].
pub struct Loan {
    /// The instance.
    pub instance: Instance,
    /// The pool's generation it belongs to.
    pub generation: u64,
    _permit: OwnedSemaphorePermit,
}

impl InstancePool {
    /// A pool of up to `size` instances.
    pub fn new(
        module: Module,
        pipeline: &str,
        config: Vec<(String, String)>,
        size: usize,
        rollback: RollbackConfig,
        lookups: Arc<dyn Lookups>,
    ) -> Self {
        let (rollback_tx, rollback_rx) = mpsc::unbounded_channel();
        InstancePool {
            pipeline: pipeline.to_string(),
            config,
            size: size.clamp(1, u32::MAX as usize) as u32,
            permits: Arc::new(Semaphore::new(size.max(1))),
            live: Mutex::new(Live {
                module,
                generation: 0,
                idle: Vec::new(),
                probation: false,
                successes: 0,
                failures: 0,
            }),
            rollback,
            lookups,
            rollback_tx,
            rollback_rx: Mutex::new(Some(rollback_rx)),
        }
    }

    /// The lookup cache's answers and bytes.
    pub fn lookup_cache_size(&self) -> (u64, u64) {
        self.lookups.cache_size()
    }

    /// How many lookups failed for want of their database so far.
    pub fn lookups_unavailable(&self) -> u64 {
        self.lookups.unavailable()
    }

    /// The rollback requests (their reasons), for the one who can roll back;
    /// `None` after the first call.
    pub fn rollback_requests(&self) -> Option<mpsc::UnboundedReceiver<String>> {
        self.rollback_rx.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// A batch ran on `generation` and succeeded.
    pub fn succeeded(&self, generation: u64) {
        let mut live = self.live();
        if live.generation == generation && live.probation {
            live.failures = 0;
            live.successes += 1;
            if live.successes >= self.rollback.probation_batches {
                live.probation = false;
            }
        }
    }

    /// A batch ran on `generation` and failed: isolate its poison messages,
    /// or (on probation) try it again; at the limit, ask for a rollback.
    pub fn failed(&self, generation: u64, reason: &str) -> OnFailure {
        let mut live = self.live();
        if live.generation != generation {
            // Swapped since: the batch runs again on the new module.
            return OnFailure::Retry;
        }
        if !live.probation || self.rollback.after_failures == 0 {
            return OnFailure::Isolate;
        }
        live.failures += 1;
        if live.failures == self.rollback.after_failures {
            let why = format!(
                "module {} failed {} batches in a row on probation; last: {reason}",
                live.module.name(),
                live.failures
            );
            if self.rollback_tx.send(why).is_err() {
                // Nobody can roll back: treat the failures as poison.
                live.probation = false;
                return OnFailure::Isolate;
            }
        }
        OnFailure::Retry
    }

    /// Trust the current module from now on (its failures are then poison).
    pub fn end_probation(&self) {
        self.live().probation = false;
    }

    /// True while `generation` is the current, probationary module.
    pub fn on_probation(&self, generation: u64) -> bool {
        let live = self.live();
        live.generation == generation && live.probation && self.rollback.after_failures > 0
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The module that runs now.
    pub fn module(&self) -> Module {
        self.live().module.clone()
    }

    /// A started instance of `module` for this pipeline: its configuration
    /// for `init`, its lookups for the `lookup` import.
    pub async fn instantiate(&self, module: &Module) -> Result<Instance, GuestError> {
        module.instantiate_with(&self.pipeline, self.config.clone(), self.lookups.clone()).await
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
            None => self.instantiate(&module).await?,
        };
        Ok(Loan { instance, generation, _permit: permit })
    }

    /// Return an instance for reuse (dropped if the module was swapped since).
    /// Answers to HTTP requests not taken are dropped (a guest of a Kafka
    /// pipeline has none to give).
    pub fn put_back(&self, mut loan: Loan) {
        drop(loan.instance.take_replies());
        let mut live = self.live();
        if loan.generation == live.generation {
            live.idle.push(loan.instance);
        }
    }

    /// Swap in `module`, handing the state of every instance of the running
    /// (stateful) module over to a new instance of it through `snapshot` and
    /// `restore`. Waits until no batch runs (each partition is then at a
    /// batch boundary) and holds every batch back while the state moves. If
    /// the new module cannot restore a state, nothing changes and the error
    /// says why. Returns the module it replaces.
    pub async fn swap_with_state(&self, module: Module, probation: bool) -> Result<Module, GuestError> {
        let closed = || GuestError {
            pipeline: self.pipeline.clone(),
            module: module.name().to_string(),
            digest: module.short_digest(),
            kind: crate::engine::GuestErrorKind::Init { reason: "instance pool closed".into() },
        };
        let _no_batch_runs = self.permits.clone().acquire_many_owned(self.size).await.map_err(|_| closed())?;
        let mut old = std::mem::take(&mut self.live().idle);
        let mut fresh = Vec::with_capacity(old.len().max(1));
        let mut handed = Ok(());
        for instance in old.iter_mut() {
            let moved = async {
                let mut new = self.instantiate(&module).await?;
                if let Some(state) = instance.snapshot().await? {
                    new.restore(state).await?;
                }
                Ok::<_, GuestError>(new)
            };
            match moved.await {
                Ok(new) => fresh.push(new),
                Err(e) => {
                    handed = Err(e);
                    break;
                }
            }
        }
        if let Err(e) = handed {
            // The old instances (with their state) stay.
            self.live().idle = old;
            return Err(e);
        }
        if fresh.is_empty() {
            fresh.push(self.instantiate(&module).await?);
        }
        let mut live = self.live();
        live.generation += 1;
        live.idle = fresh;
        live.probation = probation;
        live.successes = 0;
        live.failures = 0;
        Ok(std::mem::replace(&mut live.module, module))
    }

    /// Run `module` from the next batch of every partition on; `first` is an
    /// instance of it, already started; `probation` when it is a new
    /// deployment (not a rollback). Returns the module it replaces.
    pub fn swap(&self, module: Module, first: Instance, probation: bool) -> Module {
        let mut live = self.live();
        live.generation += 1;
        live.idle.clear();
        live.idle.push(first);
        live.probation = probation;
        live.successes = 0;
        live.failures = 0;
        std::mem::replace(&mut live.module, module)
    }
}
