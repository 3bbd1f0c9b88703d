//! What a guest asks the host to do, and the [`Effects`] collector that
//! builds those requests.

use crate::message::{Header, Message, Origin};

/// A typed field value of a time-series point.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// 64-bit float.
    Float(f64),
    /// Signed integer.
    Integer(i64),
    /// Unsigned integer.
    Unsigned(u64),
    /// Boolean.
    Boolean(bool),
    /// UTF-8 string.
    Text(String),
}

impl From<f64> for FieldValue {
    fn from(v: f64) -> Self {
        FieldValue::Float(v)
    }
}
impl From<i64> for FieldValue {
    fn from(v: i64) -> Self {
        FieldValue::Integer(v)
    }
}
impl From<u64> for FieldValue {
    fn from(v: u64) -> Self {
        FieldValue::Unsigned(v)
    }
}
impl From<bool> for FieldValue {
    fn from(v: bool) -> Self {
        FieldValue::Boolean(v)
    }
}
impl From<String> for FieldValue {
    fn from(v: String) -> Self {
        FieldValue::Text(v)
    }
}
impl From<&str> for FieldValue {
    fn from(v: &str) -> Self {
        FieldValue::Text(v.to_string())
    }
}

/// A time-series point; its identity is (measurement, tags, timestamp).
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Measurement name.
    pub measurement: String,
    /// Tags, sorted by key (the builder keeps them sorted).
    pub tags: Vec<(String, String)>,
    /// Fields in write order.
    pub fields: Vec<(String, FieldValue)>,
    /// Time in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

impl Point {
    /// A point with no tags or fields yet.
    pub fn new(measurement: impl Into<String>, timestamp_ms: i64) -> Self {
        Point { measurement: measurement.into(), tags: Vec::new(), fields: Vec::new(), timestamp_ms }
    }

    /// Add a tag, keeping tags sorted by key; a tag with the same key is replaced.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        match self.tags.binary_search_by(|(k, _)| k.as_str().cmp(&key)) {
            Ok(i) => self.tags[i].1 = value.into(),
            Err(i) => self.tags.insert(i, (key, value.into())),
        }
        self
    }

    /// Add a field.
    pub fn field(mut self, key: impl Into<String>, value: impl Into<FieldValue>) -> Self {
        self.fields.push((key.into(), value.into()));
        self
    }

    /// The value of a field.
    pub fn field_value(&self, key: &str) -> Option<&FieldValue> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value of a tag.
    pub fn tag_value(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// A record to produce to Kafka.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputRecord {
    /// Destination topic; `None` means the pipeline's output topic.
    pub topic: Option<String>,
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Record value.
    pub value: Vec<u8>,
    /// Record headers.
    pub headers: Vec<Header>,
    /// The input message it derives from.
    pub origin: Origin,
}

impl OutputRecord {
    /// A record for `topic` whose origin is set later (with the effect it follows).
    fn follow_up(topic: String, value: Vec<u8>) -> Self {
        OutputRecord {
            topic: Some(topic),
            key: None,
            value,
            headers: Vec::new(),
            origin: Origin { partition: 0, offset: 0 },
        }
    }

    /// Send to this topic instead of the pipeline's output topic.
    pub fn to_topic(&mut self, topic: impl Into<String>) -> &mut Self {
        self.topic = Some(topic.into());
        self
    }

    /// Set the record key.
    pub fn key(&mut self, key: impl Into<Vec<u8>>) -> &mut Self {
        self.key = Some(key.into());
        self
    }

    /// Add a header.
    pub fn header(&mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.headers.push(Header { key: key.into(), value: value.into() });
        self
    }
}

/// Points for a sink the operator named in the host configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkBatch {
    /// Sink name, e.g. `tsdb`.
    pub sink: String,
    /// The tenant the points belong to, when known: a sink configured with
    /// one database per tenant writes them to `<database>_<tenant>`.
    pub tenant: Option<String>,
    /// Points to store.
    pub points: Vec<Point>,
    /// The input message they derive from.
    pub origin: Origin,
}

/// Points for a sink, already encoded as InfluxDB line protocol, one per
/// line, with the origin of each line. Built with [`crate::lineproto::LineBatch`].
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedPoints {
    /// Sink name.
    pub sink: String,
    /// The tenant of every point, when known (see [`SinkBatch::tenant`]).
    pub tenant: Option<String>,
    /// Line protocol, `\n`-separated, millisecond timestamps.
    pub body: Vec<u8>,
    /// The input message of each line, in line order.
    pub origins: Vec<Origin>,
}

/// A notification for the host's notifiers.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// Notifier type: `webhook`, `email`, `pagerduty`, `slack`, `jira`, ...
    pub channel: String,
    /// URL or address.
    pub destination: String,
    /// Channel-specific attributes (e.g. `subject`).
    pub attributes: Vec<(String, String)>,
    /// Payload.
    pub body: Vec<u8>,
    /// Stable key so the host sends it once.
    pub idempotency_key: String,
    /// The input message it derives from.
    pub origin: Origin,
    /// Records to produce once it is delivered.
    pub on_sent: Vec<OutputRecord>,
    /// Records to produce when delivery fails; when empty, a failure
    /// dead-letters the input message with the reason.
    pub on_failed: Vec<OutputRecord>,
}

impl Notification {
    /// A notification through `channel` to `destination` with `body`, keyed
    /// by `idempotency_key`; attributes and follow-up records are added with
    /// the other builders, the origin by [`Effects::notify`].
    pub fn new(
        channel: impl Into<String>,
        destination: impl Into<String>,
        body: impl Into<Vec<u8>>,
        idempotency_key: impl Into<String>,
    ) -> Self {
        Notification {
            channel: channel.into(),
            destination: destination.into(),
            attributes: Vec::new(),
            body: body.into(),
            idempotency_key: idempotency_key.into(),
            origin: Origin { partition: 0, offset: 0 },
            on_sent: Vec::new(),
            on_failed: Vec::new(),
        }
    }

