//! A live guest instance: one store, reused across batches, one call at a
//! time. Each call gets a fresh deadline; a trap, a deadline or a limit hit
//! ends that call with a typed error and the instance is rebuilt (and
//! re-initialised) before the next batch.

use super::budget::Spent;
use super::error::{GuestError, GuestErrorKind};
use super::module::Module;
use super::sandbox::{GuestIdentity, HostState, Lookups, MemoryLimitHit};
use super::types;
use crate::state::store::PartitionStore;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{Func, TypedFunc};
use wasmtime::{Store, UpdateDeadline};

/// Raised inside the guest when its call runs past the deadline.
#[derive(Debug, thiserror::Error)]
#[error("call deadline exceeded")]
struct DeadlineHit;

/// How long past its deadline a call may go before the host stops waiting
/// for it. Epoch interruption stops a guest that runs; this backstop stops
/// one blocked in a host call (a WASI sleep or poll), whose store is then
/// discarded.
const BACKSTOP_GRACE: Duration = Duration::from_millis(100);

/// `call`, or `None` once `deadline` (and the grace) passed.
async fn bounded<F: std::future::Future>(deadline: Duration, call: F) -> Option<F::Output> {
    tokio::time::timeout(deadline + BACKSTOP_GRACE, call).await.ok()
}

/// A guest ready to process batches.
pub struct Instance {
    module: Module,
    identity: GuestIdentity,
    config: Vec<(String, String)>,
    lookups: Arc<dyn Lookups>,
    live: Option<Live>,
    /// A partition state lent while no instance is live (kept across a trap
    /// until it is taken back).
    lent: Option<crate::state::store::Session>,
    /// The last batch's buffer of values, kept for the next batch: a fresh
    /// buffer of megabytes per batch was fresh pages for the kernel to zero.
    spare_values: Vec<u8>,
    /// Answers to HTTP requests given by the calls that succeeded since the
    /// last [`Instance::take_replies`].
    replies: Vec<super::http_reply::Reply>,
}

/// The largest buffer of values kept between batches (a pipeline's batches
/// are 1 MiB by default, `[pipeline.batch] max_bytes`; an instance that saw
/// a bigger one lets it go).
const MAX_SPARE_VALUES: usize = 4 << 20;

struct Live {
    store: Store<HostState>,
    /// `process`, its type checked at boot.
    process: Func,
    /// `snapshot` and `restore` of a stateful guest.
    state: Option<StateFuncs>,
}

/// `init` as the host calls it.
type InitFunc<'a> = TypedFunc<(&'a [(String, String)],), (Result<(), String>,)>;

/// The result `process` returns.
type ProcessResult = Result<Vec<types::Effect>, types::ProcessError>;

/// The exports of the `state` interface.
struct StateFuncs {
    snapshot: TypedFunc<(), (Vec<u8>,)>,
    restore: TypedFunc<(Vec<u8>,), (Result<(), String>,)>,
}

impl Instance {
    pub(crate) async fn start(
        module: Module,
        identity: GuestIdentity,
        config: Vec<(String, String)>,
        lookups: Arc<dyn Lookups>,
    ) -> Result<Self, GuestError> {
        let live = boot(module.clone(), identity.clone(), config.clone(), lookups.clone()).await?;
        Ok(Instance {
            module,
            identity,
            config,
            lookups,
            live: Some(live),
            lent: None,
            spare_values: Vec::new(),
            replies: Vec::new(),
        })
    }

    /// The module this instance runs.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// The answers to HTTP requests that the successful calls since the last
    /// time gave (`http-reply`), in the order given.
    pub fn take_replies(&mut self) -> Vec<super::http_reply::Reply> {
        std::mem::take(&mut self.replies)
    }

    /// Run `process` on a batch of a keyed guest with its partition's state:
    /// the calls' writes are applied to `state` only if every call succeeds.
    pub async fn process_keyed(
        &mut self,
        messages: &[types::Message],
        state: &mut PartitionStore,
    ) -> Result<Vec<types::Effect>, GuestError> {
        self.lend(state);
        let result = self.process(messages).await;
        self.take_back(state, result.is_ok());
        result
    }

