//! Carries out a batch's effects: produce records, write sinks, dead-letter
//! rejected and poison messages. Everything is sent at once and awaited
//! together ("fire and collect"); the batch is done only when every delivery
//! is acknowledged and every sink write returned.

use super::stats::Stats;
use crate::engine::types::{Effect, Message};
use crate::engine::Module;
use crate::sinks::{SinkError, Sinks};
use futures::future::join_all;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Header names on dead-lettered messages.
pub mod headers {
    /// Why the message was dead-lettered.
    pub const REASON: &str = "dlq.reason";
    /// The pipeline that refused it.
    pub const PIPELINE: &str = "dlq.pipeline";
    /// Module name and sha256 digest of the guest that refused it.
    pub const MODULE: &str = "dlq.module";
    /// Source topic.
    pub const TOPIC: &str = "dlq.topic";
    /// Source partition.
    pub const PARTITION: &str = "dlq.partition";
    /// Source offset.
    pub const OFFSET: &str = "dlq.offset";
}

/// Why a batch's effects could not be carried out. Every variant stops the
/// pipeline without storing the batch's offsets.
#[derive(Debug, thiserror::Error)]
pub enum EffectError {
    /// A produce was not acknowledged (after librdkafka's own retries).
    #[error("delivery to topic `{topic}` failed: {error}")]
    Delivery {
        /// Destination topic.
        topic: String,
        /// What librdkafka reported.
        error: KafkaError,
    },
    /// The guest produced without a topic and the pipeline has no output topic.
    #[error("the guest produced to the pipeline's output topic, but pipeline `{0}` has no `output_topic`")]
    NoOutputTopic(String),
    /// A sink failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// Notifications are not available in this host yet.
    #[error("the guest asked for a notification, but this host has no notifiers configured")]
    NotifyUnsupported,
    /// An effect names a message that is not in the batch.
    #[error("an effect names partition {0} offset {1}, which is not in the batch")]
    UnknownOrigin(i32, i64),
}

/// A record to send, with its destination topic named for error reports.
type Outgoing<'a> = (String, FutureRecord<'a, [u8], [u8]>);

/// A message to dead-letter and why.
pub struct DeadLetter<'a> {
    /// The message.
    pub message: &'a Message,
    /// Why.
    pub reason: String,
}

/// Executes effects for one pipeline.
pub struct Executor {
    pub(crate) pipeline: String,
    pub(crate) producer: FutureProducer,
    pub(crate) output_topic: Option<String>,
    pub(crate) dead_letter_topic: String,
    pub(crate) sinks: Arc<Sinks>,
    pub(crate) delivery_timeout: Duration,
    pub(crate) stats: Arc<Stats>,
}

impl Executor {
    /// Carry out `effects` (from `batch`) and dead-letter `poison`; return
    /// when all of it is durable.
    pub async fn execute(
        &self,
        module: &Module,
        batch: &[Message],
        effects: &[Effect],
        poison: Vec<DeadLetter<'_>>,
    ) -> Result<(), EffectError> {
        let by_offset: HashMap<(i32, i64), &Message> = batch.iter().map(|m| ((m.partition, m.offset), m)).collect();
        let find = |partition: i32, offset: i64| {
            by_offset.get(&(partition, offset)).copied().ok_or(EffectError::UnknownOrigin(partition, offset))
        };

        let mut records: Vec<Outgoing<'_>> = Vec::new();
        let mut dead: Vec<DeadLetter<'_>> = poison;
        let mut sink_writes: Vec<(&str, usize, Option<&[u8]>)> = Vec::new();
        for effect in effects {
            match effect {
                Effect::Produce(r) => {
                    let topic = match (&r.topic, &self.output_topic) {
                        (Some(t), _) | (None, Some(t)) => t.as_str(),
                        (None, None) => return Err(EffectError::NoOutputTopic(self.pipeline.clone())),
                    };
                    let mut record = FutureRecord::to(topic).payload(r.value.as_slice());
                    if let Some(key) = &r.key {
                        record = record.key(key.as_slice());
                    }
                    if !r.headers.is_empty() {
                        let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
                        for h in &r.headers {
                            headers = headers.insert(Header { key: &h.key, value: Some(h.value.as_slice()) });
                        }
                        record = record.headers(headers);
                    }
                    records.push((topic.to_string(), record));
                }
                Effect::Store(s) => sink_writes.push((&s.sink, s.points.len(), None)),
                Effect::StoreEncoded(e) => sink_writes.push((&e.sink, e.origins.len(), Some(e.body.as_slice()))),
                Effect::Notify(_) => return Err(EffectError::NotifyUnsupported),
                Effect::Reject(r) => dead
                    .push(DeadLetter { message: find(r.origin.partition, r.origin.offset)?, reason: r.reason.clone() }),
            }
        }
        let produced = records.len() as u64;
        let dead_count = dead.len() as u64;
        let module_id = format!("{} {}", module.name(), module.short_digest());
        for letter in &dead {
            records.push((self.dead_letter_topic.clone(), self.dead_letter_record(letter, &module_id)));
        }

        // Fire everything, then collect.
        let deliveries =
            join_all(records.into_iter().map(|(topic, record)| {
                let producer = &self.producer;
                let timeout = self.delivery_timeout;
                async move {
                    producer.send(record, timeout).await.map_err(|(error, _)| EffectError::Delivery { topic, error })
                }
            }));
        let writes = join_all(sink_writes.iter().map(|(sink, points, body)| self.sinks.write(sink, *points, *body)));
        let (deliveries, writes) = tokio::join!(deliveries, writes);
        for delivery in deliveries {
            delivery?;
        }
        let mut stored = 0;
        for (write, (_, points, _)) in writes.into_iter().zip(&sink_writes) {
            write?;
            stored += *points as u64;
        }
        Stats::add(&self.stats.produced, produced);
        Stats::add(&self.stats.dead_lettered, dead_count);
        Stats::add(&self.stats.stored, stored);
        Ok(())
    }

    fn dead_letter_record<'a>(
        &'a self,
        letter: &'a DeadLetter<'a>,
        module_id: &'a str,
    ) -> FutureRecord<'a, [u8], [u8]> {
        let m = letter.message;
        let mut headers = OwnedHeaders::new_with_capacity(m.headers.len() + 6);
        for h in &m.headers {
            headers = headers.insert(Header { key: &h.key, value: Some(h.value.as_slice()) });
        }
        let partition = m.partition.to_string();
        let offset = m.offset.to_string();
        for (key, value) in [
            (headers::REASON, letter.reason.as_str()),
            (headers::PIPELINE, self.pipeline.as_str()),
            (headers::MODULE, module_id),
            (headers::TOPIC, m.topic.as_str()),
            (headers::PARTITION, partition.as_str()),
            (headers::OFFSET, offset.as_str()),
        ] {
            headers = headers.insert(Header { key, value: Some(value.as_bytes()) });
        }
        let mut record = FutureRecord::to(&self.dead_letter_topic).payload(m.value.as_slice()).headers(headers);
        if let Some(key) = &m.key {
            record = record.key(key.as_slice());
        }
        record
    }
}
