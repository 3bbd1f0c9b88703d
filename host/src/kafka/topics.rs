//! The topics a pipeline writes to, checked when it starts: its dead-letter
//! topic exists (created when missing, if the broker lets the host), so a
//! missing one is found before the first bad message rather than at it; and
//! the largest record each of its known output topics takes, so that a
//! record over it is never handed to the producer (the guest's record is
//! dead-lettered instead, a dead letter is truncated to fit).
//!
//! How sizes relate: librdkafka refuses a record larger than the producer's
//! `message.max.bytes` (1,000,000 bytes by default; key, value and headers
//! with about a hundred bytes of framing), and the broker refuses a record
//! batch larger than the topic's `max.message.bytes` (1,048,588 by default).
//! A record's limit here is the smaller of the two, less [`FRAMING`].

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::FromClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::ClientConfig;
use std::collections::HashMap;
use std::time::Duration;

/// librdkafka's default `message.max.bytes`.
pub const DEFAULT_MESSAGE_MAX_BYTES: usize = 1_000_000;
/// Bytes a record's framing takes beyond its key, value and headers.
pub const FRAMING: usize = 256;

/// Why a pipeline's topics are not ready.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// The dead-letter topic is missing and could not be created.
    #[error("dead-letter topic `{topic}` does not exist and could not be created ({error}): create it, or let this host create topics")]
    DeadLetterMissing {
        /// The topic.
        topic: String,
        /// Why it could not be created.
        error: KafkaError,
    },
    /// The broker could not be asked.
    #[error("cannot read the metadata of topic `{topic}`: {error}")]
    Metadata {
        /// The topic.
        topic: String,
        /// What librdkafka said.
        error: KafkaError,
    },
}

/// The largest record each topic takes.
#[derive(Debug, Clone)]
pub struct RecordLimits {
    /// The producer's `message.max.bytes`.
    producer: usize,
    /// Topics' `max.message.bytes`, where known.
    topics: HashMap<String, usize>,
}

impl RecordLimits {
    /// Limits from the producer's settings alone.
    pub fn of_producer(producer: &ClientConfig) -> Self {
        let producer =
            producer.get("message.max.bytes").and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_MESSAGE_MAX_BYTES);
        RecordLimits { producer, topics: HashMap::new() }
    }

    /// The most bytes of key, value and headers one record of `topic` may hold.
    pub fn of(&self, topic: &str) -> usize {
        let limit = self.topics.get(topic).copied().unwrap_or(usize::MAX).min(self.producer);
        limit.saturating_sub(FRAMING)
    }
}

/// Bytes of a record's key, value and headers, as the limits count them.
pub fn record_bytes<'a>(key: Option<&[u8]>, value: &[u8], headers: impl Iterator<Item = (&'a str, &'a [u8])>) -> usize {
    key.map_or(0, <[u8]>::len) + value.len() + headers.map(|(k, v)| k.len() + v.len() + 8).sum::<usize>()
}

/// Check a pipeline's topics: create `dead_letter` when it is missing (with
/// as many partitions as the widest of `inputs`), and read the record limits
/// of `dead_letter` and `outputs`.
pub async fn prepare(
    client: &ClientConfig,
    producer: &ClientConfig,
    dead_letter: &str,
    outputs: &[String],
    inputs: &[String],
) -> Result<RecordLimits, TopicError> {
    let mut limits = RecordLimits::of_producer(producer);
    let metadata = |topic: &str| TopicError::Metadata { topic: topic.to_string(), error: KafkaError::Canceled };
    let probe: BaseConsumer = BaseConsumer::from_config(client)
        .map_err(|error| TopicError::Metadata { topic: dead_letter.to_string(), error })?;
    let widths = {
        let mut names = vec![dead_letter.to_string()];
        names.extend(inputs.iter().cloned());
        tokio::task::spawn_blocking(move || {
            names
                .into_iter()
                .map(|topic| {
                    let found = probe.fetch_metadata(Some(&topic), Duration::from_secs(10));
                    let width = found.map(|m| {
                        m.topics().first().filter(|t| t.error().is_none()).map_or(0, |t| t.partitions().len())
                    });
                    (topic, width)
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|_| metadata(dead_letter))?
    };
    let mut dead_letter_width = 0;
    let mut widest_input = 1;
    for (topic, width) in widths {
        let width = width.map_err(|error| TopicError::Metadata { topic: topic.clone(), error })?;
        if topic == dead_letter {
            dead_letter_width = width;
        } else {
            widest_input = widest_input.max(width);
        }
    }
    let admin: AdminClient<DefaultClientContext> = AdminClient::from_config(client)
        .map_err(|error| TopicError::Metadata { topic: dead_letter.to_string(), error })?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    if dead_letter_width == 0 {
        let missing = |error| TopicError::DeadLetterMissing { topic: dead_letter.to_string(), error };
        let topic = NewTopic::new(dead_letter, widest_input as i32, TopicReplication::Fixed(-1));
        let results = admin.create_topics([&topic], &options).await.map_err(missing)?;
        for result in results {
            match result {
                Ok(_) => tracing::info!(topic = dead_letter, partitions = widest_input, "dead-letter topic created"),
                Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => return Err(missing(KafkaError::AdminOp(code))),
            }
        }
    }
    // Record limits: best effort (a broker that does not answer leaves the producer's).
    let mut topics: Vec<&str> = vec![dead_letter];
    topics.extend(outputs.iter().map(String::as_str));
    let specifiers: Vec<ResourceSpecifier<'_>> = topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
    match admin.describe_configs(&specifiers, &options).await {
        Ok(results) => {
            for (topic, result) in topics.iter().zip(results) {
                let limit = result
                    .ok()
                    .and_then(|r| r.get("max.message.bytes").and_then(|e| e.value.clone()))
                    .and_then(|v| v.parse::<usize>().ok());
                if let Some(limit) = limit {
                    if limit < limits.producer {
                        tracing::warn!(
                            topic,
                            topic_limit = limit,
                            producer_limit = limits.producer,
                            "the topic takes smaller records than the producer makes: set [kafka.properties] \
                             \"message.max.bytes\" at most to the topic's max.message.bytes"
                        );
                    }
                    limits.topics.insert(topic.to_string(), limit);
                }
            }
        }
        Err(error) => tracing::debug!(%error, "cannot read topic configurations; the producer's record limit applies"),
    }
    Ok(limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smaller_limit_applies_less_the_framing() {
        let mut producer = ClientConfig::new();
        producer.set("message.max.bytes", "2000000");
        let mut limits = RecordLimits::of_producer(&producer);
        limits.topics.insert("small".into(), 500_000);
        assert_eq!(limits.of("small"), 500_000 - FRAMING);
        assert_eq!(limits.of("unknown"), 2_000_000 - FRAMING);
        assert_eq!(RecordLimits::of_producer(&ClientConfig::new()).of("t"), DEFAULT_MESSAGE_MAX_BYTES - FRAMING);
        let headers = [("a", &b"xyz"[..])];
        assert_eq!(record_bytes(Some(b"kk"), b"value", headers.into_iter()), 2 + 5 + 1 + 3 + 8);
    }
}
