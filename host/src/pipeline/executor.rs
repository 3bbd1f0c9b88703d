//! Carries out a batch's effects: produce records, write sinks, send
//! notifications (`notifications`), dead-letter rejected and poison messages. `send` enqueues every record at once, in
//! order ("fire"); `Pending::finish` awaits them all together ("collect"):
//! the batch is done only when every delivery is acknowledged and every sink
//! write returned.

use super::stats::Stats;
use crate::engine::types::{Effect, Message, Notification, Origin, OutputRecord};
use crate::engine::Module;
use crate::sinks::influxdb::encode;
use crate::sinks::{lines, Points, SinkError, Sinks};
use futures::future::join_all;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
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
    /// Set when the dead letter had to be cut to fit the topic: what was cut.
    pub const TRUNCATED: &str = "dlq.truncated";
}

/// Most bytes of a dead letter's reason (a guest's text).
const MAX_REASON_BYTES: usize = 4096;

/// `text` cut to at most `max` bytes, on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
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
    /// The pipeline has no notifiers.
    #[error("the guest asked for a notification, but this pipeline has no notifiers")]
    NotifyUnsupported,
    /// The notification ledger could not be read or written.
    #[error("notification ledger: {0}")]
    Ledger(crate::databases::DatabaseError),
    /// An exactly-once pipeline's guest asked for an effect outside Kafka.
    #[error("pipeline `{0}` is exactly-once, and a `{1}` effect cannot join a Kafka transaction (sinks and notifiers are at-least-once: run this guest with delivery = \"at-least-once\")")]
    NotTransactional(String, &'static str),
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
    pub(crate) output_topic: Option<Arc<str>>,
    pub(crate) dead_letter_topic: Arc<str>,
    pub(crate) sinks: Arc<Sinks>,
    pub(crate) delivery_timeout: Duration,
    pub(crate) stats: Arc<Stats>,
    pub(crate) notifiers: Option<Arc<crate::notify::Notifiers>>,
    /// Only Kafka records may be produced (exactly-once).
    pub(crate) exactly_once: bool,
    /// The largest record each topic takes.
    pub(crate) limits: crate::kafka::topics::RecordLimits,
    /// The topics the guest may produce to (`None`: any).
    pub(crate) allowed_topics: Option<std::collections::BTreeSet<String>>,
}

/// Points for one sink and tenant, gathered from a batch's `store` and
/// `store-encoded` effects, with the input message of every line.
struct SinkWrite {
    sink: String,
    tenant: Option<String>,
    body: Vec<u8>,
    origins: Vec<Origin>,
}

/// A batch whose records are enqueued in the producer and whose sink writes
/// are ready to go: [`Pending::finish`] waits until all of it is durable.
pub struct Pending {
    deliveries: Vec<(Arc<str>, DeliveryFuture)>,
    sink_writes: Vec<SinkWrite>,
    notifications: Vec<Notification>,
    /// The batch, kept only when a sink may refuse points or a notification
    /// fail (to dead-letter their messages).
    batch: Option<Arc<Vec<Message>>>,
    module_id: String,
    produced: u64,
    dead_lettered: u64,
}

