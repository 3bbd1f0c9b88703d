//! One partition's worker: cuts the partition's messages into batches (by
//! count, bytes and time) and runs each through the guest, one after another.
//! A batch's effects are then carried out in the background while the next
//! batch is processed (up to `MAX_IN_FLIGHT` batches per partition); offsets
//! are stored in batch order, only over the contiguous prefix of batches whose
//! effects are done, so the stored offset never passes a batch that failed or
//! is still pending. The producer keeps the records of consecutive batches in
//! order (idempotence keeps order across retries). A pipeline with
//! `delay_seconds` holds each message until its Kafka timestamp is that old.
//!
//! With transactions (exactly-once, or a keyed guest) offsets are not stored
//! in the consumer: the worker moves its partition's position in the open
//! transaction. Exactly-once: a batch's records, dead letters and changelog
//! records go into the transaction with its position in one hold of the
//! gate. At-least-once with a keyed guest: the records go out on the shared
//! producer, and once they are acknowledged (in batch order) the batch's
//! changelog records and position go into the transaction. A keyed guest's
//! partition state is restored before the first batch and gets timer calls
//! when the partition is idle.

use super::executor::DeadLetter;
use super::isolate::Unprocessed;
use super::pool::OnFailure;
use super::{isolate, keyed, Shared};
use crate::config::Delivery;
use crate::engine::types::{Effect, Message};
use crate::engine::{GuestErrorKind, Module};
use crate::state::store::Change;
use crate::state::PartitionStore;
use rdkafka::consumer::Consumer;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Batches of one partition whose effects may be in flight at once.
const MAX_IN_FLIGHT: usize = 8;

/// How long until `message` is `delay` old by its Kafka timestamp (`None`:
/// due now, or it has no timestamp). Never more than `delay`: a timestamp
/// in the future (a producer's clock ahead of ours) does not stall the
/// partition beyond one delay.
fn due_in(message: &Message, delay: Duration) -> Option<Duration> {
    let stamp = message.timestamp_ms?;
    let due = stamp.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
    let wait = due - crate::engine::types::now_ms();
    (wait > 0).then(|| Duration::from_millis(wait as u64).min(delay))
}

/// A batch whose effects are being carried out.
struct InFlight {
    /// The batch's last offset (`None`: a timer call).
    last_offset: Option<i64>,
    cut: Instant,
    effects: JoinHandle<Result<(), String>>,
    /// Changelog records to write once the effects are done (at-least-once
    /// with a keyed guest).
    changes: Vec<Change>,
}

/// One partition's worker: where it is and what it holds.
struct Partition {
    shared: Arc<Shared>,
    topic: String,
    partition: i32,
    /// A keyed guest's state (empty otherwise).
    state: PartitionStore,
    /// When the guest last ran for this partition (for timer calls).
    last_call: Instant,
}

impl Drop for Partition {
    fn drop(&mut self) {
        if self.shared.keyed.is_some() {
            self.shared.stats.set_state(&self.topic, self.partition, None);
        }
    }
}

impl Partition {
    /// How long until a timer call is due (`None`: no timer calls now).
    fn timer_nap(&self) -> Option<Duration> {
        let every = self.shared.keyed.as_ref()?.timer?;
        (!self.state.is_empty()).then(|| every.saturating_sub(self.last_call.elapsed()))
    }
}