    /// [`Self::process_keyed`] when there is a state, else [`Self::process`].
    pub async fn process_with(
        &mut self,
        messages: &[types::Message],
        state: Option<&mut PartitionStore>,
    ) -> Result<Vec<types::Effect>, GuestError> {
        match state {
            Some(state) => self.process_keyed(messages, state).await,
            None => self.process(messages).await,
        }
    }

    /// A timer call of a keyed guest: an empty batch of `topic`/`partition`
    /// with the wall clock, so that the guest can close windows.
    pub async fn tick(
        &mut self,
        topic: &str,
        partition: i32,
        state: &mut PartitionStore,
    ) -> Result<Vec<types::Effect>, GuestError> {
        let batch = types::WitBatch {
            topic: topic.to_string(),
            partition,
            messages: Vec::new(),
            values: Vec::new(),
            now_ms: types::now_ms(),
        };
        self.lend(state);
        let mut result = self.process_batch(&batch).await;
        if let Ok(effects) = &result {
            if let Err(over) = self.charge(&mut Spent::default(), effects) {
                result = Err(over);
            }
        }
        self.take_back(state, result.is_ok());
        result
    }

    /// Charge a call's effects to the batch's output budget.
    #[allow(clippy::result_large_err)]
    fn charge(&self, spent: &mut Spent, effects: &[types::Effect]) -> Result<(), GuestError> {
        let budget = self.module.inner.engine.settings().output_budget;
        if spent.charge(effects, &budget) {
            Ok(())
        } else {
            Err(self.error(GuestErrorKind::OutputBudget { spent: *spent, budget }))
        }
    }

    /// Move the partition's store into the instance for the coming calls.
    fn lend(&mut self, state: &mut PartitionStore) {
        let store = std::mem::take(state);
        if let Some(live) = self.live.as_mut() {
            live.store.data_mut().partition = Some(store.open());
        } else {
            self.lent = Some(store.open());
        }
    }

    /// Take the store back, with the calls' writes if they succeeded.
    fn take_back(&mut self, state: &mut PartitionStore, succeeded: bool) {
        let session = match self.live.as_mut() {
            Some(live) => live.store.data_mut().partition.take(),
            None => None,
        }
        .or_else(|| self.lent.take());
        if let Some(session) = session {
            *state = if succeeded { session.commit() } else { session.discard() };
        }
    }

    /// Run `process` on a batch and return the guest's effects. Messages of
    /// several partitions are handed over as one batch per partition, in turn.
    pub async fn process(&mut self, messages: &[types::Message]) -> Result<Vec<types::Effect>, GuestError> {
        let answered = self.replies.len();
        let result = self.process_runs(messages).await;
        if result.is_err() {
            // The answers of a failed batch go with its effects.
            self.replies.truncate(answered);
        }
        result
    }

