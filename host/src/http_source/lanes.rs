//! The lanes of an HTTP pipeline: each takes the requests waiting in the
//! queue (up to `max_batch_requests`), runs the guest on them as one batch
//! (poison isolated as for Kafka messages), produces the records of the
//! requests that succeed, and answers each request once its records are
//! acknowledged. A request the guest answers with 400 or more, or fails on,
//! has none of its records produced: a client told its request was refused
//! never finds it published. (A 503 for Kafka's sake is different: records
//! already handed to the producer may still land, so a client that retries
//! may publish twice, as with the originals.)

use super::{Answer, Pending, Shared};
use crate::engine::http_reply::Reply;
use crate::engine::types::{Effect, Message, OutputRecord};
use crate::engine::Module;
use crate::pipeline::executor::DeadLetter;
use crate::pipeline::isolate::{self, Unprocessed};
use crate::pipeline::stats::Stats;
use bytes::Bytes;
use rdkafka::producer::DeliveryFuture;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::task::JoinSet;

/// Start one lane per guest instance; the future ends when every lane has
/// (once the queue is closed and empty).
pub(super) fn spawn(shared: Arc<Shared>, receiver: mpsc::Receiver<Pending>) -> impl std::future::Future<Output = ()> {
    let receiver = Arc::new(Mutex::new(receiver));
    let mut lanes = JoinSet::new();
    for _ in 0..shared.lanes.max(1) {
        lanes.spawn(lane(shared.clone(), receiver.clone()));
    }
    async move { while lanes.join_next().await.is_some() {} }
}

async fn lane(shared: Arc<Shared>, receiver: Arc<Mutex<mpsc::Receiver<Pending>>>) {
    loop {
        let batch = {
            let mut queue = receiver.lock().await;
            let Some(first) = queue.recv().await else { return };
            let mut batch = vec![first];
            while batch.len() < shared.config.max_batch_requests {
                match queue.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            batch
        };
        handle(&shared, batch).await;
    }
}

/// What becomes of one request of a batch.
#[derive(Default)]
struct Outcome {
    /// The guest's answer.
    reply: Option<Reply>,
    /// Why it failed, when it did (this answer replaces the guest's).
    failure: Option<Answer>,
    /// Its records, to produce when it has not failed.
    records: Vec<OutputRecord>,
    /// The acknowledgements of its records.
    deliveries: Vec<(Arc<str>, DeliveryFuture)>,
}

impl Outcome {
    /// True when its records must not be produced.
    fn refused(&self) -> bool {
        self.failure.is_some() || self.reply.as_ref().is_some_and(|r| r.status >= 400)
    }

    fn fail(&mut self, answer: Answer) {
        self.failure.get_or_insert(answer);
    }
}

fn internal_error() -> Answer {
    Answer::error(500, "Internal Server Error", "the API could not process this request")
}

async fn handle(shared: &Arc<Shared>, batch: Vec<Pending>) {
    let first = shared.next_offset.fetch_add(batch.len() as i64, Ordering::Relaxed);
    let mut messages = Vec::with_capacity(batch.len());
    let mut waiting = Vec::with_capacity(batch.len());
    for (i, pending) in batch.into_iter().enumerate() {
        let mut message = pending.message;
        message.offset = first + i as i64;
        messages.push(message);
        waiting.push((pending.answer, pending.arrived));
    }
    Stats::add(&shared.stats.consumed, messages.len() as u64);
    let started = Instant::now();
    let guest = run_guest(shared, &messages).await;
    shared.stats.guest_time.observe(started.elapsed());
    let (effects, poison, replies, module) = match guest {
        Ok(done) => done,
        Err(answer) => {
            for (tx, arrived) in waiting {
                send(shared, tx, arrived, answer.clone());
            }
            return;
        }
    };
    let module_id = format!("{} {}", module.name(), module.short_digest());
    let index = |offset: i64| usize::try_from(offset - first).ok().filter(|&i| i < messages.len());
    let mut outcomes: Vec<Outcome> = messages.iter().map(|_| Outcome::default()).collect();
    let mut letters: Vec<(usize, String)> = Vec::new();
    for reply in replies {
        if let Some(i) = index(reply.offset) {
            outcomes[i].reply = Some(reply);
        }
    }
    for (i, reason) in poison {
        outcomes[i].fail(internal_error());
        letters.push((i, reason));
    }
    for effect in effects {
        let (origin, kind) = match &effect {
            Effect::Produce(r) => (r.origin, "produce"),
            Effect::Reject(r) => (r.origin, "reject"),
            Effect::Store(s) => (s.origin, "store"),
            Effect::StoreEncoded(e) => (
                e.origins.first().copied().unwrap_or(crate::engine::types::Origin { partition: 0, offset: -1 }),
                "store",
            ),
            Effect::Notify(n) => (n.origin, "notify"),
        };
        let Some(i) = index(origin.offset) else {
            tracing::warn!(pipeline = %shared.name, offset = origin.offset, "the guest named no request of the batch; effect dropped");
            continue;
        };
        match effect {
            Effect::Produce(r) => {
                let refusal = shared.executor.not_allowed(&r).or_else(|| shared.executor.too_large(&r));
                match refusal {
                    Some(reason) => {
                        outcomes[i].fail(internal_error());
                        letters.push((i, reason));
                    }
                    None => outcomes[i].records.push(r),
                }
            }
            Effect::Reject(r) => {
                if outcomes[i].reply.is_none() {
                    let reason = crate::text::escape_capped(&r.reason, 1024);
                    outcomes[i].fail(Answer::error(400, "Bad Request", &reason));
                }
            }
            _ => {
                let reason = format!("an HTTP pipeline carries out produce effects only; the guest asked for `{kind}`");
                outcomes[i].fail(internal_error());
                letters.push((i, reason));
            }
        }
    }
    for (i, reason) in &letters {
        dead_letter(shared, &messages[*i], reason, &module_id).await;
    }
    // Records only for the requests that stand, in the guest's order.
    for outcome in outcomes.iter_mut().filter(|o| !o.refused()) {
        for record in std::mem::take(&mut outcome.records) {
            match shared.executor.produce(&record).await {
                Ok(delivery) => outcome.deliveries.push(delivery),
                Err(e) => {
                    tracing::warn!(pipeline = %shared.name, error = %e, "a record could not be enqueued");
                    outcome.fail(Answer::unavailable(shared.config.retry_after_s, "Kafka cannot take the request now"));
                    break;
                }
            }
        }
    }
    // The lane goes on with the next batch while these are acknowledged;
    // each request is answered as soon as its own records are, all of them
    // by one deadline.
    let shared = shared.clone();
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(shared.config.ack_timeout_ms);
        let answers = outcomes.into_iter().zip(waiting).map(|(outcome, (tx, arrived))| {
            let shared = &shared;
            async move {
                let answer = settle(shared, outcome, deadline).await;
                send(shared, tx, arrived, answer);
            }
        });
        futures::future::join_all(answers).await;
        Stats::add(&shared.stats.batches, 1);
        shared.stats.batch_latency.observe(started.elapsed());
    });
}

