//! The data types of the WIT contract as the host uses them: the generated
//! ones, except [`Message`]. The contract carries a batch's topic and
//! partition once and its values in one buffer ([`WitBatch`]); the host keeps
//! each consumed message on its own, with the topic shared, and builds the
//! contract's batch when it calls the guest ([`runs`], [`wit_batch`]).

use std::sync::Arc;

pub use super::bindings::monasca::processor::types::*;
pub use super::bindings::monasca::processor::types::{Batch as WitBatch, Message as WitMessage};

/// One consumed Kafka message.
#[derive(Debug, Clone)]
pub struct Message {
    /// Topic it was read from (shared by the messages of a topic).
    pub topic: Arc<str>,
    /// Partition of that topic.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// Kafka timestamp in milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Record value (a view of a buffer shared with the messages consumed
    /// with it: no allocation of its own).
    pub value: bytes::Bytes,
    /// Record headers.
    pub headers: Vec<Header>,
    /// The record had no value at all (a Kafka tombstone, `null`), not an
    /// empty one: `value` is then empty, and a dead letter of it is a
    /// tombstone too.
    pub tombstone: bool,
}

/// `messages` as the contract's batches: one per run of messages of the same
/// topic and partition (the pipeline's batches are one partition's), at most
/// [`CALL_MESSAGES`] messages and [`CALL_BYTES`] of values each, values
/// copied back to back. Each batch carries the host's wall clock.
pub fn wit_batches(messages: &[Message]) -> Vec<WitBatch> {
    let now_ms = now_ms();
    runs(messages).map(|run| wit_batch(run, now_ms, Vec::new())).collect()
}

/// The most messages of one guest call.
pub const CALL_MESSAGES: usize = 128;

/// The most value bytes of one guest call (a single larger message still
/// goes alone).
pub const CALL_BYTES: usize = 256 * 1024;

/// The runs of `messages` that [`wit_batches`] makes batches of: messages of
/// one topic and partition, at most [`CALL_MESSAGES`] of them and
/// [`CALL_BYTES`] of values. A guest keeps what it makes for a batch until it
/// returns; smaller calls keep that in the processor's cache (the
/// notification guest spent a sixth less time per transition on calls of
/// 100 transitions than on calls of 1,000), and cost little more each.
pub fn runs(messages: &[Message]) -> impl Iterator<Item = &[Message]> {
    let mut rest = messages;
    std::iter::from_fn(move || {
        let first = rest.first()?;
        let mut bytes = 0usize;
        let len = rest
            .iter()
            .take(CALL_MESSAGES)
            .take_while(|m| {
                bytes += m.value.len();
                m.partition == first.partition && m.topic == first.topic && bytes <= CALL_BYTES
            })
            .count()
            .max(1);
        let (run, tail) = rest.split_at(len);
        rest = tail;
        Some(run)
    })
}

/// One run as a batch, its values copied into `values` (a caller may hand
/// back the buffer of an earlier batch to reuse its room; what it held is
/// dropped, and a buffer too small is replaced, not grown: growing would
/// copy the stale bytes and round the room up).
pub fn wit_batch(run: &[Message], now_ms: i64, mut values: Vec<u8>) -> WitBatch {
    let needed = run.iter().map(|m| m.value.len()).sum();
    if values.capacity() < needed {
        values = Vec::with_capacity(needed);
    }
    values.clear();
    let messages = run
        .iter()
        .map(|m| {
            values.extend_from_slice(&m.value);
            WitMessage {
                offset: m.offset,
                timestamp_ms: m.timestamp_ms,
                key: m.key.clone(),
                // Within 4 GiB: `runs` cuts at `CALL_BYTES` (a single value
                // of 4 GiB, which Kafka cannot carry, would wrap).
                value_end: values.len() as u32,
                headers: m.headers.clone(),
            }
        })
        .collect();
    let (topic, partition) = run.first().map(|m| (m.topic.to_string(), m.partition)).unwrap_or_default();
    WitBatch { topic, partition, messages, values, now_ms }
}

/// The wall clock in milliseconds since the Unix epoch (0 before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(topic: &str, partition: i32, offset: i64, value: &str) -> Message {
        Message {
            topic: topic.into(),
            partition,
            offset,
            timestamp_ms: None,
            key: None,
            value: bytes::Bytes::copy_from_slice(value.as_bytes()),
            headers: Vec::new(),
            tombstone: false,
        }
    }

    #[test]
    fn runs_of_one_partition_become_one_batch_each_with_values_back_to_back() {
        let messages = [
            message("a", 0, 1, "one"),
            message("a", 0, 2, ""),
            message("a", 0, 3, "three"),
            message("a", 1, 7, "x"),
            message("b", 1, 8, "y"),
        ];
        let batches = wit_batches(&messages);
        assert_eq!(batches.len(), 3);
        assert_eq!((batches[0].topic.as_str(), batches[0].partition), ("a", 0));
        assert_eq!(batches[0].values, b"onethree");
        let ends: Vec<u32> = batches[0].messages.iter().map(|m| m.value_end).collect();
        assert_eq!(ends, [3, 3, 8]);
        assert_eq!(batches[0].messages.iter().map(|m| m.offset).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(
            (batches[1].topic.as_str(), batches[1].partition, batches[1].values.as_slice()),
            ("a", 1, &b"x"[..])
        );
        assert_eq!((batches[2].topic.as_str(), batches[2].partition), ("b", 1));
        assert!(wit_batches(&[]).is_empty());
        let now = now_ms();
        assert!(batches.iter().all(|b| (now - b.now_ms).abs() < 60_000), "batches carry the wall clock");
    }

    #[test]
    fn long_runs_are_cut_into_calls_of_bounded_size_in_offset_order() {
        let many: Vec<Message> = (0..CALL_MESSAGES as i64 * 2 + 5).map(|o| message("a", 0, o, "v")).collect();
        let sizes: Vec<usize> = runs(&many).map(<[Message]>::len).collect();
        assert_eq!(sizes, [CALL_MESSAGES, CALL_MESSAGES, 5]);
        let offsets: Vec<i64> = runs(&many).flatten().map(|m| m.offset).collect();
        assert_eq!(offsets, (0..many.len() as i64).collect::<Vec<_>>(), "every message once, in order");
        let big = "x".repeat(CALL_BYTES / 3 + 1);
        let large: Vec<Message> = (0..5).map(|o| message("a", 0, o, &big)).collect();
        let sizes: Vec<usize> = runs(&large).map(<[Message]>::len).collect();
        assert_eq!(sizes, [2, 2, 1], "cut before the values pass CALL_BYTES");
        let huge = message("a", 0, 9, &"y".repeat(CALL_BYTES + 1));
        assert_eq!(runs(std::slice::from_ref(&huge)).map(<[Message]>::len).collect::<Vec<_>>(), [1], "alone");
    }

    #[test]
    fn a_reused_buffer_holds_only_the_new_batch() {
        let old = wit_batch(&[message("a", 0, 1, "a long old value")], 0, Vec::new()).values;
        let room = old.capacity();
        let batch = wit_batch(&[message("a", 0, 2, "new"), message("a", 0, 3, "er")], 0, old);
        assert_eq!(batch.values, b"newer");
        assert_eq!(batch.values.capacity(), room, "the room is reused");
        let bigger = wit_batch(&[message("a", 0, 4, &"x".repeat(room + 1))], 0, batch.values);
        assert_eq!(bigger.values.len(), room + 1);
    }
}