impl Pending {
    /// Wait for every acknowledgement and every sink write; dead-letter the
    /// messages whose points a sink refused and wait for those too.
    pub async fn finish(self, executor: &Executor) -> Result<(), EffectError> {
        let sinks = &executor.sinks;
        let writes = join_all(
            self.sink_writes
                .iter()
                .map(|w| sinks.write(&w.sink, Points { tenant: w.tenant.as_deref(), body: &w.body })),
        );
        let batch = self.batch.as_deref().map(Vec::as_slice).unwrap_or_default();
        let notified = super::notifications::deliver(executor, self.notifications, batch, &self.module_id);
        let (acks, writes, notified) = tokio::join!(await_deliveries(self.deliveries), writes, notified);
        acks?;
        let notified = notified?;
        let mut stored = 0;
        let mut refused_letters = Vec::new();
        for (write, job) in writes.into_iter().zip(&self.sink_writes) {
            let refused = write?;
            stored += (job.origins.len() - refused.len()) as u64;
            for r in refused {
                let origin = job.origins.get(r.line).copied();
                refused_letters.push((origin, format!("sink `{}` refused the point: {}", job.sink, r.reason)));
            }
        }
        let mut dead_lettered = self.dead_lettered + notified.dead_lettered;
        if !refused_letters.is_empty() {
            let mut deliveries = Vec::new();
            for (origin, reason) in refused_letters {
                let message = origin.and_then(|o| find_message(batch, o.partition, o.offset).ok());
                let Some(message) = message else { continue };
                executor.log_dead_letter(message, &reason, "point refused; message dead-lettered");
                deliveries.push(executor.dead_letter(&DeadLetter { message, reason }, &self.module_id).await?);
                dead_lettered += 1;
            }
            await_deliveries(deliveries).await?;
        }
        Stats::add(&executor.stats.produced, self.produced + notified.produced);
        Stats::add(&executor.stats.notifications_sent, notified.sent);
        Stats::add(&executor.stats.notifications_failed, notified.failed);
        Stats::add(&executor.stats.notifications_refused, notified.refused);
        Stats::add(&executor.stats.notifications_skipped, notified.skipped);
        Stats::add(&executor.stats.dead_lettered, dead_lettered);
        Stats::add(&executor.stats.stored, stored);
        let queued = rdkafka::producer::Producer::in_flight_count(&executor.producer);
        executor.stats.producer_queue.store(i64::from(queued), std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// The gathered write for `sink` and `tenant`, started when missing.
fn sink_write(writes: &mut Vec<SinkWrite>, sink: String, tenant: Option<String>) -> &mut SinkWrite {
    let at = match writes.iter().position(|w| w.sink == sink && w.tenant == tenant) {
        Some(at) => at,
        None => {
            writes.push(SinkWrite { sink, tenant, body: Vec::new(), origins: Vec::new() });
            writes.len() - 1
        }
    };
    &mut writes[at]
}

/// Wait for acknowledgements one after another: the batch is done when the
/// last one is, and most are ready by the time they are polled.
pub(crate) async fn await_deliveries(deliveries: Vec<(Arc<str>, DeliveryFuture)>) -> Result<(), EffectError> {
    for (topic, delivery) in deliveries {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((error, _))) => return Err(EffectError::Delivery { topic: topic.to_string(), error }),
            Err(_) => return Err(EffectError::Delivery { topic: topic.to_string(), error: KafkaError::Canceled }),
        }
    }
    Ok(())
}

/// The message of `batch` (one partition's, in offset order) at `offset`.
pub(super) fn find_message(batch: &[Message], partition: i32, offset: i64) -> Result<&Message, EffectError> {
    batch
        .binary_search_by_key(&offset, |m| m.offset)
        .ok()
        .map(|i| &batch[i])
        .filter(|m| m.partition == partition)
        .ok_or(EffectError::UnknownOrigin(partition, offset))
}

impl Executor {
    /// Enqueue `effects` (from `batch`) and the dead letters for `poison` in
    /// the producer, in order, and prepare the sink writes. Records of
    /// successive batches of a partition are enqueued in batch order, so the
    /// producer keeps them in order; waiting for them is [`Pending::finish`].
    pub async fn send(
        &self,
        module: &Module,
        batch: &Arc<Vec<Message>>,
        effects: Vec<Effect>,
        poison: Vec<DeadLetter<'_>>,
    ) -> Result<Pending, EffectError> {
        let find = |partition: i32, offset: i64| find_message(batch, partition, offset);
        let mut pending = Pending {
            deliveries: Vec::with_capacity(effects.len()),
            sink_writes: Vec::new(),
            notifications: Vec::new(),
            batch: None,
            module_id: format!("{} {}", module.name(), module.short_digest()),
            produced: 0,
            dead_lettered: 0,
        };
        let mut dead: Vec<DeadLetter<'_>> = poison;
        for effect in effects {
            if self.exactly_once {
                let kind = match &effect {
                    Effect::Store(_) | Effect::StoreEncoded(_) => Some("store"),
                    Effect::Notify(_) => Some("notify"),
                    Effect::Produce(_) | Effect::Reject(_) => None,
                };
                if let Some(kind) = kind {
                    return Err(EffectError::NotTransactional(self.pipeline.clone(), kind));
                }
            }
            match effect {
                Effect::Produce(r) => {
                    if let Some(reason) = self.not_allowed(&r).or_else(|| self.too_large(&r)) {
                        // Never handed to the producer (it would refuse it, or
                        // the broker would): its message is dead-lettered.
                        let message = find(r.origin.partition, r.origin.offset)?;
                        if !dead.iter().any(|d| std::ptr::eq(d.message, message)) {
                            dead.push(DeadLetter { message, reason });
                        }
                        continue;
                    }
                    pending.deliveries.push(self.produce(&r).await?);
                    pending.produced += 1;
                }
                Effect::Store(s) => {
                    let job = sink_write(&mut pending.sink_writes, s.sink, s.tenant);
                    for point in &s.points {
                        let mut line = String::with_capacity(160);
                        encode::write_line(&mut line, point);
                        if !job.body.is_empty() {
                            job.body.push(b'\n');
                        }
                        job.body.extend_from_slice(line.as_bytes());
                        job.origins.push(s.origin);
                    }
                }
                Effect::StoreEncoded(e) => {
                    let lines = lines::count(&e.body);
                    if lines != e.origins.len() {
                        // A guest bug: the lines cannot be traced to their messages.
                        let reason = format!("the guest encoded {lines} points with {} origins", e.origins.len());
                        for o in &e.origins {
                            dead.push(DeadLetter { message: find(o.partition, o.offset)?, reason: reason.clone() });
                        }
                        continue;
                    }
                    let job = sink_write(&mut pending.sink_writes, e.sink, e.tenant);
                    if job.body.is_empty() {
                        // The usual case (one encoded effect per sink and tenant): no copy.
                        job.body = e.body;
                    } else {
                        job.body.push(b'\n');
                        job.body.extend_from_slice(&e.body);
                    }
                    job.origins.extend(e.origins);
                }
                Effect::Notify(n) => {
                    if self.notifiers.is_none() {
                        return Err(EffectError::NotifyUnsupported);
                    }
                    find(n.origin.partition, n.origin.offset)?;
                    pending.notifications.push(n);
                }
                Effect::Reject(r) => {
                    dead.push(DeadLetter { message: find(r.origin.partition, r.origin.offset)?, reason: r.reason })
                }
            }
        }
        for letter in &dead {
            self.log_dead_letter(letter.message, &letter.reason, "message rejected by the guest; dead-lettered");
            let delivery = self.dead_letter(letter, &pending.module_id).await?;
            pending.deliveries.push(delivery);
        }
        pending.dead_lettered = dead.len() as u64;
        if !pending.sink_writes.is_empty() || !pending.notifications.is_empty() {
            pending.batch = Some(batch.clone());
        }
        Ok(pending)
    }

