//! The persister guest: what monasca-persister does, as a component.
//!
//! - `metrics` (metric envelopes) → one point per measurement: measurement =
//!   metric name, tags = dimensions plus `_tenant_id` and `_region`, fields
//!   `value` (float) and `value_meta` (a JSON string, `"{}"` when empty),
//!   millisecond time.
//! - `alarm-state-transitions` (`alarm-transitioned` messages) → one
//!   `alarm_state_history` point tagged with `tenant_id`, with the fields
//!   monasca-persister 9.0.0 writes, in its order.
//!
//! Points go to the sink named by the `sink` option (default `tsdb`), each
//! with its tenant (a sink set up with one database per tenant, like
//! monasca-persister's `db_per_tenant`, routes them by it), by
//! default as one `store-encoded` effect per batch and tenant holding InfluxDB line
//! protocol exactly as monasca-persister renders it (one line per message,
//! each with its origin); `encoding = points` sends structured points instead,
//! one `store` effect per message. A message that cannot be parsed is rejected
//! with a reason; its neighbours are stored.
//!
//! Most envelopes have one plain shape, which a fast path reads and renders;
//! every other message is read by [`original`], which follows the original's
//! own steps, so that whatever monasca-persister stores is stored the same
//! (a boolean value, numbers as strings, numeric dimensions, repeated keys),
//! and whatever it crashes on, or InfluxDB would drop, is rejected.
//!
//! Options (`[pipeline.config]` or `--config key=value`):
//! | key | default | meaning |
//! |---|---|---|
//! | `sink` | `tsdb` | sink that receives the points |
//! | `metrics-topic` | `metrics` | topic carrying metric envelopes |
//! | `alarm-topic` | `alarm-state-transitions` | topic carrying alarm transitions |
//! | `max-message-bytes` | `1048576` | larger messages are rejected |
//! | `encoding` | `line-protocol` | `line-protocol` (one encoded effect per batch) or `points` |
//!
//! A message on any other topic is recognised by its content.

pub mod original;

use monasca_guest_sdk::monasca::MetricEnvelope;
use monasca_guest_sdk::pyjson::{self, Json};
use monasca_guest_sdk::{lineproto, Config, Effects, LineBatch, Message, Point, ProcessError, Processor};

/// The persister's settings.
pub struct Persister {
    sink: String,
    metrics_topic: String,
    alarm_topic: String,
    max_message_bytes: usize,
    encoded: bool,
}

/// What kind of Monasca message a value holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Metric,
    AlarmTransition,
}

impl Persister {
    fn kind_of(&self, message: &Message) -> Kind {
        if message.topic == self.metrics_topic {
            Kind::Metric
        } else if message.topic == self.alarm_topic || looks_like_alarm(&message.value) {
            Kind::AlarmTransition
        } else {
            Kind::Metric
        }
    }

    /// The kind of a message that is not over the size limit.
    fn check_size(&self, message: &Message) -> Result<Kind, String> {
        if message.value.len() > self.max_message_bytes {
            return Err(format!(
                "message is {} bytes, over the limit of {} (max-message-bytes)",
                message.value.len(),
                self.max_message_bytes
            ));
        }
        Ok(self.kind_of(message))
    }

    /// The point for one message, or the reason it cannot be stored.
    pub fn point_for(&self, message: &Message) -> Result<Point, String> {
        Ok(self.render(message)?.point)
    }

    /// The point for one message with its tenant, or the reason it cannot be stored.
    pub fn render(&self, message: &Message) -> Result<original::Rendered, String> {
        match self.check_size(message)? {
            Kind::Metric => match fast_envelope(&message.value) {
                Some(envelope) => {
                    let tenant = envelope.meta.tenant_id.to_string();
                    Ok(original::Rendered { point: envelope_point(&envelope)?, tenant })
                }
                None => original::metric(&message.value),
            },
            Kind::AlarmTransition => original::alarm(&message.value),
        }
    }
}

