//! A partition worker's part in a keyed guest's state and in the pipeline's
//! transactions: restoring the partition's store before its first batch
//! (a batch's changed keys are staged with its position in the open
//! transaction, see `transaction`), and the timer calls that let an idle partition's guest close
//! its windows.

use super::Shared;
use crate::engine::types::Effect;
use crate::state::changelog;
use crate::state::{PartitionStore, StateLimits};
use rdkafka::ClientConfig;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Restores under way, by partition: started when the partition is
/// assigned, awaited by its worker before its first batch.
type Pending = std::sync::Mutex<HashMap<(String, i32), JoinHandle<Result<PartitionStore, String>>>>;

/// What a pipeline running a keyed guest needs to keep its state.
pub struct KeyedState {
    /// Restores started at assignment, not yet taken by their workers.
    pub pending: Pending,
    /// The changelog topic.
    pub changelog: String,
    /// Bounds of one partition's state.
    pub limits: StateLimits,
    /// Timer calls after this long without a message (`None`: none).
    pub timer: Option<Duration>,
    /// Longest a restore may take.
    pub restore_timeout: Duration,
    /// Kafka client settings for the restore consumer.
    pub client: ClientConfig,
}

/// Start restoring newly assigned partitions, all at once (each worker then
/// waits only for its own).
pub fn start_restores(shared: &Arc<Shared>, partitions: &[(String, i32)]) {
    let Some(keyed) = &shared.keyed else { return };
    let mut pending = keyed.pending.lock().unwrap_or_else(|p| p.into_inner());
    for (topic, partition) in partitions {
        let (task_shared, task_topic, partition) = (shared.clone(), topic.clone(), *partition);
        let task = tokio::spawn(async move {
            let Some(keyed) = &task_shared.keyed else { return Ok(PartitionStore::default()) };
            restore(&task_shared, keyed, &task_topic, partition).await
        });
        if let Some(replaced) = pending.insert((topic.clone(), partition), task) {
            replaced.abort();
        }
    }
}

/// Forget the restores of partitions that went.
pub fn cancel_restores(shared: &Shared, partitions: &[(String, i32)]) {
    let Some(keyed) = &shared.keyed else { return };
    let mut pending = keyed.pending.lock().unwrap_or_else(|p| p.into_inner());
    for key in partitions {
        if let Some(task) = pending.remove(key) {
            task.abort();
        }
    }
}

/// The partition's store: the restore started at assignment, or one started now.
pub async fn take_restored(
    shared: &Shared,
    keyed: &KeyedState,
    topic: &str,
    partition: i32,
) -> Result<PartitionStore, String> {
    let started = keyed.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&(topic.to_string(), partition));
    match started {
        Some(task) => task.await.map_err(|e| format!("restore task failed: {e}"))?,
        None => restore(shared, keyed, topic, partition).await,
    }
}

/// Rebuild the partition's store from the changelog, once the group's
/// committed offset of the partition is stable: a transaction of its
/// previous owner that still holds changelog records of it is committed or
/// aborted by then (the consumer reads `read_committed`, which asks the
/// broker for stable offsets), so the state read matches the offset the
/// partition resumes from.
async fn restore(shared: &Shared, keyed: &KeyedState, topic: &str, partition: i32) -> Result<PartitionStore, String> {
    let (client, changelog, topic_name) = (keyed.client.clone(), keyed.changelog.clone(), topic.to_string());
    let (limits, timeout) = (keyed.limits, keyed.restore_timeout);
    let consumer = shared.consumer.clone();
    let restored = tokio::task::spawn_blocking(move || {
        let mut ours = rdkafka::TopicPartitionList::new();
        ours.add_partition(&topic_name, partition);
        if let Err(e) = rdkafka::consumer::Consumer::committed_offsets(&*consumer, ours, timeout) {
            return Err(format!("cannot read the committed offset: {e}"));
        }
        changelog::restore(&client, &changelog, &topic_name, partition, limits, timeout).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("restore task failed: {e}"))??;
    let (store, read) = restored;
    shared.stats.restore_time.observe(read.elapsed);
    super::stats::Stats::add(&shared.stats.restores, 1);
    shared.stats.set_state(topic, partition, Some((store.len() as u64, store.bytes() as u64)));
    tracing::info!(pipeline = %shared.name, %topic, partition, keys = read.keys, records = read.records,
        ms = read.elapsed.as_millis() as u64, "partition state restored from the changelog");
    Ok(store)
}

/// Keep a timer call's `produce` effects; anything else names no message of
/// a batch (a timer call has none) and is dropped with a warning.
pub fn timer_effects(shared: &Shared, effects: Vec<Effect>) -> Vec<Effect> {
    let before = effects.len();
    let kept: Vec<Effect> = effects.into_iter().filter(|e| matches!(e, Effect::Produce(_))).collect();
    if kept.len() < before {
        tracing::warn!(pipeline = %shared.name, dropped = before - kept.len(),
            "a timer call may only produce records; its other effects were dropped");
    }
    kept
}
