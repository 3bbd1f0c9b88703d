//! A live guest instance: one store, reused across batches, one call at a
//! time. Each call gets a fresh deadline; a trap, a deadline or a limit hit
//! ends that call with a typed error and the instance is rebuilt (and
//! re-initialised) before the next batch.

use super::bindings::Stateless;
use super::error::{GuestError, GuestErrorKind};
use super::module::Module;
use super::sandbox::{GuestIdentity, HostState, Lookups, MemoryLimitHit};
use super::types;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::TypedFunc;
use wasmtime::{Store, UpdateDeadline};

/// Raised inside the guest when its call runs past the deadline.
#[derive(Debug, thiserror::Error)]
#[error("call deadline exceeded")]
struct DeadlineHit;

/// A guest ready to process batches.
pub struct Instance {
    module: Module,
    identity: GuestIdentity,
    config: Vec<(String, String)>,
    lookups: Arc<dyn Lookups>,
    live: Option<Live>,
    /// The last batch's buffer of values, kept for the next batch: a fresh
    /// buffer of megabytes per batch was fresh pages for the kernel to zero.
    spare_values: Vec<u8>,
}

/// The largest buffer of values kept between batches (a pipeline's batches
/// are 1 MiB by default, `[pipeline.batch] max_bytes`; an instance that saw
/// a bigger one lets it go).
const MAX_SPARE_VALUES: usize = 4 << 20;

struct Live {
    store: Store<HostState>,
    bindings: Stateless,
    /// `snapshot` and `restore` of a stateful guest.
    state: Option<StateFuncs>,
}

/// The exports of the `state` interface.
struct StateFuncs {
    snapshot: TypedFunc<(), (Vec<u8>,)>,
    restore: TypedFunc<(Vec<u8>,), (Result<(), String>,)>,
}

/// The `state` interface's export name.
fn state_interface() -> String {
    format!("monasca:processor/state@{}", super::world::VERSION)
}

impl Instance {
    pub(crate) async fn start(
        module: Module,
        identity: GuestIdentity,
        config: Vec<(String, String)>,
        lookups: Arc<dyn Lookups>,
    ) -> Result<Self, GuestError> {
        let live = boot(module.clone(), identity.clone(), config.clone(), lookups.clone()).await?;
        Ok(Instance { module, identity, config, lookups, live: Some(live), spare_values: Vec::new() })
    }

    /// The module this instance runs.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// Run `process` on a batch and return the guest's effects. Messages of
    /// several partitions are handed over as one batch per partition, in turn.
    pub async fn process(&mut self, messages: &[types::Message]) -> Result<Vec<types::Effect>, GuestError> {
        let now_ms = types::now_ms();
        let mut effects = Vec::new();
        for run in types::runs(messages) {
            let batch = types::wit_batch(run, now_ms, std::mem::take(&mut self.spare_values));
            let result = self.process_batch(&batch).await;
            if batch.values.capacity() <= MAX_SPARE_VALUES {
                self.spare_values = batch.values;
            }
            let more = result?;
            if effects.is_empty() {
                effects = more;
            } else {
                effects.extend(more);
            }
        }
        Ok(effects)
    }

    async fn process_batch(&mut self, batch: &types::WitBatch) -> Result<Vec<types::Effect>, GuestError> {
        if self.live.is_none() {
            let (module, identity) = (self.module.clone(), self.identity.clone());
            self.live = Some(boot(module, identity, self.config.clone(), self.lookups.clone()).await?);
        }
        let live = self.armed()?;
        let result = live.bindings.monasca_processor_processor().call_process(&mut live.store, batch).await;
        match result {
            Ok(Ok(effects)) => Ok(effects),
            Ok(Err(e)) => Err(self.error(GuestErrorKind::Batch {
                reason: e.reason,
                culprit: e.culprit.map(|o| (o.partition, o.offset)),
            })),
            Err(trap) => Err(self.trapped(trap)),
        }
    }

    /// The guest's state (`snapshot`), or `None` for a stateless guest.
    pub async fn snapshot(&mut self) -> Result<Option<Vec<u8>>, GuestError> {
        let live = self.armed()?;
        let Some(funcs) = &live.state else { return Ok(None) };
        match funcs.snapshot.call_async(&mut live.store, ()).await {
            Ok((bytes,)) => Ok(Some(bytes)),
            Err(trap) => Err(self.trapped(trap)),
        }
    }

    /// Hand the guest a state made by `snapshot` (possibly of another
    /// version); the guest's refusal is returned as `Init` with its reason.
    pub async fn restore(&mut self, bytes: Vec<u8>) -> Result<(), GuestError> {
        let live = self.armed()?;
        let Some(funcs) = &live.state else {
            return Err(self.error(GuestErrorKind::Init {
                reason: "the module keeps no state (it exports no `state` interface) and cannot take one over".into(),
            }));
        };
        match funcs.restore.call_async(&mut live.store, (bytes,)).await {
            Ok((Ok(()),)) => Ok(()),
            Ok((Err(reason),)) => {
                Err(self.error(GuestErrorKind::Init { reason: format!("restore refused: {reason}") }))
            }
            Err(trap) => Err(self.trapped(trap)),
        }
    }