    /// Add a channel attribute (e.g. `subject`).
    pub fn attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.push((key.into(), value.into()));
        self
    }

    /// Produce `value` to `topic` once the notification is delivered.
    pub fn on_sent(mut self, topic: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.on_sent.push(OutputRecord::follow_up(topic.into(), value.into()));
        self
    }

    /// Produce `value` to `topic` when delivery fails.
    pub fn on_failed(mut self, topic: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.on_failed.push(OutputRecord::follow_up(topic.into(), value.into()));
        self
    }
}

/// A refused input message, bound for the dead-letter topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// Why, for a person to read.
    pub reason: String,
    /// The refused message.
    pub origin: Origin,
}

/// One request from the guest to the host.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Produce a record to Kafka.
    Produce(OutputRecord),
    /// Store points in a sink.
    Store(SinkBatch),
    /// Store already-encoded points in a sink.
    StoreEncoded(EncodedPoints),
    /// Send a notification.
    Notify(Notification),
    /// Dead-letter the input message.
    Reject(Rejection),
}

impl Effect {
    /// The input message this effect derives from (for encoded points, the
    /// first line's).
    pub fn origin(&self) -> Origin {
        match self {
            Effect::Produce(r) => r.origin,
            Effect::Store(s) => s.origin,
            Effect::StoreEncoded(e) => e.origins.first().copied().unwrap_or(Origin { partition: 0, offset: 0 }),
            Effect::Notify(n) => n.origin,
            Effect::Reject(r) => r.origin,
        }
    }

    /// The effect's kind as the CLI prints it: `produce`, `store` (points,
    /// structured or encoded), `notify`, `reject`.
    pub fn kind(&self) -> &'static str {
        match self {
            Effect::Produce(_) => "produce",
            Effect::Store(_) | Effect::StoreEncoded(_) => "store",
            Effect::Notify(_) => "notify",
            Effect::Reject(_) => "reject",
        }
    }
}

/// Collects the effects of one batch, in order.
#[derive(Debug, Default)]
pub struct Effects {
    items: Vec<Effect>,
}

impl Effects {
    /// An empty collector.
    pub fn new() -> Self {
        Effects::default()
    }

    /// An empty collector with room for `n` effects.
    pub fn with_capacity(n: usize) -> Self {
        Effects { items: Vec::with_capacity(n) }
    }

    /// Produce `value` to the pipeline's output topic. The returned record can
    /// be adjusted (topic, key, headers).
    pub fn produce(&mut self, from: &Message, value: impl Into<Vec<u8>>) -> &mut OutputRecord {
        self.items.push(Effect::Produce(OutputRecord {
            topic: None,
            key: None,
            value: value.into(),
            headers: Vec::new(),
            origin: from.origin(),
        }));
        match self.items.last_mut() {
            Some(Effect::Produce(record)) => record,
            _ => unreachable!("a produce effect was just pushed"),
        }
    }

    /// Store one point in the named sink.
    pub fn store(&mut self, from: &Message, sink: impl Into<String>, point: Point) {
        self.store_all(from, sink, vec![point]);
    }

    /// Store several points in the named sink.
    pub fn store_all(&mut self, from: &Message, sink: impl Into<String>, points: Vec<Point>) {
        self.items.push(Effect::Store(SinkBatch { sink: sink.into(), tenant: None, points, origin: from.origin() }));
    }

    /// Store points that belong to `tenant` in the named sink (a sink with one
    /// database per tenant writes them to that tenant's database).
    pub fn store_for_tenant(&mut self, from: &Message, sink: impl Into<String>, tenant: &str, points: Vec<Point>) {
        let tenant = Some(tenant.to_string());
        self.items.push(Effect::Store(SinkBatch { sink: sink.into(), tenant, points, origin: from.origin() }));
    }

    /// Store a batch of encoded points (nothing when it is empty).
    pub fn store_lines(&mut self, batch: crate::lineproto::LineBatch) {
        if !batch.is_empty() {
            self.items.push(Effect::StoreEncoded(batch.into_encoded()));
        }
    }

    /// Send a notification. `origin` is set from `from`.
    pub fn notify(&mut self, from: &Message, mut notification: Notification) {
        notification.origin = from.origin();
        for record in notification.on_sent.iter_mut().chain(notification.on_failed.iter_mut()) {
            record.origin = from.origin();
        }
        self.items.push(Effect::Notify(notification));
    }

    /// A notification the guest knows will fail (the original's plugin
    /// fails on it): what the host does with a failed delivery, without
    /// trying it. Its `on_failed` records are produced; with none, the
    /// message is dead-lettered with `reason`.
    pub fn fail_notification(&mut self, from: &Message, notification: Notification, reason: impl Into<String>) {
        if notification.on_failed.is_empty() {
            self.reject(from, reason);
            return;
        }
        for mut record in notification.on_failed {
            record.origin = from.origin();
            self.items.push(Effect::Produce(record));
        }
    }

    /// Send the message to the dead-letter topic with a reason.
    pub fn reject(&mut self, from: &Message, reason: impl Into<String>) {
        self.items.push(Effect::Reject(Rejection { reason: reason.into(), origin: from.origin() }));
    }

    /// Push an effect built by hand.
    pub fn push(&mut self, effect: Effect) {
        self.items.push(effect);
    }

    /// The effects so far.
    pub fn as_slice(&self) -> &[Effect] {
        &self.items
    }

    /// Number of effects so far.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when no effect was pushed.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Take the effects out.
    pub fn into_vec(self) -> Vec<Effect> {
        self.items
    }
}