impl Processor for Persister {
    fn init(config: &Config) -> Result<Self, String> {
        Ok(Persister {
            sink: config.get_or("sink", "tsdb").to_string(),
            metrics_topic: config.get_or("metrics-topic", "metrics").to_string(),
            alarm_topic: config.get_or("alarm-topic", "alarm-state-transitions").to_string(),
            max_message_bytes: config.parse_or("max-message-bytes", 1024 * 1024)?,
            encoded: match config.get_or("encoding", "line-protocol") {
                "line-protocol" => true,
                "points" => false,
                other => return Err(format!("config `encoding` = {other:?}: expected `line-protocol` or `points`")),
            },
        })
    }

    fn process(&mut self, batch: Vec<Message>, out: &mut Effects) -> Result<(), ProcessError> {
        if !self.encoded {
            for message in &batch {
                match self.render(message) {
                    Ok(rendered) => {
                        out.store_for_tenant(message, self.sink.as_str(), &rendered.tenant, vec![rendered.point]);
                    }
                    Err(reason) => out.reject(message, reason),
                }
            }
            return Ok(());
        }
        let mut tenants = TenantBatches::new(&self.sink, batch.len());
        for message in &batch {
            let written = match self.check_size(message) {
                Err(reason) => Err(reason),
                Ok(Kind::Metric) => match fast_envelope(&message.value) {
                    Some(envelope) => tenants
                        .get(&envelope.meta.tenant_id)
                        .push_with(message, |out| write_envelope_line(out, &envelope)),
                    None => original::metric(&message.value)
                        .map(|rendered| tenants.get(&rendered.tenant).push(message, &rendered.point)),
                },
                Ok(Kind::AlarmTransition) => original::alarm(&message.value)
                    .map(|rendered| tenants.get(&rendered.tenant).push(message, &rendered.point)),
            };
            if let Err(reason) = written {
                out.reject(message, reason);
            }
        }
        for lines in tenants.batches {
            out.store_lines(lines);
        }
        Ok(())
    }
}

/// A batch's lines, one [`LineBatch`] per tenant (so that a sink with one
/// database per tenant can route them). Batches hold few tenants: a linear
/// search that tries the last one first is enough.
struct TenantBatches<'s> {
    sink: &'s str,
    expected: usize,
    batches: Vec<LineBatch>,
    last: usize,
}

impl<'s> TenantBatches<'s> {
    fn new(sink: &'s str, expected: usize) -> Self {
        TenantBatches { sink, expected, batches: Vec::new(), last: 0 }
    }

    fn get(&mut self, tenant: &str) -> &mut LineBatch {
        let hit = match self.batches.get(self.last) {
            Some(b) if b.is_for_tenant(tenant) => Some(self.last),
            _ => self.batches.iter().position(|b| b.is_for_tenant(tenant)),
        };
        self.last = match hit {
            Some(i) => i,
            None => {
                // The first tenant gets room for the whole batch (growing a
                // buffer copies it), the k-th a k-th of it: a batch of many
                // tenants then reserves about ln(k) batches, not k.
                let room = (self.expected / (self.batches.len() + 1)).max(16);
                self.batches.push(LineBatch::for_tenant(self.sink, tenant, room));
                self.batches.len() - 1
            }
        };
        &mut self.batches[self.last]
    }
}

monasca_guest_sdk::export!(Persister);

/// True when the value's first key is `alarm-transitioned`.
fn looks_like_alarm(value: &[u8]) -> bool {
    let json_space = |b: &u8| matches!(b, b' ' | b'\n' | b'\r' | b'\t');
    let rest = value.trim_ascii_start();
    let Some(rest) = rest.strip_prefix(b"{") else {
        return false;
    };
    let skip = rest.iter().take_while(|b| json_space(b)).count();
    rest[skip..].starts_with(b"\"alarm-transitioned\"")
}

/// The envelope when the fast path can render it: the plain shape, a name
/// InfluxDB keeps (not empty, not a `#` comment). `None` sends the message
/// to [`original`].
pub fn fast_envelope(value: &[u8]) -> Option<MetricEnvelope<'_>> {
    MetricEnvelope::scan(value).filter(|e| !e.metric.name.is_empty() && !e.metric.name.starts_with('#'))
}

