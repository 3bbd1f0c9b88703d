//! Carries out a batch's effects: produce records, write sinks, dead-letter
//! rejected and poison messages. `send` enqueues every record at once, in
//! order ("fire"); `Pending::finish` awaits them all together ("collect"):
//! the batch is done only when every delivery is acknowledged and every sink
//! write returned.

use super::stats::Stats;
use crate::engine::types::{Effect, Message};
use crate::engine::Module;
use crate::sinks::{SinkError, Sinks};
use futures::future::join_all;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
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

/// A batch whose records are enqueued in the producer and whose sink writes
/// are ready to go: [`Pending::finish`] waits until all of it is durable.
pub struct Pending {
    deliveries: Vec<(String, DeliveryFuture)>,
    sink_writes: Vec<(String, usize, Option<Vec<u8>>)>,
    sinks: Arc<Sinks>,
    stats: Arc<Stats>,
    produced: u64,
    dead_lettered: u64,
}

impl Pending {
    /// Wait for every acknowledgement and every sink write.
    pub async fn finish(self) -> Result<(), EffectError> {
        let sinks = &self.sinks;
        let writes =
            join_all(self.sink_writes.iter().map(|(sink, points, body)| sinks.write(sink, *points, body.as_deref())));
        let acks = join_all(self.deliveries.into_iter().map(|(topic, delivery)| async move {
            match delivery.await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err((error, _))) => Err(EffectError::Delivery { topic, error }),
                Err(_) => Err(EffectError::Delivery { topic, error: KafkaError::Canceled }),
            }
        }));
        let (acks, writes) = tokio::join!(acks, writes);
        for ack in acks {
            ack?;
        }
        let mut stored = 0;
        for (write, (_, points, _)) in writes.into_iter().zip(&self.sink_writes) {
            write?;
            stored += *points as u64;
        }
        Stats::add(&self.stats.produced, self.produced);
        Stats::add(&self.stats.dead_lettered, self.dead_lettered);
        Stats::add(&self.stats.stored, stored);
        Ok(())
    }
}

impl Executor {
    /// Enqueue `effects` (from `batch`) and the dead letters for `poison` in
    /// the producer, in order, and prepare the sink writes. Records of
    /// successive batches of a partition are enqueued in batch order, so the
    /// producer keeps them in order; waiting for them is [`Pending::finish`].
    pub async fn send(
        &self,
        module: &Module,
        batch: &[Message],
        effects: Vec<Effect>,
        poison: Vec<DeadLetter<'_>>,
    ) -> Result<Pending, EffectError> {
        let by_offset: HashMap<(i32, i64), &Message> = batch.iter().map(|m| ((m.partition, m.offset), m)).collect();
        let find = |partition: i32, offset: i64| {
            by_offset.get(&(partition, offset)).copied().ok_or(EffectError::UnknownOrigin(partition, offset))
        };
        let mut pending = Pending {
            deliveries: Vec::with_capacity(effects.len()),
            sink_writes: Vec::new(),
            sinks: self.sinks.clone(),
            stats: self.stats.clone(),
            produced: 0,
            dead_lettered: 0,
        };
        let mut dead: Vec<DeadLetter<'_>> = poison;
        for effect in effects {
            match effect {
                Effect::Produce(r) => {
                    let topic = match (&r.topic, &self.output_topic) {
                        (Some(t), _) | (None, Some(t)) => t.clone(),
                        (None, None) => return Err(EffectError::NoOutputTopic(self.pipeline.clone())),
                    };
                    let mut record = FutureRecord::to(&topic).payload(r.value.as_slice());
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
                    let delivery = self
                        .enqueue(record)
                        .await
                        .map_err(|error| EffectError::Delivery { topic: topic.clone(), error })?;
                    pending.deliveries.push((topic, delivery));
                    pending.produced += 1;
                }
                Effect::Store(s) => pending.sink_writes.push((s.sink, s.points.len(), None)),
                Effect::StoreEncoded(e) => pending.sink_writes.push((e.sink, e.origins.len(), Some(e.body))),
                Effect::Notify(_) => return Err(EffectError::NotifyUnsupported),
                Effect::Reject(r) => {
                    dead.push(DeadLetter { message: find(r.origin.partition, r.origin.offset)?, reason: r.reason })
                }
            }
        }
        let module_id = format!("{} {}", module.name(), module.short_digest());
        for letter in &dead {
            let record = self.dead_letter_record(letter, &module_id);
            let topic = self.dead_letter_topic.clone();
            let delivery =
                self.enqueue(record).await.map_err(|error| EffectError::Delivery { topic: topic.clone(), error })?;
            pending.deliveries.push((topic, delivery));
        }
        pending.dead_lettered = dead.len() as u64;
        Ok(pending)
    }

    /// Enqueue one record, waiting while the producer's queue is full.
    async fn enqueue(&self, mut record: FutureRecord<'_, [u8], [u8]>) -> Result<DeliveryFuture, KafkaError> {
        let started = std::time::Instant::now();
        loop {
            match self.producer.send_result(record) {
                Ok(delivery) => return Ok(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned))
                    if started.elapsed() < self.delivery_timeout =>
                {
                    record = returned;
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                Err((error, _)) => return Err(error),
            }
        }
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