    /// Why the guest may not produce the record of a `produce` effect to its
    /// topic, if it may not (`produce_topics`).
    pub(crate) fn not_allowed(&self, r: &OutputRecord) -> Option<String> {
        let allowed = self.allowed_topics.as_ref()?;
        let topic = r.topic.as_deref().or(self.output_topic.as_deref())?;
        (!allowed.contains(topic)).then(|| {
            format!(
                "the guest produced to topic `{}`, which pipeline `{}` may not produce to (produce_topics)",
                crate::text::escape_capped(topic, 256),
                self.pipeline
            )
        })
    }

    /// Why the record of a `produce` effect is too large for its topic, if it is.
    pub(crate) fn too_large(&self, r: &OutputRecord) -> Option<String> {
        let topic = r.topic.as_deref().or(self.output_topic.as_deref())?;
        let headers = r.headers.iter().map(|h| (h.key.as_str(), h.value.as_slice()));
        let bytes = crate::kafka::topics::record_bytes(r.key.as_deref(), &r.value, headers);
        let limit = self.limits.of(topic);
        (bytes > limit).then(|| {
            format!(
                "the guest's record for topic `{topic}` is {bytes} bytes, over the {limit} bytes a record may hold \
                 there (the producer's message.max.bytes and the topic's max.message.bytes)"
            )
        })
    }