/// A plain envelope → its point (monasca-persister's
/// `MetricInfluxdbRepository.process_message`).
fn envelope_point(envelope: &MetricEnvelope<'_>) -> Result<Point, String> {
    refuse_line_breaks(envelope)?;
    let value_meta = value_meta_text(envelope)?.into_owned();
    let mut point = Point::new(envelope.metric.name.as_ref(), envelope.metric.timestamp)
        .field("value", envelope.metric.value)
        .field("value_meta", value_meta);
    for_each_tag(envelope, |k, v| point.tags.push((k.to_string(), v.to_string())));
    Ok(point)
}

/// A metric envelope → its line-protocol line, appended to `out`, by the
/// fast path when it can, else by [`original`].
pub fn write_metric_line(out: &mut String, value: &[u8]) -> Result<(), String> {
    match fast_envelope(value) {
        Some(envelope) => write_envelope_line(out, &envelope),
        None => original::metric(value).map(|rendered| original::write_line(out, &rendered.point)),
    }
}

/// A parsed metric envelope → its line-protocol line, appended to `out`.
pub fn write_envelope_line(out: &mut String, envelope: &MetricEnvelope<'_>) -> Result<(), String> {
    refuse_line_breaks(envelope)?;
    let value_meta = value_meta_text(envelope)?;
    if envelope.strings_need_no_key_escape() {
        out.push_str(&envelope.metric.name);
        for_each_tag(envelope, |key, value| {
            out.push(',');
            out.push_str(key);
            out.push('=');
            out.push_str(value);
        });
    } else {
        lineproto::escape_key(out, &envelope.metric.name);
        for_each_tag(envelope, |key, value| {
            out.push(',');
            lineproto::escape_key(out, key);
            out.push('=');
            lineproto::escape_key(out, value);
        });
    }
    out.push_str(" value=");
    pyjson::write_float_repr(out, envelope.metric.value);
    out.push_str(",value_meta=");
    lineproto::escape_string(out, &value_meta);
    out.push(' ');
    pyjson::write_integer(out, envelope.metric.timestamp);
    Ok(())
}

/// Line protocol has no escape for a line break in a measurement or tag (the
/// original would write a broken line and lose its whole batch): such a
/// metric is refused, naming the place.
fn refuse_line_breaks(envelope: &MetricEnvelope<'_>) -> Result<(), String> {
    if envelope.strings_are_plain() {
        return Ok(());
    }
    // `contains` on bytes searches a word at a time (a byte loop costs more
    // than the rest of the check in the guest).
    let breaks = |s: &str| s.as_bytes().contains(&b'\n');
    let place = if breaks(&envelope.metric.name) {
        Some("metric.name".to_string())
    } else if breaks(&envelope.meta.tenant_id) || breaks(&envelope.meta.region) {
        Some("meta (tenantId or region)".to_string())
    } else {
        envelope
            .metric
            .dimensions
            .iter()
            .find(|(k, v)| breaks(k) || breaks(v))
            .map(|(k, _)| format!("metric.dimensions.{}", k.escape_debug()))
    };
    match place {
        Some(place) => {
            Err(format!("invalid metric envelope: {place} contains a line break, which InfluxDB cannot store"))
        }
        None => Ok(()),
    }
}

/// Calls `tag` with each tag of a metric in key order: its dimensions with
/// `_region` and `_tenant_id` merged in (a dimension of the same name is
/// overwritten by them, as in the original).
fn for_each_tag<'e>(envelope: &'e MetricEnvelope<'_>, mut tag: impl FnMut(&'e str, &'e str)) {
    let meta = [("_region", envelope.meta.region.as_ref()), ("_tenant_id", envelope.meta.tenant_id.as_ref())];
    let mut next_meta = 0;
    for (key, value) in envelope.metric.dimensions.iter() {
        if key.starts_with('_') && (key == "_region" || key == "_tenant_id") {
            continue;
        }
        while let Some(&(meta_key, meta_value)) = meta.get(next_meta).filter(|(k, _)| *k < key) {
            tag(meta_key, meta_value);
            next_meta += 1;
        }
        tag(key, value);
    }
    for &(meta_key, meta_value) in &meta[next_meta..] {
        tag(meta_key, meta_value);
    }
}