/// Run until the channel closes (revocation or shutdown: what is queued is
/// processed and every in-flight batch settled first) or a batch fails.
pub async fn run(shared: Arc<Shared>, topic: String, partition: i32, rx: mpsc::Receiver<Vec<Message>>) {
    let limits = shared.batch;
    let mut intake = Intake { rx, held: VecDeque::new(), closed: false };
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    let mut part = Partition {
        shared: shared.clone(),
        topic,
        partition,
        state: PartitionStore::default(),
        last_call: Instant::now(),
    };
    if let Some(keyed) = &shared.keyed {
        match keyed::take_restored(&shared, keyed, &part.topic, partition).await {
            Ok(state) => part.state = state,
            Err(reason) => {
                shared.fail(format!("partition {}/{partition}: cannot restore its state: {reason}", part.topic));
                return;
            }
        }
    }
    let topic = part.topic.clone();
    loop {
        // Wait for the first message of the next batch, settling finished
        // batches meanwhile so an idle partition's offsets are stored too;
        // a keyed guest gets timer calls meanwhile.
        while intake.held.is_empty() && !intake.closed {
            let wake = next_event(&mut intake.rx, &mut in_flight, part.timer_nap()).await;
            if matches!(wake, Wake::Slept) {
                if !tick(&mut part, &mut in_flight).await {
                    return;
                }
                continue;
            }
            if !woke(&part, &mut intake, &mut in_flight, wake).await {
                return;
            }
        }
        if intake.held.is_empty() {
            break;
        }
        // A delayed pipeline waits until its next message is due, settling
        // finished batches meanwhile. Revoked or shutting down (the queue
        // closed): what is not due yet is left unprocessed, its offsets not
        // stored, for the partition's next owner.
        if let Some(delay) = shared.delay {
            // A message is waited for once (at most `delay`), whatever its timestamp says.
            let mut waited_for = None;
            while let Some((offset, wait)) = intake.held.front().and_then(|m| Some((m.offset, due_in(m, delay)?))) {
                if waited_for == Some(offset) {
                    break;
                }
                if intake.closed {
                    intake.held.clear();
                    break;
                }
                match next_event(&mut intake.rx, &mut in_flight, Some(wait)).await {
                    Wake::Slept => waited_for = Some(offset),
                    wake => {
                        if !woke(&part, &mut intake, &mut in_flight, wake).await {
                            return;
                        }
                    }
                }
            }
            if intake.held.is_empty() {
                break;
            }
        }

        // Cut the batch: what is held and queued, then (with `max_wait_ms`)
        // what arrives until a limit or the deadline. Under load the batches
        // fill up on their own while the previous one is being processed.
        let deadline = tokio::time::sleep_until(Instant::now() + Duration::from_millis(limits.max_wait_ms));
        tokio::pin!(deadline);
        let mut batch = Vec::with_capacity(limits.max_messages.min(intake.held.len().max(64)));
        let mut bytes = 0;
        loop {
            let mut not_due = false;
            while batch.len() < limits.max_messages && bytes < limits.max_bytes {
                let Some(message) = intake.held.front() else { break };
                if shared.delay.is_some_and(|delay| !batch.is_empty() && due_in(message, delay).is_some()) {
                    not_due = true;
                    break;
                }
                let Some(message) = intake.held.pop_front() else { break };
                bytes += message.value.len();
                batch.push(message);
            }
            if batch.len() >= limits.max_messages || bytes >= limits.max_bytes || intake.closed || not_due {
                break;
            }
            // Whatever is queued already joins the batch without waiting.
            match intake.rx.try_recv() {
                Ok(chunk) => {
                    intake.take(Some(chunk));
                    continue;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => intake.closed = true,
                Err(mpsc::error::TryRecvError::Empty) if limits.max_wait_ms == 0 => break,
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
            if intake.closed {
                break;
            }
            tokio::select! {
                chunk = intake.rx.recv() => intake.take(chunk),
                _ = &mut deadline => break,
            }
        }

        let cut = Instant::now();
        let keyed = shared.keyed.is_some();
        let (effects, poison, module) = match run_guest(&shared, &batch, keyed.then_some(&mut part.state)).await {
            Ok(done) => done,
            Err(reason) => {
                shared.fail(format!("partition {topic}/{partition}: {reason}"));
                return;
            }
        };
        part.last_call = Instant::now();
        shared.stats.guest_time.observe(cut.elapsed());
        let last_offset = batch[batch.len() - 1].offset;
        if !dispatch(&mut part, &mut in_flight, Arc::new(batch), effects, poison, &module, Some(last_offset), cut).await
        {
            return;
        }
        // Settle what is finished, and wait for the oldest when too many are open.
        while let Some(front) = in_flight.front() {
            if !front.effects.is_finished() && in_flight.len() <= MAX_IN_FLIGHT {
                break;
            }
            let Some(mut oldest) = in_flight.pop_front() else { break };
            let outcome = (&mut oldest.effects).await;
            if !settled(&part, outcome, oldest).await {
                return;
            }
        }
    }
    // The queue is closed: settle everything still in flight, in order.
    while let Some(mut oldest) = in_flight.pop_front() {
        let outcome = (&mut oldest.effects).await;
        if !settled(&part, outcome, oldest).await {
            return;
        }
    }
}

/// Carry out a guest call's effects: enqueue them in order (in the open
/// transaction, with the changelog records and the position, when
/// exactly-once), and wait for their acknowledgements in the background.
#[allow(clippy::too_many_arguments)]
async fn dispatch(
    part: &mut Partition,
    in_flight: &mut VecDeque<InFlight>,
    batch: Arc<Vec<Message>>,
    effects: Vec<Effect>,
    poison: Vec<(usize, String)>,
    module: &Module,
    last_offset: Option<i64>,
    cut: Instant,
) -> bool {
    // The state's changes since the last batch: written with this batch's
    // records (exactly-once) or once they are acknowledged (at-least-once).
    let mut changes = if part.shared.keyed.is_some() { part.state.take_changes() } else { Vec::new() };
    let (shared, topic, partition) = (&part.shared, part.topic.as_str(), part.partition);
    if shared.keyed.is_some() {
        let state = &part.state;
        shared.stats.set_state(topic, partition, Some((state.len() as u64, state.bytes() as u64)));
    }
    let poison: Vec<DeadLetter<'_>> =
        poison.into_iter().map(|(i, reason)| DeadLetter { message: &batch[i], reason }).collect();
    let pending = match (&shared.transactions, shared.delivery) {
        (Some(transactions), Delivery::ExactlyOnce) => {
            let has_records = !effects.is_empty() || !poison.is_empty();
            let _gate = transactions.enter().await;
            if has_records {
                transactions.touched();
            }
            let sent = shared.executor.send(module, &batch, effects, poison).await.map_err(|e| e.to_string());
            match sent {
                Ok(pending) => {
                    transactions.stage_changes(topic, partition, std::mem::take(&mut changes));
                    if let Some(last) = last_offset {
                        transactions.advance(topic, partition, last + 1);
                    }
                    pending
                }
                Err(reason) => {
                    // Nothing of this transaction may be committed now.
                    transactions.poison();
                    shared.fail(format!("partition {topic}/{partition}: {reason}"));
                    return false;
                }
            }
        }
        _ => match shared.executor.send(module, &batch, effects, poison).await {
            Ok(pending) => pending,
            Err(e) => {
                shared.fail(format!("partition {topic}/{partition}: {e}"));
                return false;
            }
        },
    };
    let finishing = shared.clone();
    let effects = tokio::spawn(async move { pending.finish(&finishing.executor).await.map_err(|e| e.to_string()) });
    in_flight.push_back(InFlight { last_offset, cut, effects, changes });
    true
}

/// A timer call: an idle partition's keyed guest is called with no messages
/// so it can close windows; its records go out like a batch's (without a
/// position to move). A failed timer call is logged, its writes dropped.
async fn tick(part: &mut Partition, in_flight: &mut VecDeque<InFlight>) -> bool {
    part.last_call = Instant::now();
    let shared = part.shared.clone();
    let Ok(mut loan) = shared.pool.take().await else { return true };
    let module = loan.instance.module().clone();
    let result = loan.instance.tick(&part.topic, part.partition, &mut part.state).await;
    shared.pool.put_back(loan);
    super::stats::Stats::add(&shared.stats.ticks, 1);
    match result {
        Ok(effects) => {
            let effects = keyed::timer_effects(&shared, effects);
            let cut = Instant::now();
            dispatch(part, in_flight, Arc::new(Vec::new()), effects, Vec::new(), &module, None, cut).await
        }
        Err(e) => {
            shared.stats.guest_failed(&e.kind);
            tracing::warn!(pipeline = %shared.name, topic = %part.topic, partition = part.partition, error = %e.kind, "timer call failed");
            true
        }
    }
}

/// A lookup's database did not answer and the guest failed the batch: wait
/// (100 ms, doubling up to 10 s) before the batch runs again.
async fn lookups_down(shared: &Shared, error: &str, pause: &mut Duration) {
    tracing::warn!(pipeline = %shared.name, %error, retry_in_ms = pause.as_millis() as u64,
        "a lookup's database is unavailable; the batch will run again");
    tokio::time::sleep(*pause).await;
    *pause = (*pause * 2).min(Duration::from_secs(10));
}

/// What woke a worker that was waiting.
enum Wake {
    /// A chunk from the consumer thread (`None`: the queue closed).
    Chunk(Option<Vec<Message>>),
    /// The oldest in-flight batch's effects finished.
    Settled(Result<Result<(), String>, tokio::task::JoinError>),
    /// The nap ran out.
    Slept,
}

/// Wait for the next chunk, for the oldest in-flight batch to settle, or
/// (with `nap`) for that long.
async fn next_event(
    rx: &mut mpsc::Receiver<Vec<Message>>,
    in_flight: &mut VecDeque<InFlight>,
    nap: Option<Duration>,
) -> Wake {
    let settle_front = async {
        match in_flight.front_mut() {
            Some(front) => (&mut front.effects).await,
            None => std::future::pending().await,
        }
    };
    let nap = async {
        match nap {
            Some(wait) => tokio::time::sleep(wait).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        chunk = rx.recv() => Wake::Chunk(chunk),
        outcome = settle_front => Wake::Settled(outcome),
        _ = nap => Wake::Slept,
    }
}

/// Take a chunk in, or settle the oldest batch; false when the pipeline failed.
async fn woke(part: &Partition, intake: &mut Intake, in_flight: &mut VecDeque<InFlight>, wake: Wake) -> bool {
    match wake {
        Wake::Chunk(chunk) => {
            intake.take(chunk);
            true
        }
        Wake::Settled(outcome) => match in_flight.pop_front() {
            Some(done) => settled(part, outcome, done).await,
            None => true,
        },
        Wake::Slept => true,
    }
}

/// A partition's incoming messages: the chunks the consumer thread sends, and
/// what is left of them after the last batch was cut.
struct Intake {
    rx: mpsc::Receiver<Vec<Message>>,
    held: VecDeque<Message>,
    closed: bool,
}

impl Intake {
    fn take(&mut self, chunk: Option<Vec<Message>>) {
        match chunk {
            Some(chunk) => self.held.extend(chunk),
            None => self.closed = true,
        }
    }
}

/// Record a settled batch: store its offset (or, with transactions at
/// least once, put its changelog records and position in the open
/// transaction), or fail the pipeline.
async fn settled(
    part: &Partition,
    outcome: Result<Result<(), String>, tokio::task::JoinError>,
    done: InFlight,
) -> bool {
    let (shared, topic, partition) = (&part.shared, part.topic.as_str(), part.partition);
    match outcome {
        Ok(Ok(())) => {
            if done.last_offset.is_some() {
                super::stats::Stats::add(&shared.stats.batches, 1);
                shared.stats.batch_latency.observe(done.cut.elapsed());
            }
            match (&shared.transactions, shared.delivery) {
                (Some(_), Delivery::ExactlyOnce) => {}
                (Some(transactions), Delivery::AtLeastOnce) => {
                    let _gate = transactions.enter().await;
                    transactions.stage_changes(topic, partition, done.changes);
                    if let Some(last) = done.last_offset {
                        transactions.advance(topic, partition, last + 1);
                    }
                }
                (None, _) => {
                    // rdkafka stores `last + 1`: the next offset to read.
                    if let Some(last) = done.last_offset {
                        if let Err(e) = shared.consumer.store_offset(topic, partition, last) {
                            tracing::debug!(pipeline = %shared.name, %topic, partition, error = %e, "offset not stored (partition no longer assigned)");
                        }
                    }
                }
            }
            true
        }
        Ok(Err(reason)) => {
            shared.fail(format!("partition {topic}/{partition}: {reason}"));
            false
        }
        Err(e) => {
            shared.fail(format!("partition {topic}/{partition}: effect task failed: {e}"));
            false
        }
    }
}

/// Run the guest over a batch, isolating poison messages; also says which
/// module ran it (the pool's module may be swapped while the batch runs).
///
/// On a module on probation a failed batch is not bisected: the pool counts
/// it (and, at the limit, asks for a rollback) and the whole batch runs
/// again, on whatever module the pool then holds.
async fn run_guest(
    shared: &Shared,
    batch: &[Message],
    mut state: Option<&mut PartitionStore>,
) -> Result<(Vec<Effect>, Vec<(usize, String)>, Module), String> {
    let mut pause = Duration::from_millis(100);
    loop {
        let mut loan = shared.pool.take().await.map_err(|e| e.to_string())?;
        let module = loan.instance.module().clone();
        let generation = loan.generation;
        if shared.pool.on_probation(generation) {
            let before = shared.pool.lookups_unavailable();
            let result = loan.instance.process_with(batch, state.as_deref_mut()).await;
            shared.pool.put_back(loan);
            match result {
                Ok(effects) => {
                    shared.pool.succeeded(generation);
                    return Ok((effects, Vec::new(), module));
                }
                Err(e) if matches!(e.kind, GuestErrorKind::Init { .. }) => return Err(e.to_string()),
                Err(e) if shared.pool.lookups_unavailable() > before => {
                    lookups_down(shared, &e.kind.to_string(), &mut pause).await;
                    continue;
                }
                Err(e) => {
                    shared.stats.guest_failed(&e.kind);
                    tracing::warn!(pipeline = %shared.name, module = %module.name(), error = %e.kind, "batch failed on a module on probation");
                    if shared.pool.failed(generation, &e.kind.to_string()) == OnFailure::Retry {
                        // Give a requested rollback a moment to land.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                }
            }
        }
        let budget = match shared.batch.isolation_budget_ms {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        };
        let result = isolate::process(&mut loan.instance, batch, state.as_deref_mut(), &shared.stats, budget, || {
            shared.pool.lookups_unavailable()
        })
        .await;
        shared.pool.put_back(loan);
        let isolated = match result {
            Ok(isolated) => isolated,
            Err(Unprocessed::Init(e)) => return Err(e.to_string()),
            Err(Unprocessed::LookupsUnavailable(e)) => {
                lookups_down(shared, &e.kind.to_string(), &mut pause).await;
                continue;
            }
        };
        if isolated.poison.is_empty() {
            shared.pool.succeeded(generation);
        }
        return Ok((isolated.effects, isolated.poison, module));
    }
}