    /// Enqueue one record of a `produce` effect (or a notification's follow-up).
    pub(crate) async fn produce(&self, r: &OutputRecord) -> Result<(Arc<str>, DeliveryFuture), EffectError> {
        let topic: Arc<str> = match (&r.topic, &self.output_topic) {
            (Some(t), _) => Arc::from(t.as_str()),
            (None, Some(t)) => t.clone(),
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
        let delivery =
            self.enqueue(record).await.map_err(|error| EffectError::Delivery { topic: topic.to_string(), error })?;
        Ok((topic, delivery))
    }

    /// Log a dead-lettered message with where it came from and why, within
    /// the pipeline's log budget (the reason is the guest's or a sink's
    /// text: escaped and capped).
    pub(crate) fn log_dead_letter(&self, message: &Message, reason: &str, what: &str) {
        if let super::log_budget::Admit::Log { suppressed } = self.stats.log_budget.admit() {
            let reason = crate::text::escape_capped(reason, 512);
            tracing::warn!(
                pipeline = %self.pipeline,
                topic = %message.topic,
                partition = message.partition,
                offset = message.offset,
                %reason,
                suppressed_since_last = suppressed,
                "{what}"
            );
        }
    }

    /// Enqueue the dead letter of one message.
    pub(crate) async fn dead_letter(
        &self,
        letter: &DeadLetter<'_>,
        module_id: &str,
    ) -> Result<(Arc<str>, DeliveryFuture), EffectError> {
        let record = self.dead_letter_record(letter, module_id);
        let topic = self.dead_letter_topic.clone();
        let delivery =
            self.enqueue(record).await.map_err(|error| EffectError::Delivery { topic: topic.to_string(), error })?;
        Ok((topic, delivery))
    }

    /// Enqueue one record, waiting while the producer's queue is full.
    async fn enqueue(&self, mut record: FutureRecord<'_, [u8], [u8]>) -> Result<DeliveryFuture, KafkaError> {
        let mut started = None;
        loop {
            match self.producer.send_result(record) {
                Ok(delivery) => return Ok(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned))
                    if started.get_or_insert_with(std::time::Instant::now).elapsed() < self.delivery_timeout =>
                {
                    record = returned;
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                Err((error, _)) => return Err(error),
            }
        }
    }

    /// The dead letter of `letter`: the message's key, value and headers
    /// with the `dlq.*` headers, cut to fit the dead-letter topic (the value
    /// first, then the message's own headers and key) with `dlq.truncated`
    /// saying what was cut, so that a dead letter is never refused for its size.
    fn dead_letter_record<'a>(
        &'a self,
        letter: &'a DeadLetter<'a>,
        module_id: &'a str,
    ) -> FutureRecord<'a, [u8], [u8]> {
        let m = letter.message;
        let partition = m.partition.to_string();
        let offset = m.offset.to_string();
        let dlq = [
            (headers::REASON, cut(&letter.reason, MAX_REASON_BYTES)),
            (headers::PIPELINE, self.pipeline.as_str()),
            (headers::MODULE, module_id),
            (headers::TOPIC, &*m.topic),
            (headers::PARTITION, partition.as_str()),
            (headers::OFFSET, offset.as_str()),
        ];
        let limit = self.limits.of(&self.dead_letter_topic);
        // Room for the dlq headers and a `dlq.truncated` note.
        let fixed = crate::kafka::topics::record_bytes(None, &[], dlq.iter().map(|(k, v)| (*k, v.as_bytes()))) + 128;
        let own_headers = crate::kafka::topics::record_bytes(
            None,
            &[],
            m.headers.iter().map(|h| (h.key.as_str(), h.value.as_slice())),
        );
        let key_bytes = m.key.as_ref().map_or(0, |k| k.len());
        let room = limit.saturating_sub(fixed);
        let (keep_headers, keep_key) = match room.checked_sub(own_headers + key_bytes) {
            Some(_) => (true, true),
            None if key_bytes <= room => (false, true),
            None => (false, false),
        };
        let room_for_value = room
            .saturating_sub(if keep_headers { own_headers } else { 0 })
            .saturating_sub(if keep_key { key_bytes } else { 0 });
        let value = &m.value[..m.value.len().min(room_for_value)];
        let mut cuts = Vec::new();
        if value.len() < m.value.len() {
            cuts.push(format!("value cut from {} to {} bytes", m.value.len(), value.len()));
        }
        if !keep_headers && !m.headers.is_empty() {
            cuts.push(format!("{} headers ({own_headers} bytes) dropped", m.headers.len()));
        }
        if !keep_key && key_bytes > 0 {
            cuts.push(format!("key ({key_bytes} bytes) dropped"));
        }
        let truncated = cuts.join("; ");
        let mut headers = OwnedHeaders::new_with_capacity(m.headers.len() + 7);
        if keep_headers {
            for h in &m.headers {
                headers = headers.insert(Header { key: &h.key, value: Some(h.value.as_slice()) });
            }
        }
        for (key, value) in dlq {
            headers = headers.insert(Header { key, value: Some(value.as_bytes()) });
        }
        if !truncated.is_empty() {
            headers = headers.insert(Header { key: headers::TRUNCATED, value: Some(truncated.as_bytes()) });
        }
        let mut record = FutureRecord::to(&self.dead_letter_topic).headers(headers);
        if !m.tombstone {
            record = record.payload(value);
        }
        if let (true, Some(key)) = (keep_key, &m.key) {
            record = record.key(key.as_slice());
        }
        record
    }
}