/// `value_meta` as the original writes it: `{}` when absent or empty, else
/// `simplejson.dumps(value_meta, ensure_ascii=False)`.
fn value_meta_text<'e>(envelope: &MetricEnvelope<'e>) -> Result<std::borrow::Cow<'static, str>, String> {
    match envelope.metric.value_meta {
        None => Ok("{}".into()),
        Some(raw) => {
            let meta: Json<'_> =
                pyjson::loads(raw.get()).map_err(|e| format!("invalid metric envelope: metric.value_meta: {e}"))?;
            Ok(if meta.py_truthy() { meta.dumps().into() } else { "{}".into() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monasca_guest_sdk::testing::Harness;
    use monasca_guest_sdk::{Effect, FieldValue};

    const METRIC: &str = r#"{"metric":{"name":"cpu.idle_perc","dimensions":{"hostname":"h1","_region":"spoof","zone":"z"},"timestamp":1700000000000.9,"value":97,"value_meta":{"b":1,"a":"é"}},"meta":{"tenantId":"t1","region":"r1"},"creation_time":1700000000}"#;

    #[test]
    fn metric_becomes_point_with_meta_tags_merged_in_order() {
        let point = envelope_point(&fast_envelope(METRIC.as_bytes()).unwrap()).unwrap();
        assert_eq!(point.measurement, "cpu.idle_perc");
        let keys: Vec<&str> = point.tags.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["_region", "_tenant_id", "hostname", "zone"]);
        assert_eq!(point.tag_value("_region"), Some("r1"));
        assert_eq!(point.timestamp_ms, 1700000000000);
        assert_eq!(point.field_value("value"), Some(&FieldValue::Float(97.0)));
        assert_eq!(point.field_value("value_meta"), Some(&FieldValue::Text("{\"b\": 1, \"a\": \"é\"}".into())));
    }

    #[test]
    fn encoded_batch_holds_one_line_per_valid_message() {
        let mut harness = Harness::<Persister>::new(&[]).unwrap();
        let effects = harness.run_values("metrics", &[METRIC, "not json", METRIC]).unwrap();
        assert_eq!(effects.len(), 2);
        assert_eq!(effects[0].kind(), "reject");
        match &effects[1] {
            Effect::StoreEncoded(e) => {
                assert_eq!(e.sink, "tsdb");
                assert_eq!(e.origins.iter().map(|o| o.offset).collect::<Vec<_>>(), [0, 2]);
                assert_eq!(String::from_utf8_lossy(&e.body).lines().count(), 2);
            }
            other => panic!("expected encoded points, got {other:?}"),
        }
    }

    #[test]
    fn bad_message_is_rejected_and_neighbours_stored() {
        let mut harness = Harness::<Persister>::new(&[("sink", "db"), ("encoding", "points")]).unwrap();
        let effects = harness.run_values("metrics", &[METRIC, "not json", METRIC]).unwrap();
        let kinds: Vec<&str> = effects.iter().map(|e| e.kind()).collect();
        assert_eq!(kinds, ["store", "reject", "store"]);
        match &effects[0] {
            Effect::Store(batch) => assert_eq!(batch.sink, "db"),
            other => panic!("expected a store, got {other:?}"),
        }
        assert_eq!(effects[1].origin().offset, 1);
    }

    #[test]
    fn oversize_message_is_rejected() {
        let mut harness = Harness::<Persister>::new(&[("max-message-bytes", "10")]).unwrap();
        let effects = harness.run_values("metrics", &[METRIC]).unwrap();
        match &effects[0] {
            Effect::Reject(r) => assert!(r.reason.contains("over the limit"), "{}", r.reason),
            other => panic!("expected a reject, got {other:?}"),
        }
    }

    #[test]
    fn bad_option_fails_init_naming_the_key() {
        let err = Harness::<Persister>::new(&[("max-message-bytes", "lots")]).err().unwrap();
        assert!(err.contains("max-message-bytes"), "{err}");
    }
}
