//! The host's view of guest effects: the types come from the WIT bindings
//! (`engine::types`); this module renders them as JSON for `monasca-wasm
//! test` and for logs.

use crate::engine::types::{Effect, EncodedPoints, FieldValue, Header, Origin, OutputRecord, Point, PointFormat};
use crate::sinks::influxdb::encode;
use serde_json::{json, Map, Value};

/// The effect's kind: `produce`, `store` (structured or encoded points),
/// `notify` or `reject`.
pub fn kind(effect: &Effect) -> &'static str {
    match effect {
        Effect::Produce(_) => "produce",
        Effect::Store(_) | Effect::StoreEncoded(_) => "store",
        Effect::Notify(_) => "notify",
        Effect::Reject(_) => "reject",
    }
}

/// The input message an effect derives from (for encoded points, the first
/// line's).
pub fn origin(effect: &Effect) -> Origin {
    match effect {
        Effect::Produce(r) => r.origin,
        Effect::Store(s) => s.origin,
        Effect::StoreEncoded(e) => e.origins.first().copied().unwrap_or(Origin { partition: 0, offset: 0 }),
        Effect::Notify(n) => n.origin,
        Effect::Reject(r) => r.origin,
    }
}

/// The lines of an encoded-points effect, each with its origin.
pub fn encoded_lines(encoded: &EncodedPoints) -> impl Iterator<Item = (Origin, String)> + '_ {
    let body = String::from_utf8_lossy(&encoded.body).into_owned();
    let lines: Vec<String> = body.split('\n').map(str::to_string).collect();
    encoded.origins.iter().copied().zip(lines)
}

/// The JSON objects that describe an effect, each with the origin it
/// describes: one per effect, except encoded points, which give one `store`
/// object per line so that every stored point shows with its origin.
pub fn to_json_lines(effect: &Effect) -> Vec<(Origin, Value)> {
    match effect {
        Effect::StoreEncoded(e) => encoded_lines(e)
            .map(|(o, line)| {
                let value = json!({
                    "kind": "store",
                    "origin": { "partition": o.partition, "offset": o.offset },
                    "sink": e.sink,
                    "tenant": e.tenant,
                    "format": format_name(e.format),
                    "line": line,
                });
                (o, value)
            })
            .collect(),
        other => vec![(origin(other), to_json(other))],
    }
}

/// The text lines that describe an effect (see [`to_json_lines`]).
pub fn to_text_lines(effect: &Effect) -> Vec<(Origin, String)> {
    match effect {
        Effect::StoreEncoded(e) => encoded_lines(e)
            .map(|(o, line)| (o, format!("{:<7} p{}@{} -> {}: {line}", "store", o.partition, o.offset, e.sink)))
            .collect(),
        other => vec![(origin(other), to_text(other))],
    }
}

fn format_name(format: PointFormat) -> &'static str {
    match format {
        PointFormat::InfluxLineProtocol => "influx-line-protocol",
    }
}

/// One JSON object for an effect; its `kind` field names the effect. Points
/// carry their InfluxDB line protocol in `line`.
pub fn to_json(effect: &Effect) -> Value {
    let o = origin(effect);
    let mut object = json!({
        "kind": kind(effect),
        "origin": { "partition": o.partition, "offset": o.offset },
    });
    let extra = match effect {
        Effect::Produce(r) => record_to_json(r),
        Effect::Store(s) => json!({
            "sink": s.sink,
            "tenant": s.tenant,
            "points": s.points.iter().map(point_to_json).collect::<Vec<_>>(),
        }),
        Effect::StoreEncoded(e) => json!({
            "sink": e.sink,
            "tenant": e.tenant,
            "format": format_name(e.format),
            "lines": encoded_lines(e).map(|(_, line)| line).collect::<Vec<_>>(),
            "origins": e.origins.iter().map(|o| json!({ "partition": o.partition, "offset": o.offset })).collect::<Vec<_>>(),
        }),
        Effect::Notify(n) => json!({
            "channel": n.channel,
            "destination": n.destination,
            "attributes": pairs_to_json(&n.attributes),
            "body": bytes_to_json(&n.body),
            "idempotency_key": n.idempotency_key,
            "on_sent": n.on_sent.iter().map(record_to_json).collect::<Vec<_>>(),
            "on_failed": n.on_failed.iter().map(record_to_json).collect::<Vec<_>>(),
        }),
        Effect::Reject(r) => json!({ "reason": r.reason }),
    };
    if let (Value::Object(target), Value::Object(source)) = (&mut object, extra) {
        target.extend(source);
    }
    object
}

