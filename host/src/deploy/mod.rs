//! Deploying a module to a running pipeline, and rolling it back.
//!
//! [`Deployer::deploy`] checks a module completely before the pipeline sees
//! it, all off the hot path: it compiles it and checks it against the world
//! and its version (a 400 from the admin API when it fails), starts an
//! instance with the pipeline's configuration, optionally runs it on a canary
//! fixture (it must not fail or trap, and must finish within the call
//! deadline), keeps it in the [`store`], and only then swaps it into the
//! pipeline's pool: each partition's next batch runs on it, batches already
//! running finish on the old one. [`Deployer::rollback`] swaps the previous
//! module back the same way. One deployment runs at a time per pipeline.

pub mod store;
pub mod watch;

use crate::engine::types::Message;
use crate::engine::{Engine, GuestError, LoadError, Module};
use crate::pipeline::pool::InstancePool;
use crate::pipeline::stats::Stats;
use std::sync::{Arc, Mutex};
use store::{Deployment, ModuleStore, StoreError, StoredModule};

/// Why a deployment or a rollback was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// Not a usable module: not wasm, not a component, wrong world or version.
    #[error(transparent)]
    Invalid(#[from] LoadError),
    /// The module's `init` refused the pipeline's configuration.
    #[error("the module does not start with this pipeline's configuration: {0}")]
    Init(Box<GuestError>),
    /// The module failed on the canary fixture.
    #[error("canary failed: {0}")]
    Canary(String),
    /// The new module cannot take over the running module's state.
    #[error("the new module cannot take over the running module's state: {0}")]
    Restore(Box<GuestError>),
    /// The new module keeps partition state and the running one does not, or
    /// the other way round: the pipeline's changelog and transactions are set
    /// up at start-up for one of the two.
    #[error(
        "the new module {new} partition state and the running one {running}: restart the pipeline with it instead"
    )]
    KeyedMismatch {
        /// "uses" or "does not use".
        new: &'static str,
        /// "does" or "does not".
        running: &'static str,
    },
    /// Nothing to roll back to.
    #[error("pipeline `{0}` has no previous module to roll back to")]
    NoPrevious(String),
    /// The previous module is the one the host rolled back on its own.
    #[error(
        "the previous module {name} (sha256:{digest}) was rolled back automatically ({reason}); \
         it is not reinstalled by a rollback: deploy it again if you mean it"
    )]
    PreviousFailed {
        /// Its name.
        name: String,
        /// Its digest.
        digest: String,
        /// Why it was rolled back.
        reason: String,
    },
    /// The module store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Compilation could not be run.
    #[error("deployment task failed: {0}")]
    Task(String),
}

/// What a deployment changed.
#[derive(Debug, Clone)]
pub struct Deployed {
    /// The module that runs now.
    pub current: StoredModule,
    /// The one it replaced.
    pub previous: Option<StoredModule>,
}

/// Deploys modules to one pipeline.
pub struct Deployer {
    engine: Engine,
    store: ModuleStore,
    pipeline: String,
    canary_topic: String,
    pool: Arc<InstancePool>,
    stats: Arc<Stats>,
    record: Mutex<Deployment>,
    boot_file: Option<std::path::PathBuf>,
    busy: tokio::sync::Mutex<()>,
}

impl Deployer {
    /// The pipeline's lookup cache: answers and bytes.
    pub fn lookup_cache_size(&self) -> (u64, u64) {
        self.pool.lookup_cache_size()
    }

    /// A deployer for `pipeline`, whose pool runs the module in `running`.
    pub fn new(
        engine: Engine,
        store: ModuleStore,
        pipeline: &str,
        canary_topic: &str,
        pool: Arc<InstancePool>,
        stats: Arc<Stats>,
        running: Deployment,
    ) -> Self {
        Deployer {
            engine,
            store,
            pipeline: pipeline.to_string(),
            canary_topic: canary_topic.to_string(),
            pool,
            stats,
            record: Mutex::new(running),
            boot_file: None,
            busy: tokio::sync::Mutex::new(()),
        }
    }

