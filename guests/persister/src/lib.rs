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
//! Points go to the sink named by the `sink` option (default `tsdb`), by
//! default as one `store-encoded` effect per batch holding InfluxDB line
//! protocol exactly as monasca-persister renders it (one line per message,
//! each with its origin); `encoding = points` sends structured points instead,
//! one `store` effect per message. A message that cannot be parsed is rejected
//! with a reason; its neighbours are stored.
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

use monasca_guest_sdk::monasca::{AlarmTransitionedEnvelope, MetricEnvelope};
use monasca_guest_sdk::{pyjson, Config, Effects, LineBatch, Message, Point, ProcessError, Processor};
use serde_json::Value;

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

    /// The point for one message, or the reason it cannot be stored.
    pub fn point_for(&self, message: &Message) -> Result<Point, String> {
        if message.value.len() > self.max_message_bytes {
            return Err(format!(
                "message is {} bytes, over the limit of {} (max-message-bytes)",
                message.value.len(),
                self.max_message_bytes
            ));
        }
        match self.kind_of(message) {
            Kind::Metric => metric_point(&message.value),
            Kind::AlarmTransition => alarm_point(&message.value),
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
        let mut lines = LineBatch::new(self.sink.as_str(), if self.encoded { batch.len() } else { 0 });
        for message in &batch {
            match self.point_for(message) {
                Ok(point) if self.encoded => lines.push(message, &point),
                Ok(point) => out.store(message, self.sink.as_str(), point),
                Err(reason) => out.reject(message, reason),
            }
        }
        out.store_lines(lines);
        Ok(())
    }
}

monasca_guest_sdk::export!(Persister);

/// True when the value's first key is `alarm-transitioned`.
fn looks_like_alarm(value: &[u8]) -> bool {
    let head = &value[..value.len().min(64)];
    head.windows(b"\"alarm-transitioned\"".len()).any(|w| w == b"\"alarm-transitioned\"")
}

/// A metric envelope → its point (monasca-persister's
/// `MetricInfluxdbRepository.process_message`).
pub fn metric_point(value: &[u8]) -> Result<Point, String> {
    let envelope = MetricEnvelope::parse(value)?;
    let metric = envelope.metric;
    let mut tags: Vec<(String, String)> = Vec::with_capacity(metric.dimensions.len() + 2);
    let mut pending =
        [("_region", envelope.meta.region), ("_tenant_id", envelope.meta.tenant_id)].into_iter().peekable();
    // Dimensions arrive sorted (BTreeMap); merge the two meta tags in place.
    // A dimension named like a meta tag is overwritten by it, as in the original.
    for (key, value) in metric.dimensions {
        while let Some((meta_key, _)) = pending.peek() {
            if *meta_key < key.as_ref() {
                let (k, v) = pending.next().unwrap_or_default();
                tags.push((k.to_string(), v.into_owned()));
            } else {
                break;
            }
        }
        if pending.peek().is_some_and(|(meta_key, _)| *meta_key == key.as_ref()) {
            continue;
        }
        tags.push((key.into_owned(), value.into_owned()));
    }
    tags.extend(pending.map(|(k, v)| (k.to_string(), v.into_owned())));

    let value_meta = match metric.value_meta {
        None => "{}".to_string(),
        Some(raw) => {
            let meta: Value = serde_json::from_str(raw.get())
                .map_err(|e| format!("invalid metric envelope: metric.value_meta: {e}"))?;
            if is_falsy(&meta) {
                "{}".to_string()
            } else {
                pyjson::dumps(&meta)
            }
        }
    };

    let mut point = Point::new(metric.name.into_owned(), metric.timestamp)
        .field("value", metric.value)
        .field("value_meta", value_meta);
    point.tags = tags;
    Ok(point)
}

/// An `alarm-transitioned` message → its `alarm_state_history` point
/// (monasca-persister's `AlarmStateHistInfluxdbRepository.process_message`).
pub fn alarm_point(value: &[u8]) -> Result<Point, String> {
    let alarm = AlarmTransitionedEnvelope::parse(value)?.alarm_transitioned;
    let sub_alarms = if is_falsy(&alarm.sub_alarms) {
        "[]".to_string()
    } else {
        // The original renames these keys by text replacement on the dumped JSON.
        pyjson::dumps(&alarm.sub_alarms)
            .replace("\"subAlarmExpression\":", "\"sub_alarm_expression\":")
            .replace("\"currentValues\":", "\"current_values\":")
            .replace("\"metricDefinition\":", "\"metric_definition\":")
            .replace("\"subAlarmState\":", "\"sub_alarm_state\":")
    };
    let tenant_id = alarm.tenant_id.into_owned();
    Ok(Point::new("alarm_state_history", alarm.timestamp)
        .tag("tenant_id", tenant_id.as_str())
        .field("tenant_id", tenant_id)
        .field("alarm_id", alarm.alarm_id.into_owned())
        .field("metrics", pyjson::dumps(&alarm.metrics))
        .field("new_state", alarm.new_state.into_owned())
        .field("old_state", alarm.old_state.into_owned())
        .field("link", alarm.link.map(|s| s.into_owned()).unwrap_or_default())
        .field("lifecycle_state", alarm.lifecycle_state.map(|s| s.into_owned()).unwrap_or_default())
        .field("reason", alarm.state_change_reason.into_owned())
        .field("reason_data", "{}")
        .field("sub_alarms", sub_alarms))
}

/// Python truthiness of a JSON value, as `if not value_meta:` tests it.
fn is_falsy(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
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
        let point = metric_point(METRIC.as_bytes()).unwrap();
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