/// The answer of a request once its records are acknowledged (or not).
async fn settle(shared: &Shared, outcome: Outcome, deadline: tokio::time::Instant) -> Answer {
    if let Some(failure) = outcome.failure {
        return failure;
    }
    let produced = outcome.deliveries.len() as u64;
    let acked =
        tokio::time::timeout_at(deadline, crate::pipeline::executor::await_deliveries(outcome.deliveries)).await;
    match acked {
        Ok(Ok(())) => {
            Stats::add(&shared.stats.produced, produced);
            match outcome.reply {
                Some(reply) => Answer { status: reply.status, headers: reply.headers, body: Bytes::from(reply.body) },
                None => Answer { status: 204, headers: Vec::new(), body: Bytes::new() },
            }
        }
        Ok(Err(e)) => {
            tracing::warn!(pipeline = %shared.name, error = %e, "a record was not acknowledged; the request is answered 503");
            Answer::unavailable(shared.config.retry_after_s, "Kafka did not acknowledge the request's records")
        }
        Err(_) => {
            tracing::warn!(pipeline = %shared.name, "acknowledgements took too long; the request is answered 503");
            Answer::unavailable(shared.config.retry_after_s, "Kafka did not acknowledge the request's records in time")
        }
    }
}

fn send(shared: &Shared, tx: oneshot::Sender<Answer>, arrived: Instant, answer: Answer) {
    shared.stats.http_answered(answer.status, arrived.elapsed());
    // The client may have gone: nothing to do then.
    let _ = tx.send(answer);
}

/// Dead-letter a request the guest failed on, or whose effects the host
/// refused (waited for in the background: the client's answer is 500 anyway).
async fn dead_letter(shared: &Shared, message: &Message, reason: &str, module_id: &str) {
    tracing::warn!(pipeline = %shared.name, reason = %crate::text::escape_capped(reason, 512), "request dead-lettered");
    let letter = DeadLetter { message, reason: reason.to_string() };
    match shared.executor.dead_letter(&letter, module_id).await {
        Ok((_, delivery)) => {
            Stats::add(&shared.stats.dead_lettered, 1);
            let pipeline = shared.name.clone();
            tokio::spawn(async move {
                if !matches!(delivery.await, Ok(Ok(_))) {
                    tracing::error!(%pipeline, "a dead letter was not acknowledged");
                }
            });
        }
        Err(e) => tracing::error!(pipeline = %shared.name, error = %e, "a dead letter could not be enqueued"),
    }
}

type GuestResult = (Vec<Effect>, Vec<(usize, String)>, Vec<Reply>, Module);

/// Run the guest on the batch with poison isolation; an answer for every
/// request when the guest cannot run at all.
async fn run_guest(shared: &Shared, messages: &[Message]) -> Result<GuestResult, Answer> {
    let unavailable = |what: &str| Answer::unavailable(shared.config.retry_after_s, what);
    let mut loan = shared.pool.take().await.map_err(|e| {
        tracing::error!(pipeline = %shared.name, error = %e, "no guest instance");
        unavailable("the API cannot run now")
    })?;
    let module = loan.instance.module().clone();
    let generation = loan.generation;
    let result = isolate::process(&mut loan.instance, messages, None, &shared.stats, shared.isolation_budget, || {
        shared.pool.lookups_unavailable()
    })
    .await;
    let replies = loan.instance.take_replies();
    shared.pool.put_back(loan);
    match result {
        Ok(isolated) => {
            match isolated.poison.first() {
                None => shared.pool.succeeded(generation),
                Some((_, reason)) if shared.pool.on_probation(generation) => {
                    shared.pool.failed(generation, reason);
                }
                Some(_) => {}
            }
            Ok((isolated.effects, isolated.poison, replies, module))
        }
        Err(Unprocessed::Init(e)) => {
            tracing::error!(pipeline = %shared.name, error = %e, "the guest cannot start");
            Err(unavailable("the API cannot start"))
        }
        Err(Unprocessed::LookupsUnavailable(e)) => {
            tracing::warn!(pipeline = %shared.name, error = %e.kind, "a lookup's database is unavailable");
            Err(unavailable("a database the API needs is unavailable"))
        }
    }
}