    /// The file the running module was loaded from (the configuration's
    /// `module`): copied into the store at the first deployment, so that it
    /// can be rolled back to.
    pub fn with_boot_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.boot_file = Some(path.into());
        self
    }

    /// The module that runs now.
    pub fn module(&self) -> Module {
        self.pool.module()
    }

    /// What runs now, and what ran before.
    pub fn deployment(&self) -> Deployment {
        self.record.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Check `bytes` as described in the module docs and swap them in.
    pub async fn deploy(&self, name: &str, bytes: Vec<u8>, canary: Option<Vec<u8>>) -> Result<Deployed, DeployError> {
        let _one_at_a_time = self.busy.lock().await;
        let module = self.compile(name, bytes.clone()).await?;
        let (keyed, running_keyed) = (module.world().is_keyed(), self.pool.module().world().is_keyed());
        if keyed != running_keyed {
            let uses = |k: bool| if k { "uses" } else { "does not use" };
            let does = |k: bool| if k { "does" } else { "does not" };
            return Err(DeployError::KeyedMismatch { new: uses(keyed), running: does(running_keyed) });
        }
        let mut first = self.pool.instantiate(&module).await.map_err(|e| DeployError::Init(Box::new(e)))?;
        if let Some(fixture) = canary {
            let messages = canary_messages(&self.canary_topic, &fixture);
            if messages.is_empty() {
                return Err(DeployError::Canary("the canary fixture holds no message".into()));
            }
            // A keyed module's canary runs on a scratch state of its own.
            let mut scratch = crate::state::PartitionStore::default();
            first
                .process_with(&messages, keyed.then_some(&mut scratch))
                .await
                .map_err(|e| DeployError::Canary(e.to_string()))?;
            // The canary's state must not leak into the pipeline: start afresh.
            first = self.pool.instantiate(&module).await.map_err(|e| DeployError::Init(Box::new(e)))?;
        }
        self.store.put(module.digest(), &bytes)?;
        self.keep_boot_module()?;
        let current = StoredModule {
            digest: module.digest().to_string(),
            name: name.to_string(),
            deployed_at: store::now_secs(),
            rolled_back: None,
        };
        let previous = self.deployment().current;
        let deployment = Deployment { current: current.clone(), previous: Some(previous.clone()) };
        self.install(module, first, deployment, true).await?;
        Stats::add(&self.stats.swaps, 1);
        tracing::info!(pipeline = %self.pipeline, module = %name, digest = %current.digest, previous = %previous.digest, "module deployed");
        Ok(Deployed { current, previous: Some(previous) })
    }

    /// Swap the previous module back in (an operator's request): refused
    /// when the previous module is one the host rolled back on its own.
    pub async fn rollback(&self, why: &str) -> Result<Deployed, DeployError> {
        self.swap_back(why, false).await
    }

    /// Swap the previous module back in because the current one keeps
    /// failing on probation; the current one is marked so that a manual
    /// rollback does not reinstall it.
    async fn roll_back_automatically(&self, why: &str) -> Result<Deployed, DeployError> {
        self.swap_back(why, true).await
    }

    async fn swap_back(&self, why: &str, automatic: bool) -> Result<Deployed, DeployError> {
        let _one_at_a_time = self.busy.lock().await;
        let Deployment { mut current, previous } = self.deployment();
        let previous = previous.ok_or_else(|| DeployError::NoPrevious(self.pipeline.clone()))?;
        if let (false, Some(reason)) = (automatic, &previous.rolled_back) {
            return Err(DeployError::PreviousFailed {
                name: previous.name.clone(),
                digest: previous.digest.clone(),
                reason: reason.clone(),
            });
        }
        if automatic {
            current.rolled_back = Some(crate::text::escape_capped(why, 512));
        }
        let bytes = self.store.get(&previous.digest)?;
        let module = self.compile(&previous.name, bytes).await?;
        let first = self.pool.instantiate(&module).await.map_err(|e| DeployError::Init(Box::new(e)))?;
        let restored = StoredModule { deployed_at: store::now_secs(), rolled_back: None, ..previous };
        let deployment = Deployment { current: restored.clone(), previous: Some(current.clone()) };
        self.install(module, first, deployment, false).await?;
        Stats::add(&self.stats.rollbacks, 1);
        tracing::warn!(pipeline = %self.pipeline, module = %restored.name, digest = %restored.digest, replaced = %current.digest, reason = why, "module rolled back");
        Ok(Deployed { current: restored, previous: Some(current) })
    }

    /// Put the module the pipeline started on into the store, if it came
    /// from the configuration and is not there yet.
    fn keep_boot_module(&self) -> Result<(), DeployError> {
        let running = self.deployment().current;
        let Some(path) = &self.boot_file else { return Ok(()) };
        if self.store.module_path(&running.digest).exists() {
            return Ok(());
        }
        let bytes = std::fs::read(path).map_err(|source| StoreError::Io {
            action: "cannot read",
            path: path.display().to_string(),
            source,
        })?;
        // The file may have changed since start-up: keep it only if it is
        // still what runs.
        if crate::engine::digest_hex(&bytes) == running.digest {
            self.store.put(&running.digest, &bytes)?;
        }
        Ok(())
    }

    /// Swap, then record the deployment. A stateful running module hands its
    /// state over (and a new module that cannot take it is refused: nothing
    /// changes); a crash between the swap and the record restarts on the
    /// previous module (state does not outlive the process anyway).
    async fn install(
        &self,
        module: Module,
        first: crate::engine::Instance,
        deployment: Deployment,
        probation: bool,
    ) -> Result<(), DeployError> {
        if self.pool.module().world().is_stateful() {
            drop(first);
            self.pool.swap_with_state(module, probation).await.map_err(|e| DeployError::Restore(Box::new(e)))?;
        } else {
            self.pool.swap(module, first, probation);
        }
        self.store.record(&self.pipeline, &deployment)?;
        *self.record.lock().unwrap_or_else(|p| p.into_inner()) = deployment;
        Ok(())
    }

    /// Roll back whenever the pool asks (a module on probation that keeps
    /// failing), until the pool goes away.
    pub async fn answer_rollback_requests(self: Arc<Self>) {
        let Some(mut requests) = self.pool.rollback_requests() else { return };
        while let Some(reason) = requests.recv().await {
            if let Err(e) = self.roll_back_automatically(&reason).await {
                tracing::error!(pipeline = %self.pipeline, error = %e, %reason, "automatic rollback failed; the module stays, its failures are isolated as poison");
                self.pool.end_probation();
            }
        }
    }

    /// Compile on a blocking thread: compilation takes seconds of CPU.
    async fn compile(&self, name: &str, bytes: Vec<u8>) -> Result<Module, DeployError> {
        let (engine, name) = (self.engine.clone(), name.to_string());
        tokio::task::spawn_blocking(move || engine.load_bytes(&name, &bytes))
            .await
            .map_err(|e| DeployError::Task(e.to_string()))?
            .map_err(DeployError::from)
    }
}

/// A canary fixture (one message value per line, blank lines skipped) as
/// messages of `topic`, partition 0, offsets from 0.
fn canary_messages(topic: &str, fixture: &[u8]) -> Vec<Message> {
    let topic: Arc<str> = topic.into();
    fixture
        .split(|b| *b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .enumerate()
        .map(|(offset, value)| Message {
            topic: topic.clone(),
            partition: 0,
            offset: offset as i64,
            timestamp_ms: None,
            key: None,
            value: bytes::Bytes::copy_from_slice(value),
            headers: Vec::new(),
            tombstone: false,
        })
        .collect()
}
