//! monasca-persister 9.0.0's own steps, on the value `simplejson.loads`
//! makes of a message: what it stores for any message it takes, including
//! the odd ones (a boolean value, numbers as strings, numeric dimensions,
//! duplicate keys, a byte-order mark, integers beyond 64 bits).
//!
//! The persister's fast path (`MetricEnvelope::scan`) reads the common plain
//! shape and renders the same bytes; every other message comes here. Each
//! step names the original's expression it follows. A message the original
//! crashes on (a missing key, `float(None)`, invalid JSON) is refused with the
//! reason; so is one whose line InfluxDB would refuse or silently drop (a line
//! break in a name or tag, a name starting with `#`, a non-finite value, a
//! timestamp out of range), where the original loses it or its whole batch.
//! A lone surrogate escape (`"\ud800"`) is read as Python reads it: inside a
//! list or dict used as a tag its `repr` escapes it, and the line is stored;
//! anywhere else it reaches the line as it is, which the original cannot
//! encode as UTF-8 (it crashes), and the message is refused.

use monasca_guest_sdk::pyjson::{self, Json, LoadOptions};
use monasca_guest_sdk::{lineproto, Point};

/// Largest timestamp magnitude accepted, in milliseconds (about year 287,000).
const MAX_TIMESTAMP: i64 = 9_000_000_000_000_000;

/// A message rendered as the original renders it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The tenant the original routes the point by (`str(tenant_id)`).
    pub tenant: String,
    /// The point.
    pub point: Point,
}

