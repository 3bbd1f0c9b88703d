//! The changelog: the durable copy of a pipeline's partition states, a
//! compacted Kafka topic (`<pipeline>.changelog` by default).
//!
//! Input partition `p` of any input topic writes to changelog partition `p`
//! (the topic has at least as many partitions as the widest input topic).
//! A record's key names its state unambiguously: a format byte, the input
//! partition (4 bytes, big-endian), the input topic's length (2 bytes) and
//! name, then the guest's key; its value is the guest's value, or none (a
//! tombstone) for a deleted key. Compaction keeps the latest record per key,
//! so the topic holds each partition's state and little more.
//!
//! Records are written in the same Kafka transaction as the offsets of the
//! batches that made them, and read back `read_committed`: a restore sees the
//! state of exactly the committed messages.

use super::store::{PartitionStore, StateLimits};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::time::{Duration, Instant};

/// The first byte of every changelog key (its layout's version).
const FORMAT: u8 = 1;

/// Why the changelog could not be prepared or read.
#[derive(Debug, thiserror::Error)]
pub enum ChangelogError {
    /// Kafka refused a request.
    #[error("changelog `{topic}`: {what}: {error}")]
    Kafka {
        /// The changelog topic.
        topic: String,
        /// What was being done.
        what: &'static str,
        /// What librdkafka said.
        error: KafkaError,
    },
    /// The changelog topic is narrower than an input topic.
    #[error("changelog `{topic}` has {has} partitions but input topic `{input}` has {needs}: add partitions to the changelog (kafka-topics.sh --alter --partitions {needs})")]
    TooNarrow {
        /// The changelog topic.
        topic: String,
        /// Its partitions.
        has: usize,
        /// The widest input topic.
        input: String,
        /// Its partitions.
        needs: usize,
    },
    /// The restore did not reach the end of the partition in time.
    #[error("changelog `{topic}` partition {partition}: restore did not reach the end within {seconds} s")]
    RestoreTimeout {
        /// The changelog topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The time allowed.
        seconds: u64,
    },
}

/// The changelog key of `key` in the state of `topic`/`partition`.
pub fn record_key(topic: &str, partition: i32, key: &[u8]) -> Vec<u8> {
    let name = topic.as_bytes();
    let mut out = Vec::with_capacity(7 + name.len() + key.len());
    out.push(FORMAT);
    out.extend_from_slice(&partition.to_be_bytes());
    // Kafka topic names are at most 249 bytes.
    out.extend_from_slice(&(name.len().min(u16::MAX as usize) as u16).to_be_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(key);
    out
}

/// The (topic, partition, key) a changelog key names; `None` for a key of
/// another layout.
pub fn parse_key(record: &[u8]) -> Option<(&[u8], i32, &[u8])> {
    let (&format, rest) = record.split_first()?;
    if format != FORMAT || rest.len() < 6 {
        return None;
    }
    let partition = i32::from_be_bytes(rest[..4].try_into().ok()?);
    let len = u16::from_be_bytes(rest[4..6].try_into().ok()?) as usize;
    let rest = &rest[6..];
    (rest.len() >= len).then(|| (&rest[..len], partition, &rest[len..]))
}

/// Make sure the changelog topic exists, compacted, with at least as many
/// partitions as the widest of `inputs`; created when missing.
pub async fn ensure_topic(config: &ClientConfig, changelog: &str, inputs: &[String]) -> Result<(), ChangelogError> {
    let kafka = |what, error| ChangelogError::Kafka { topic: changelog.to_string(), what, error };
    let probe: BaseConsumer = config.create().map_err(|e| kafka("cannot create a client", e))?;
    let widths = {
        let changelog = changelog.to_string();
        let inputs = inputs.to_vec();
        tokio::task::spawn_blocking(move || {
            let width = |topic: &str| -> Result<usize, KafkaError> {
                let metadata = probe.fetch_metadata(Some(topic), Duration::from_secs(10))?;
                Ok(metadata.topics().first().filter(|t| t.error().is_none()).map_or(0, |t| t.partitions().len()))
            };
            let mut widest = (String::new(), 0);
            for input in &inputs {
                let n = width(input)?;
                if n > widest.1 {
                    widest = (input.clone(), n);
                }
            }
            Ok::<_, KafkaError>((width(&changelog)?, widest))
        })
        .await
        .map_err(|_| kafka("metadata", KafkaError::Canceled))?
        .map_err(|e| kafka("cannot read topic metadata", e))?
    };
    let (has, (input, needs)) = widths;
    let needs = needs.max(1);
    if has >= needs {
        return Ok(());
    }
    if has > 0 {
        return Err(ChangelogError::TooNarrow { topic: changelog.to_string(), has, input, needs });
    }
    let admin: AdminClient<DefaultClientContext> = config.create().map_err(|e| kafka("cannot create a client", e))?;
    let topic = NewTopic::new(changelog, needs as i32, TopicReplication::Fixed(-1))
        .set("cleanup.policy", "compact")
        .set("min.compaction.lag.ms", "60000");
    let results = admin
        .create_topics([&topic], &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))))
        .await
        .map_err(|e| kafka("cannot create the topic", e))?;
    for result in results {
        match result {
            Ok(_) => tracing::info!(topic = changelog, partitions = needs, "changelog topic created"),
            Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(kafka("cannot create the topic", KafkaError::AdminOp(code))),
        }
    }
    Ok(())
}