fn record_to_json(r: &OutputRecord) -> Value {
    json!({
        "topic": r.topic,
        "key": r.key.as_deref().map(bytes_to_json),
        "value": bytes_to_json(&r.value),
        "headers": headers_to_json(&r.headers),
    })
}

/// One line for a person: `<kind> @<offset> <gist>`, where the gist of a
/// store is its line protocol, of a produce its value, of a notify its channel
/// and destination, and of a reject its reason.
pub fn to_text(effect: &Effect) -> String {
    let o = origin(effect);
    let gist = match effect {
        Effect::Produce(r) => {
            format!("-> {}: {}", r.topic.as_deref().unwrap_or("(output topic)"), String::from_utf8_lossy(&r.value))
        }
        Effect::Store(s) => {
            let lines: Vec<String> = s.points.iter().map(encode::line).collect();
            format!("-> {}: {}", s.sink, lines.join(" | "))
        }
        Effect::StoreEncoded(e) => format!("-> {}: {} encoded points", e.sink, e.origins.len()),
        Effect::Notify(n) => format!("-> {} {}", n.channel, n.destination),
        Effect::Reject(r) => r.reason.clone(),
    };
    format!("{:<7} p{}@{} {gist}", kind(effect), o.partition, o.offset)
}

fn point_to_json(point: &Point) -> Value {
    let fields: Map<String, Value> = point.fields.iter().map(|(k, v)| (k.clone(), field_to_json(v))).collect();
    json!({
        "measurement": point.measurement,
        "tags": pairs_to_json(&point.tags),
        "fields": fields,
        "timestamp_ms": point.timestamp_ms,
        "line": encode::line(point),
    })
}

fn field_to_json(value: &FieldValue) -> Value {
    match value {
        FieldValue::Float(f) => json!(f),
        FieldValue::Integer(i) => json!(i),
        FieldValue::Unsigned(u) => json!(u),
        FieldValue::Boolean(b) => json!(b),
        FieldValue::Text(s) => json!(s),
    }
}

fn pairs_to_json(pairs: &[(String, String)]) -> Value {
    Value::Object(pairs.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
}

fn headers_to_json(headers: &[Header]) -> Value {
    Value::Array(headers.iter().map(|h| json!({ "key": h.key, "value": bytes_to_json(&h.value) })).collect())
}

/// UTF-8 bytes as a string, anything else as `{"hex": "..."}`.
fn bytes_to_json(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => Value::String(text.to_string()),
        Err(_) => json!({ "hex": hex::encode(bytes) }),
    }
}

/// An HTTP API guest's answer as a JSON object (`kind` = `reply`).
pub fn reply_json(reply: &crate::engine::http_reply::Reply, origin: Origin) -> Value {
    let headers: Vec<Value> =
        reply.headers.iter().map(|(k, v)| json!({ "key": k, "value": bytes_to_json(v) })).collect();
    json!({
        "kind": "reply",
        "origin": { "partition": origin.partition, "offset": origin.offset },
        "status": reply.status,
        "headers": headers,
        "body": bytes_to_json(&reply.body),
    })
}

/// An HTTP API guest's answer as one readable line.
pub fn reply_text(reply: &crate::engine::http_reply::Reply, origin: Origin) -> String {
    let body = String::from_utf8_lossy(&reply.body);
    let line = format!("{:<7} p{}@{} {} {body}", "reply", origin.partition, origin.offset, reply.status);
    line.trim_end().to_string()
}