/// The message text as `simplejson.loads(bytes)` reads it (simplejson
/// 3.19, as pinned with monasca-persister 9.0.0: no `NaN` or `Infinity`):
/// UTF-8, one leading byte-order mark skipped.
fn load(value: &[u8]) -> Result<Json<'_>, String> {
    let text = std::str::from_utf8(value).map_err(|e| format!("message is not valid UTF-8: {e}"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    pyjson::loads_with(text, LoadOptions::SIMPLEJSON).map_err(|e| format!("not valid JSON: {}", e.python_message(text)))
}

/// `simplejson.dumps(value, ensure_ascii=False)`, which refuses a float that
/// is not finite (a number too large for a float, read as infinity), as it
/// reaches the line: encoded as UTF-8, which a lone surrogate cannot be.
pub fn dumps(value: &Json<'_>, path: &str) -> Result<String, String> {
    if value.has_non_finite() {
        return Err(format!(
            "{path} holds a number out of a float's range (Out of range float values are not JSON compliant)"
        ));
    }
    if value.has_lone_surrogate() {
        return Err(format!("{path} holds a lone surrogate escape (such as \\ud800): {}", NOT_UTF8));
    }
    Ok(value.dumps())
}

/// Why a lone surrogate in the line is refused.
const NOT_UTF8: &str = "the original cannot encode its line as UTF-8 and crashes";

/// `str(value)`, as it reaches the line (encoded as UTF-8).
fn text(value: &Json<'_>, path: &str) -> Result<String, String> {
    value.py_utf8().map(|t| t.into_owned()).map_err(|e| format!("{path}: {e} ({NOT_UTF8})"))
}

/// `object[key]`, with the error the original meets when it fails.
fn member<'j, 'a>(object: &'j Json<'a>, key: &str, path: &str) -> Result<&'j Json<'a>, String> {
    match object {
        Json::Object(_) => object.get(key).ok_or_else(|| format!("{path}.{key} is missing")),
        other if path == "message" => Err(format!("expected a JSON object, got {}", kind(other))),
        other => Err(format!("{path} is not an object but {}", kind(other))),
    }
}

/// `object.get(key)`, `None` for a missing key.
fn optional<'j, 'a>(object: &'j Json<'a>, key: &str) -> Option<&'j Json<'a>> {
    object.get(key)
}

/// A short name of a value's kind, for reasons.
fn kind(value: &Json<'_>) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Int(_) | Json::UInt(_) | Json::BigInt(_) | Json::Float(_) => "a number",
        Json::Str(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// `str(int(time_stamp))`, within the range stored.
fn timestamp(value: &Json<'_>, path: &str) -> Result<i64, String> {
    let millis = value.py_int().map_err(|e| format!("{path}.timestamp: {e}"))?;
    if millis.checked_abs().is_none_or(|m| m > MAX_TIMESTAMP) {
        return Err(format!("{path}.timestamp {millis} is out of range"));
    }
    Ok(millis)
}

/// A measurement or tag text InfluxDB can store as the original writes it.
fn storable<'t>(text: &'t str, place: &dyn Fn() -> String) -> Result<&'t str, String> {
    if text.contains('\n') {
        return Err(format!("{} contains a line break, which InfluxDB cannot store", place()));
    }
    Ok(text)
}

/// `MetricInfluxdbRepository.process_message` on a metric envelope.
pub fn metric(value: &[u8]) -> Result<Rendered, String> {
    let decoded = load(value)?;
    let reason = |e: String| format!("invalid metric envelope: {e}");
    let metric = member(&decoded, "metric", "message").map_err(reason)?;
    let name = text(member(metric, "name", "metric").map_err(reason)?, "metric.name").map_err(reason)?;
    let meta = member(&decoded, "meta", "message").map_err(reason)?;
    let region = text(member(meta, "region", "meta").map_err(reason)?, "meta.region").map_err(reason)?;
    let tenant = text(member(meta, "tenantId", "meta").map_err(reason)?, "meta.tenantId").map_err(reason)?;
    let millis = timestamp(member(metric, "timestamp", "metric").map_err(reason)?, "metric").map_err(reason)?;
    let number = member(metric, "value", "metric")
        .map_err(reason)?
        .py_float()
        .map_err(|e| reason(format!("metric.value: {e}")))?;
    // `tags = dimensions` must be a dict (`tags['_tenant_id'] = ...`).
    let mut tags: Vec<(String, String)> = match optional(metric, "dimensions") {
        None => Vec::new(),
        // `tags['_tenant_id'] = ...` replaces these two without reading them
        // (they are pushed below).
        Some(Json::Object(members)) => members
            .iter()
            .filter(|(k, _)| *k != "_tenant_id" && *k != "_region")
            .map(|(k, v)| {
                let key = k.to_utf8().map_err(|e| format!("a metric.dimensions key: {e} ({NOT_UTF8})"))?;
                let value = v.py_utf8().map_err(|e| format!("metric.dimensions[{}]: {e} ({NOT_UTF8})", capped(key)))?;
                Ok((key.to_string(), value.into_owned()))
            })
            .collect::<Result<_, String>>()
            .map_err(reason)?,
        Some(other) => return Err(reason(format!("metric.dimensions is not an object but {}", kind(other)))),
    };
    tags.push(("_tenant_id".to_string(), tenant.clone()));
    tags.push(("_region".to_string(), region));
    tags.sort_by(|a, b| a.0.cmp(&b.0));
    // `value_meta = metric.get('value_meta', {})`; None and falsy values are `"{}"`.
    let value_meta = match optional(metric, "value_meta") {
        Some(meta) if meta.py_truthy() => dumps(meta, "metric.value_meta").map_err(reason)?,
        _ => "{}".to_string(),
    };
    if !number.is_finite() {
        return Err(reason(format!("metric.value {} is not a finite number", pyjson::float_repr(number))));
    }
    storable(&name, &|| "metric.name".to_string()).map_err(reason)?;
    if name.is_empty() {
        return Err(reason("metric.name is empty".to_string()));
    }
    if name.starts_with('#') {
        return Err(reason(format!(
            "metric.name {} starts with '#': InfluxDB would read the line as a comment and drop it",
            capped(&name)
        )));
    }
    for (key, value) in &tags {
        let place = || format!("the dimension {}", capped(key));
        storable(key, &place).map_err(reason)?;
        storable(value, &place).map_err(reason)?;
    }
    let mut point = Point::new(name, millis).field("value", number).field("value_meta", value_meta);
    point.tags = tags;
    Ok(Rendered { tenant, point })
}

/// `AlarmStateHistInfluxdbRepository.process_message` on an
/// `alarm-transitioned` message.
pub fn alarm(value: &[u8]) -> Result<Rendered, String> {
    let decoded = load(value)?;
    let reason = |e: String| format!("invalid alarm-transitioned message: {e}");
    let alarm = member(&decoded, "alarm-transitioned", "message").map_err(reason)?;
    let get = |key: &str| member(alarm, key, "alarm-transitioned").map_err(reason);
    let field = |key: &str| text(get(key)?, &format!("alarm-transitioned.{key}")).map_err(reason);
    let text_or_empty = |key: &str| match optional(alarm, key) {
        None | Some(Json::Null) => Ok(String::new()),
        Some(_) => field(key),
    };
    let alarm_id = field("alarmId")?;
    let metrics = dumps(get("metrics")?, "alarm-transitioned.metrics").map_err(reason)?;
    let new_state = field("newState")?;
    let old_state = field("oldState")?;
    let link = text_or_empty("link")?;
    let lifecycle_state = text_or_empty("lifecycleState")?;
    let state_change_reason = field("stateChangeReason")?;
    let tenant = field("tenantId")?;
    let millis = timestamp(get("timestamp")?, "alarm-transitioned").map_err(reason)?;
    let sub_alarms = get("subAlarms")?;
    let sub_alarms = if sub_alarms.py_truthy() {
        // The original renames these keys by text replacement on the dumped JSON.
        dumps(sub_alarms, "alarm-transitioned.subAlarms")
            .map_err(reason)?
            .replace("\"subAlarmExpression\":", "\"sub_alarm_expression\":")
            .replace("\"currentValues\":", "\"current_values\":")
            .replace("\"metricDefinition\":", "\"metric_definition\":")
            .replace("\"subAlarmState\":", "\"sub_alarm_state\":")
    } else {
        "[]".to_string()
    };
    storable(&tenant, &|| "alarm-transitioned.tenantId".to_string()).map_err(reason)?;
    let point = Point::new("alarm_state_history", millis)
        .tag("tenant_id", tenant.as_str())
        .field("tenant_id", tenant.as_str())
        .field("alarm_id", alarm_id)
        .field("metrics", metrics)
        .field("new_state", new_state)
        .field("old_state", old_state)
        .field("link", link)
        .field("lifecycle_state", lifecycle_state)
        .field("reason", state_change_reason)
        .field("reason_data", "{}")
        .field("sub_alarms", sub_alarms);
    Ok(Rendered { tenant, point })
}

/// A text for a reason: escaped and cut to 64 characters.
fn capped(text: &str) -> String {
    let cut: String = text.chars().take(64).collect();
    let more = if cut.len() < text.len() { "…" } else { "" };
    format!("{:?}{more}", cut)
}

/// The point's line as the original writes it (its value as Python's
/// `repr`, its strings escaped by `line_utils`).
pub fn write_line(out: &mut String, point: &Point) {
    lineproto::write_point(out, point);
}

#[cfg(test)]
mod tests {
    use super::*;
    use monasca_guest_sdk::FieldValue;

    fn line(value: &str) -> Result<String, String> {
        let mut out = String::new();
        write_line(&mut out, &metric(value.as_bytes())?.point);
        Ok(out)
    }

    #[test]
    fn odd_envelopes_are_stored_as_the_original_stores_them() {
        let cases = [
            (
                r#"{"metric":{"name":"m","dimensions":{"b":1,"a":true,"c":null,"d":[1,"two"]},"timestamp":"1700000000000","value":true},"meta":{"tenantId":5,"region":"r"}}"#,
                r#"m,_region=r,_tenant_id=5,a=True,b=1,c=None,d=[1\,\ 'two'] value=1.0,value_meta="{}" 1700000000000"#,
            ),
            (
                "\u{feff}{\"metric\":{\"name\":\"m\",\"name\":\"n\",\"timestamp\":1.7e12,\"value\":-0,\"value_meta\":{\"x\":18446744073709551616,\"y\":-0}},\"meta\":{\"tenantId\":\"t\",\"region\":\"r\"}}",
                r#"n,_region=r,_tenant_id=t value=0.0,value_meta="{\"x\": 18446744073709551616, \"y\": 0}" 1700000000000"#,
            ),
            (
                r#"{"metric":{"name":"m","timestamp":1,"value":" 1_5 ","value_meta":{"a":[]}},"meta":{"tenantId":"t","region":"r"}}"#,
                r#"m,_region=r,_tenant_id=t value=15.0,value_meta="{\"a\": []}" 1"#,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(line(input).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn what_the_original_crashes_on_or_influxdb_drops_is_refused_with_a_reason() {
        for (input, part) in [
            (r#"{"metric":{"name":"m","timestamp":1,"value":null},"meta":{"tenantId":"t","region":"r"}}"#, "float()"),
            (
                r#"{"metric":{"name":"m","timestamp":1},"meta":{"tenantId":"t","region":"r"}}"#,
                "metric.value is missing",
            ),
            (r##"{"metric":{"name":"#m","timestamp":1,"value":1},"meta":{"tenantId":"t","region":"r"}}"##, "comment"),
            (
                r#"{"metric":{"name":"m","dimensions":[],"timestamp":1,"value":1},"meta":{"tenantId":"t","region":"r"}}"#,
                "dimensions",
            ),
            (r#"{"metric":{"name":"m","timestamp":1,"value":"nan"},"meta":{"tenantId":"t","region":"r"}}"#, "finite"),
            (
                r#"{"metric":{"name":"m","timestamp":1e300,"value":1},"meta":{"tenantId":"t","region":"r"}}"#,
                "timestamp",
            ),
            (r#"[1]"#, "expected a JSON object"),
            (r#"{"metric":{"name":"m","timestamp":1,"value":NaN},"meta":{"tenantId":"t","region":"r"}}"#, "JSON"),
            (
                r#"{"metric":{"name":"m","timestamp":1,"value":1,"value_meta":[1e999]},"meta":{"tenantId":"t","region":"r"}}"#,
                "range",
            ),
        ] {
            let error = line(input).unwrap_err();
            assert!(error.contains(part), "{input}: {error}");
        }
    }

    #[test]
    fn a_lone_surrogate_is_stored_where_its_repr_escapes_it_and_refused_elsewhere() {
        let envelope = |metric: &str| format!(r#"{{"metric":{{{metric}}},"meta":{{"tenantId":"t","region":"r"}}}}"#);
        let stored =
            line(&envelope(r#""name":"m","dimensions":{"k":["\ud800",{"\udc00":1}]},"timestamp":1,"value":1"#));
        assert_eq!(
            stored.as_deref(),
            Ok(r#"m,_region=r,_tenant_id=t,k=['\\ud800'\,\ {'\\udc00':\ 1}] value=1.0,value_meta="{}" 1"#)
        );
        // The two tags the original sets itself are replaced, never encoded.
        let replaced = line(&envelope(r#""name":"m","dimensions":{"_region":"\ud800"},"timestamp":1,"value":1"#));
        assert_eq!(replaced.as_deref(), Ok(r#"m,_region=r,_tenant_id=t value=1.0,value_meta="{}" 1"#));
        for (metric, part) in [
            (
                r#""name":"m\ud800","timestamp":1,"value":1"#,
                "metric.name: 'utf-8' codec can't encode character '\\ud800' in position 1",
            ),
            (r#""name":"m","dimensions":{"\udfff":"v"},"timestamp":1,"value":1"#, "a metric.dimensions key"),
            (r#""name":"m","dimensions":{"k":"\udbffx"},"timestamp":1,"value":1"#, "metric.dimensions[\"k\"]"),
            (
                r#""name":"m","timestamp":1,"value":1,"value_meta":{"a":["\ud800"]}"#,
                "metric.value_meta holds a lone surrogate",
            ),
        ] {
            let error = line(&envelope(metric)).unwrap_err();
            assert!(error.contains(part), "{metric}: {error}");
        }
    }

    #[test]
    fn alarm_values_of_any_type_are_written_as_str_would() {
        let input = r#"{"alarm-transitioned":{"tenantId":"t","alarmId":null,"metrics":[{"v":100000000000000000000}],"newState":"ALARM","oldState":"OK","stateChangeReason":"r","subAlarms":[],"timestamp":"5"}}"#;
        let rendered = alarm(input.as_bytes()).unwrap();
        assert_eq!(rendered.point.timestamp_ms, 5);
        assert_eq!(rendered.point.field_value("alarm_id"), Some(&FieldValue::Text("None".into())));
        assert_eq!(
            rendered.point.field_value("metrics"),
            Some(&FieldValue::Text(r#"[{"v": 100000000000000000000}]"#.into()))
        );
    }
}