/// True once the consumer's position in the partition reached `high`.
fn at_end(consumer: &BaseConsumer<QuietEnd>, changelog: &str, partition: i32, high: i64) -> bool {
    let Ok(positions) = consumer.position() else { return false };
    let position = positions.find_partition(changelog, partition).map(|p| p.offset());
    matches!(position, Some(Offset::Offset(at)) if at >= high)
}

/// The restore consumer's context: reaching the end of the partition is
/// what it waits for, not an error to log.
struct QuietEnd;

impl rdkafka::ClientContext for QuietEnd {
    fn error(&self, error: KafkaError, reason: &str) {
        let end = matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(rdkafka::types::RDKafkaErrorCode::PartitionEOF)
        );
        if !end {
            tracing::warn!(%error, reason, "changelog restore: Kafka error");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for QuietEnd {}

/// What a restore read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Restored {
    /// Changelog records read (of every state sharing the partition).
    pub records: u64,
    /// Keys the restored state holds.
    pub keys: usize,
    /// How long it took.
    pub elapsed: Duration,
}

/// Rebuild the state of input `topic`/`partition` from changelog partition
/// `partition`, read committed from its beginning to its end. Blocking: run
/// it off the runtime's threads.
pub fn restore(
    config: &ClientConfig,
    changelog: &str,
    topic: &str,
    partition: i32,
    limits: StateLimits,
    timeout: Duration,
) -> Result<(PartitionStore, Restored), ChangelogError> {
    let started = Instant::now();
    let kafka = |what, error| ChangelogError::Kafka { topic: changelog.to_string(), what, error };
    let mut config = config.clone();
    // librdkafka wants a group for `assign`; nothing joins it or commits.
    config
        .set("group.id", "monasca-wasm-changelog-restore")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        // One partition read end to end: large fetches, few round trips.
        .set("max.partition.fetch.bytes", "16777216")
        .set("fetch.max.bytes", "67108864")
        .set("queued.max.messages.kbytes", "262144")
        // The end is a fetch that comes back empty: do not wait long for it.
        .set("fetch.wait.max.ms", "10");
    let consumer: BaseConsumer<QuietEnd> =
        config.create_with_context(QuietEnd).map_err(|e| kafka("cannot create a consumer", e))?;
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(changelog, partition, Offset::Beginning)
        .map_err(|e| kafka("cannot assign the partition", e))?;
    consumer.assign(&assignment).map_err(|e| kafka("cannot assign the partition", e))?;
    let mut store = PartitionStore::new(limits);
    let mut records = 0u64;
    let deadline = started + timeout;
    // An empty partition (the usual first start) needs no reading at all.
    // The end is the log's true end: a `read_committed` client is told the
    // last stable offset instead, which a dead host's open transaction holds
    // back while records committed after it already belong to the state.
    let mut probe_config = config.clone();
    probe_config.set("isolation.level", "read_uncommitted");
    let probe: BaseConsumer<QuietEnd> =
        probe_config.create_with_context(QuietEnd).map_err(|e| kafka("cannot create a consumer", e))?;
    let (low, high) = probe
        .fetch_watermarks(changelog, partition, timeout)
        .map_err(|e| kafka("cannot read the partition's offsets", e))?;
    drop(probe);
    if high <= low {
        return Ok((store, Restored { records: 0, keys: 0, elapsed: started.elapsed() }));
    }
    loop {
        if Instant::now() >= deadline {
            return Err(ChangelogError::RestoreTimeout {
                topic: changelog.to_string(),
                partition,
                seconds: timeout.as_secs(),
            });
        }
        match consumer.poll(Duration::from_millis(20)) {
            // The end: the high watermark as read before (a transaction
            // marker may be the last record: the position passes it). Not
            // the end of what is stable: a dead host's open transaction holds
            // `read_committed` readers back until the broker aborts it
            // (`transaction.timeout_ms`), and the records committed after it
            // by the host that followed belong to the state too.
            None | Some(Err(KafkaError::PartitionEOF(_))) if at_end(&consumer, changelog, partition, high) => break,
            None | Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => {
                tracing::warn!(changelog, partition, error = %e, "changelog restore: Kafka error (retrying)")
            }
            Some(Ok(m)) => {
                records += 1;
                if let Some((of_topic, of_partition, key)) = m.key().and_then(parse_key) {
                    if of_partition == partition && of_topic == topic.as_bytes() {
                        store.restore_entry(key.to_vec(), m.payload().map(<[u8]>::to_vec));
                    }
                }
                if m.offset() + 1 >= high {
                    break;
                }
            }
        }
    }
    let restored = Restored { records, keys: store.len(), elapsed: started.elapsed() };
    tracing::debug!(changelog, partition, records, ms = restored.elapsed.as_millis() as u64, "changelog read");
    Ok((store, restored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_topic_partition_and_key() {
        let key = record_key("metrics", 7, b"cpu\x00x");
        assert_eq!(parse_key(&key), Some((&b"metrics"[..], 7, &b"cpu\x00x"[..])));
        assert_eq!(parse_key(&record_key("t", -1, b"")), Some((&b"t"[..], -1, &b""[..])));
        assert_eq!(parse_key(b""), None);
        assert_eq!(parse_key(&[2, 0, 0, 0, 1, 0, 1, b't']), None, "another layout");
        assert_eq!(parse_key(&[1, 0, 0, 0, 1, 0, 9, b't']), None, "name cut short");
    }
}