    /// The live instance, its deadline armed for one call. (Its error is the
    /// one the public calls return as it is, so it is not boxed here.)
    #[allow(clippy::result_large_err)]
    fn armed(&mut self) -> Result<&mut Live, GuestError> {
        let deadline = self.module.inner.engine.settings().call_deadline;
        match self.live.as_mut() {
            Some(live) => {
                arm_deadline(&mut live.store, deadline);
                Ok(live)
            }
            None => Err(guest_error(&self.identity, GuestErrorKind::Init { reason: "instance unavailable".into() })),
        }
    }

    /// The error for a call that trapped; a trapped instance cannot be
    /// entered again, so it is dropped (rebuilt on the next batch).
    fn trapped(&mut self, trap: wasmtime::Error) -> GuestError {
        let kind = match &self.live {
            Some(live) => classify(trap, &live.store),
            None => {
                GuestErrorKind::Trap { reason: format!("{trap:#}"), output: String::new(), backtrace: String::new() }
            }
        };
        self.live = None;
        self.error(kind)
    }

    fn error(&self, kind: GuestErrorKind) -> GuestError {
        guest_error(&self.identity, kind)
    }
}

fn guest_error(identity: &GuestIdentity, kind: GuestErrorKind) -> GuestError {
    GuestError {
        pipeline: identity.pipeline.clone(),
        module: identity.module.clone(),
        digest: identity.digest.clone(),
        kind,
    }
}

/// Instantiate the module in a fresh store and call `init`. Takes its inputs
/// by value so the future is `Send` (it holds no reference to an `Instance`).
async fn boot(
    module: Module,
    identity: GuestIdentity,
    config: Vec<(String, String)>,
    lookups: Arc<dyn Lookups>,
) -> Result<Live, GuestError> {
    let settings = module.inner.engine.settings();
    let state = HostState::new(identity.clone(), settings.memory_limit, settings.call_deadline, lookups);
    let mut store = Store::new(module.inner.engine.wasmtime(), state);
    store.limiter(|state| &mut state.limits);
    store.epoch_deadline_callback(|mut ctx| {
        let state = ctx.data_mut();
        if Instant::now() >= state.deadline {
            state.deadline_hit = true;
            Err(DeadlineHit.into())
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    arm_deadline(&mut store, settings.call_deadline);
    let instance = match module.inner.pre.instance_pre().instantiate_async(&mut store).await {
        Ok(instance) => instance,
        Err(trap) => return Err(guest_error(&identity, classify(trap, &store))),
    };
    let link = |e: wasmtime::Error| guest_error(&identity, GuestErrorKind::Init { reason: format!("{e:#}") });
    let bindings = Stateless::new(&mut store, &instance).map_err(link)?;
    let state = if module.world().is_stateful() {
        let interface = instance.get_export_index(&mut store, None, &state_interface());
        let snapshot = instance.get_export_index(&mut store, interface.as_ref(), "snapshot");
        let restore = instance.get_export_index(&mut store, interface.as_ref(), "restore");
        match (snapshot, restore) {
            (Some(snapshot), Some(restore)) => Some(StateFuncs {
                snapshot: instance.get_typed_func(&mut store, snapshot).map_err(link)?,
                restore: instance.get_typed_func(&mut store, restore).map_err(link)?,
            }),
            _ => None,
        }
    } else {
        None
    };
    match bindings.monasca_processor_processor().call_init(&mut store, &config).await {
        Ok(Ok(())) => Ok(Live { store, bindings, state }),
        Ok(Err(reason)) => Err(guest_error(&identity, GuestErrorKind::Init { reason })),
        Err(trap) => Err(guest_error(&identity, classify(trap, &store))),
    }
}

/// Give the next call a full deadline.
fn arm_deadline(store: &mut Store<HostState>, deadline: std::time::Duration) {
    let state = store.data_mut();
    state.deadline = Instant::now() + deadline;
    state.deadline_hit = false;
    state.limits.hit = false;
    store.set_epoch_deadline(1);
}

/// Tell a deadline and a memory-limit hit from other traps.
fn classify(error: wasmtime::Error, store: &Store<HostState>) -> GuestErrorKind {
    let state = store.data();
    if state.deadline_hit || error.downcast_ref::<DeadlineHit>().is_some() {
        return GuestErrorKind::Deadline { limit: state.call_deadline };
    }
    if state.limits.hit || error.downcast_ref::<MemoryLimitHit>().is_some() {
        return GuestErrorKind::MemoryLimit { limit: state.limits.limit };
    }
    let backtrace = error.downcast_ref::<wasmtime::WasmBacktrace>().map(|bt| bt.to_string()).unwrap_or_default();
    let reason = match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{error:#}").lines().next().unwrap_or_default().to_string(),
    };
    GuestErrorKind::Trap { reason, output: state.output.take(), backtrace }
}
