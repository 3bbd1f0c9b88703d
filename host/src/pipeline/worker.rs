//! One partition's worker: cuts the partition's messages into batches (by
//! count, bytes and time) and runs each through the guest, one after another.
//! A batch's effects are then carried out in the background while the next
//! batch is processed (up to `MAX_IN_FLIGHT` batches per partition); offsets
//! are stored in batch order, only over the contiguous prefix of batches whose
//! effects are done, so the stored offset never passes a batch that failed or
//! is still pending. The producer keeps the records of consecutive batches in
//! order (idempotence keeps order across retries).

use super::executor::DeadLetter;
use super::{isolate, Shared};
use crate::engine::types::{Effect, Message};
use rdkafka::consumer::Consumer;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Batches of one partition whose effects may be in flight at once.
const MAX_IN_FLIGHT: usize = 4;

/// A batch whose effects are being carried out.
struct InFlight {
    last_offset: i64,
    effects: JoinHandle<Result<(), String>>,
}

/// Run until the channel closes (revocation or shutdown: what is queued is
/// processed and every in-flight batch settled first) or a batch fails.
pub async fn run(shared: Arc<Shared>, topic: String, partition: i32, mut rx: mpsc::Receiver<Message>) {
    let limits = shared.batch;
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    loop {
        // Wait for the first message of the next batch, settling finished
        // batches meanwhile so an idle partition's offsets are stored too.
        let first = loop {
            let settle_front = async {
                match in_flight.front_mut() {
                    Some(front) => (&mut front.effects).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                message = rx.recv() => break message,
                outcome = settle_front => {
                    let done = in_flight.pop_front().map(|b| b.last_offset);
                    if !settled(&shared, &topic, partition, outcome, done) {
                        return;
                    }
                }
            }
        };
        let Some(first) = first else { break };

        let deadline = Instant::now() + Duration::from_millis(limits.max_wait_ms);
        let mut bytes = first.value.len();
        let mut batch = vec![first];
        while batch.len() < limits.max_messages && bytes < limits.max_bytes {
            tokio::select! {
                next = rx.recv() => match next {
                    Some(message) => {
                        bytes += message.value.len();
                        batch.push(message);
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }

        let (effects, poison) = match run_guest(&shared, &batch).await {
            Ok(done) => done,
            Err(reason) => {
                shared.fail(format!("partition {topic}/{partition}: {reason}"));
                return;
            }
        };
        let last_offset = batch[batch.len() - 1].offset;
        // Enqueue in order here; wait for the acknowledgements in the background.
        let poison = poison.into_iter().map(|(i, reason)| DeadLetter { message: &batch[i], reason }).collect();
        let pending = match shared.executor.send(shared.pool.module(), &batch, effects, poison).await {
            Ok(pending) => pending,
            Err(e) => {
                shared.fail(format!("partition {topic}/{partition}: {e}"));
                return;
            }
        };
        let effects = tokio::spawn(async move { pending.finish().await.map_err(|e| e.to_string()) });
        in_flight.push_back(InFlight { last_offset, effects });

        // Settle what is finished, and wait for the oldest when too many are open.
        while let Some(front) = in_flight.front() {
            if !front.effects.is_finished() && in_flight.len() <= MAX_IN_FLIGHT {
                break;
            }
            let Some(oldest) = in_flight.pop_front() else { break };
            let outcome = oldest.effects.await;
            if !settled(&shared, &topic, partition, outcome, Some(oldest.last_offset)) {
                return;
            }
        }
    }
    // The queue is closed: settle everything still in flight, in order.
    while let Some(oldest) = in_flight.pop_front() {
        let outcome = oldest.effects.await;
        if !settled(&shared, &topic, partition, outcome, Some(oldest.last_offset)) {
            return;
        }
    }
}

/// Record a settled batch: store its offset, or fail the pipeline.
fn settled(
    shared: &Shared,
    topic: &str,
    partition: i32,
    outcome: Result<Result<(), String>, tokio::task::JoinError>,
    last_offset: Option<i64>,
) -> bool {
    match outcome {
        Ok(Ok(())) => {
            super::stats::Stats::add(&shared.stats.batches, 1);
            if let Some(last) = last_offset {
                // rdkafka stores `last + 1`: the next offset to read.
                if let Err(e) = shared.consumer.store_offset(topic, partition, last) {
                    tracing::debug!(pipeline = %shared.name, %topic, partition, error = %e, "offset not stored (partition no longer assigned)");
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

/// Run the guest over a batch, isolating poison messages.
async fn run_guest(shared: &Shared, batch: &[Message]) -> Result<(Vec<Effect>, Vec<(usize, String)>), String> {
    let mut loan = shared.pool.take().await.map_err(|e| e.to_string())?;
    let result = isolate::process(&mut loan.instance, batch, &shared.stats).await;
    shared.pool.put_back(loan);
    let isolated = result.map_err(|e| e.to_string())?;
    Ok((isolated.effects, isolated.poison))
}