    /// [`Self::process`]: one call per partition's run of messages, charged
    /// to one output budget (answers to HTTP requests included).
    async fn process_runs(&mut self, messages: &[types::Message]) -> Result<Vec<types::Effect>, GuestError> {
        let mut counted = self.replies.len();
        let now_ms = types::now_ms();
        let mut effects = Vec::new();
        let mut spent = Spent::default();
        for run in types::runs(messages) {
            let batch = types::wit_batch(run, now_ms, std::mem::take(&mut self.spare_values));
            let result = self.process_batch(&batch).await;
            if batch.values.capacity() <= MAX_SPARE_VALUES {
                self.spare_values = batch.values;
            }
            let more = result?;
            let replied: usize = self.replies[counted..].iter().map(|r| r.size()).sum();
            counted = self.replies.len();
            spent.bytes = spent.bytes.saturating_add(replied);
            self.charge(&mut spent, &more)?;
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
            let mut live = boot(module, identity, self.config.clone(), self.lookups.clone()).await?;
            // A session lent before a trap dropped the last instance moves in.
            live.store.data_mut().partition = self.lent.take();
            self.live = Some(live);
        }
        let deadline = self.deadline();
        let live = self.armed()?;
        live.store.data_mut().replies.begin(batch.messages.iter().map(|m| m.offset));
        // SAFETY: `boot` checked `process` against exactly these types.
        let process = unsafe { TypedFunc::<(&types::WitBatch,), (ProcessResult,)>::new_unchecked(live.process) };
        let Some(result) = bounded(deadline, process.call_async(&mut live.store, (batch,))).await else {
            return Err(self.discard(GuestErrorKind::Deadline { limit: deadline }));
        };
        let replies = live.store.data_mut().replies.take();
        match result.map(|(r,)| r) {
            Ok(Ok(effects)) => {
                self.replies.extend(replies);
                Ok(effects)
            }
            Ok(Err(e)) => Err(self.error(GuestErrorKind::Batch {
                reason: e.reason,
                culprit: e.culprit.map(|o| (o.partition, o.offset)),
            })),
            Err(trap) => Err(self.trapped(trap)),
        }
    }

    /// The guest's state (`snapshot`), or `None` for a stateless guest.
    pub async fn snapshot(&mut self) -> Result<Option<Vec<u8>>, GuestError> {
        let deadline = self.deadline();
        let live = self.armed()?;
        let Some(funcs) = &live.state else { return Ok(None) };
        match bounded(deadline, funcs.snapshot.call_async(&mut live.store, ())).await {
            Some(Ok((bytes,))) => Ok(Some(bytes)),
            Some(Err(trap)) => Err(self.trapped(trap)),
            None => Err(self.discard(GuestErrorKind::Deadline { limit: deadline })),
        }
    }

    /// Hand the guest a state made by `snapshot` (possibly of another
    /// version); the guest's refusal is returned as `Init` with its reason.
    pub async fn restore(&mut self, bytes: Vec<u8>) -> Result<(), GuestError> {
        let deadline = self.deadline();
        let live = self.armed()?;
        let Some(funcs) = &live.state else {
            return Err(self.error(GuestErrorKind::Init {
                reason: "the module keeps no state (it exports no `state` interface) and cannot take one over".into(),
            }));
        };
        match bounded(deadline, funcs.restore.call_async(&mut live.store, (bytes,))).await {
            Some(Ok((Ok(()),))) => Ok(()),
            Some(Ok((Err(reason),))) => {
                Err(self.error(GuestErrorKind::Init { reason: format!("restore refused: {reason}") }))
            }
            Some(Err(trap)) => Err(self.trapped(trap)),
            None => Err(self.discard(GuestErrorKind::Deadline { limit: deadline })),
        }
    }

