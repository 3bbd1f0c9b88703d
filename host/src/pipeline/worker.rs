//! One partition's worker: cuts the partition's messages into batches (by
//! count, bytes and time), runs each batch through the guest, carries out its
//! effects, and only then stores the batch's offset. Batches of a partition
//! run strictly one after another, so the stored offset never passes a batch
//! whose effects are not done.

use super::executor::DeadLetter;
use super::{isolate, Shared};
use crate::engine::types::Message;
use rdkafka::consumer::Consumer;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Run until the channel closes (revocation or shutdown: the queued
/// messages are processed first) or a batch fails for good.
pub async fn run(shared: Arc<Shared>, topic: String, partition: i32, mut rx: mpsc::Receiver<Message>) {
    let limits = shared.batch;
    loop {
        let Some(first) = rx.recv().await else { return };
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
        if let Err(reason) = process_batch(&shared, &batch).await {
            shared.fail(format!("partition {topic}/{partition}: {reason}"));
            return;
        }
        let last = batch[batch.len() - 1].offset;
        // rdkafka stores `last + 1`: the next offset to read.
        if let Err(e) = shared.consumer.store_offset(&topic, partition, last) {
            tracing::debug!(pipeline = %shared.name, %topic, partition, error = %e, "offset not stored (partition no longer assigned)");
        }
    }
}

async fn process_batch(shared: &Shared, batch: &[Message]) -> Result<(), String> {
    let mut loan = shared.pool.take().await.map_err(|e| e.to_string())?;
    let result = isolate::process(&mut loan.instance, batch, &shared.stats).await;
    shared.pool.put_back(loan);
    let isolated = result.map_err(|e| e.to_string())?;
    let poison =
        isolated.poison.into_iter().map(|(index, reason)| DeadLetter { message: &batch[index], reason }).collect();
    shared.executor.execute(shared.pool.module(), batch, &isolated.effects, poison).await.map_err(|e| e.to_string())?;
    super::stats::Stats::add(&shared.stats.batches, 1);
    Ok(())
}