    /// The deadline of one call.
    fn deadline(&self) -> Duration {
        self.module.inner.engine.settings().call_deadline
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
    /// entered again, so it is dropped (rebuilt on the next batch). A
    /// partition state lent to it is kept to be given back.
    fn trapped(&mut self, trap: wasmtime::Error) -> GuestError {
        let kind = match &self.live {
            Some(live) => classify(trap, &live.store),
            None => {
                GuestErrorKind::Trap { reason: format!("{trap:#}"), output: String::new(), backtrace: String::new() }
            }
        };
        self.discard(kind)
    }

    /// Drop the live instance (a call that trapped or was abandoned cannot
    /// be entered again; it is rebuilt on the next batch) and return the
    /// error of `kind`. A partition state lent to it is kept to be given back.
    fn discard(&mut self, kind: GuestErrorKind) -> GuestError {
        if let Some(mut live) = self.live.take() {
            if let Some(session) = live.store.data_mut().partition.take() {
                self.lent = Some(session);
            }
        }
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

/// A fresh instance, its exports found and type-checked, `init` not yet called.
struct Booted {
    store: Store<HostState>,
    /// `init`, its type checked.
    init: Func,
    process: Func,
    state: Option<StateFuncs>,
}

/// Instantiate the module in a fresh store and check its exports' types,
/// as every instance is started (and as `inspect` checks a module).
async fn instantiate(
    module: &Module,
    identity: &GuestIdentity,
    lookups: Arc<dyn Lookups>,
) -> Result<Booted, GuestError> {
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
    let deadline = settings.call_deadline;
    let instance = match bounded(deadline, module.inner.pre.instantiate_async(&mut store)).await {
        Some(Ok(instance)) => instance,
        Some(Err(trap)) => return Err(guest_error(identity, classify(trap, &store))),
        None => return Err(guest_error(identity, GuestErrorKind::Deadline { limit: deadline })),
    };
    let link = |e: wasmtime::Error| {
        guest_error(
            identity,
            GuestErrorKind::Init { reason: format!("the module's exports do not match the world: {e:#}") },
        )
    };
    let world = module.world();
    let processor = instance.get_export_index(&mut store, None, &world.interface("processor"));
    let export = |store: &mut Store<HostState>, name: &str| {
        instance
            .get_export_index(&mut *store, processor.as_ref(), name)
            .ok_or_else(|| wasmtime::Error::msg(format!("the module exports no `{name}`")))
    };
    let init = export(&mut store, "init").map_err(link)?;
    let process = export(&mut store, "process").map_err(link)?;
    let init: InitFunc<'_> = instance.get_typed_func(&mut store, init).map_err(|e| link(e.context("`init`")))?;
    let init = *init.func();
    let process_typed: TypedFunc<(&types::WitBatch,), (ProcessResult,)> =
        instance.get_typed_func(&mut store, process).map_err(|e| link(e.context("`process`")))?;
    let process = *process_typed.func();
    let state = if world.is_stateful() {
        let interface = instance.get_export_index(&mut store, None, &world.interface("state"));
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
    Ok(Booted { store, init, process, state })
}

/// Check that `module` can be instantiated in the sandbox and that its
/// exports have the world's types, without calling `init`.
pub(crate) async fn check(module: &Module) -> Result<(), GuestError> {
    let identity =
        GuestIdentity { pipeline: "inspect".into(), module: module.name().to_string(), digest: module.short_digest() };
    instantiate(module, &identity, Arc::new(super::NoLookups)).await.map(|_| ())
}

/// Instantiate the module in a fresh store and call `init`. Takes its inputs
/// by value so the future is `Send` (it holds no reference to an `Instance`).
async fn boot(
    module: Module,
    identity: GuestIdentity,
    config: Vec<(String, String)>,
    lookups: Arc<dyn Lookups>,
) -> Result<Live, GuestError> {
    let Booted { mut store, init, process, state } = instantiate(&module, &identity, lookups).await?;
    let deadline = module.inner.engine.settings().call_deadline;
    // SAFETY: `instantiate` checked `init` against exactly these types.
    let init = unsafe { InitFunc::new_unchecked(init) };
    arm_deadline(&mut store, deadline);
    match bounded(deadline, init.call_async(&mut store, (config.as_slice(),))).await {
        Some(Ok((Ok(()),))) => Ok(Live { store, process, state }),
        Some(Ok((Err(reason),))) => Err(guest_error(&identity, GuestErrorKind::Init { reason })),
        Some(Err(trap)) => Err(guest_error(&identity, classify(trap, &store))),
        None => Err(guest_error(&identity, GuestErrorKind::Deadline { limit: deadline })),
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
    let reason = if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
        format!("the guest called exit with status {}", exit.0)
    } else if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
        trap.to_string()
    } else {
        // Every cause (a handle limit, a copy limit, a host error), the
        // backtrace aside: it has its own field.
        let causes: Vec<String> = error
            .chain()
            .map(|cause| cause.to_string())
            .filter(|cause| !cause.starts_with("error while executing at wasm backtrace"))
            .collect();
        causes.join(": ")
    };
    GuestErrorKind::Trap { reason, output: state.output.take(), backtrace }
}
