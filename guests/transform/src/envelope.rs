//! The aggregated metric as monasca-transform publishes it (its insert
//! component's `_prepare_metric`), checked with monasca-common's metric
//! validation, and the optional instance-usage record of `metrics_pre_hourly`.
//! JSON is written as Python's `json.dumps` writes it.

use crate::finish::Row;
use crate::settings::Settings;
use crate::spec::TransformSpec;
use monasca_guest_sdk::{clock, pyjson};
use serde_json::{json, Map, Number, Value};

/// `YYYY-MM-DD HH:MM:SS` (UTC) of a millisecond time, as the original's
/// `utcfromtimestamp(ts).strftime(...)`.
pub fn utc_string(ts_ms: i64) -> String {
    let secs = ts_ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = clock::civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn float(x: f64) -> Value {
    Number::from_f64(x).map(Value::Number).unwrap_or(Value::Null)
}

/// The metric envelope of a row.
pub fn metric(settings: &Settings, spec: &TransformSpec, row: &Row, timestamp_ms: i64, now_ms: i64) -> Value {
    let mut dimensions = Map::new();
    for name in &spec.dimension_list {
        let key = ["dimensions#", "meta#", "value_meta#"].iter().find_map(|p| name.strip_prefix(p)).unwrap_or(name);
        dimensions.insert(key.to_string(), row.dimension(name).map(Value::String).unwrap_or(Value::Null));
    }
    json!({
        "metric": {
            "name": row.aggregated_metric_name,
            "dimensions": dimensions,
            "timestamp": timestamp_ms,
            "value": float(row.quantity),
            "value_meta": {
                "record_count": float(row.record_count),
                "firstrecord_timestamp_string": utc_string(row.first_ts),
                "lastrecord_timestamp_string": utc_string(row.last_ts),
            },
        },
        "meta": {"tenantId": settings.tenant_id, "region": settings.region},
        "creation_time": now_ms.div_euclid(1000),
    })
}

/// JSON text as the original sends it: Python's
/// `json.dumps(metric, separators=(',', ':'))` (ASCII, Python's float text).
pub fn to_json(value: &Value) -> String {
    pyjson::dumps_compact_ascii(value)
}

/// The row as the original's stage one sends it to `metrics_pre_hourly`.
pub fn instance_usage(spec: &TransformSpec, row: &Row) -> String {
    let extra: Map<String, Value> =
        row.extra.iter().map(|(k, v)| (k.clone(), v.clone().map(Value::String).unwrap_or(Value::Null))).collect();
    let mut processing_meta = json!({"metric_id": spec.metric_id});
    if let Some((oldest, latest)) = row.rate {
        processing_meta["oldest_quantity"] = float(oldest);
        processing_meta["latest_quantity"] = float(latest);
    }
    to_json(&json!({
        "tenant_id": row.tenant_id,
        "user_id": row.user_id,
        "resource_uuid": row.resource_uuid,
        "geolocation": row.geolocation,
        "region": row.region,
        "zone": row.zone,
        "host": row.host,
        "project_id": row.project_id,
        "aggregated_metric_name": row.aggregated_metric_name,
        "quantity": float(row.quantity),
        "firstrecord_timestamp_string": utc_string(row.first_ts),
        "lastrecord_timestamp_string": utc_string(row.last_ts),
        "firstrecord_timestamp_unix": float(row.first_ts as f64 / 1000.0),
        "lastrecord_timestamp_unix": float(row.last_ts as f64 / 1000.0),
        "record_count": float(row.record_count),
        "aggregation_period": row.aggregation_period,
        "processing_meta": processing_meta,
        "extra_data_map": extra,
    }))
}

const NAME_BANNED: &[char] = &['<', '>', '=', '{', '}', '(', ')', ',', '"', '\\', ';', '&', ' '];
const DIMENSION_BANNED: &[char] = &['<', '>', '=', '{', '}', ',', '"', '\\', ';', '&'];

/// monasca-common 3.8.0's `validation.metrics.validate` for one metric.
pub fn validate(envelope: &Value) -> Result<(), String> {
    let metric = &envelope["metric"];
    let name = metric["name"].as_str().ok_or("metric name is not a string")?;
    let length = name.chars().count();
    if !(1..=255).contains(&length) || name.contains(NAME_BANNED) {
        return Err(format!("invalid metric name {name:?}"));
    }
    let suffix = format!(": for metric {name}");
    if let Some(dimensions) = metric["dimensions"].as_object() {
        for (key, value) in dimensions {
            let n = key.chars().count();
            if !(1..=255).contains(&n) || key.contains(DIMENSION_BANNED) || key.starts_with('_') {
                return Err(format!("invalid dimension key {key:?}{suffix}"));
            }
            let Some(value) = value.as_str() else {
                return Err(format!("dimension {key:?} has no string value{suffix}"));
            };
            let n = value.chars().count();
            if !(1..=255).contains(&n) || value.contains(DIMENSION_BANNED) {
                return Err(format!("invalid value {value:?} of dimension {key:?}{suffix}"));
            }
        }
    }
    if !metric["value"].as_f64().is_some_and(f64::is_finite) {
        return Err(format!("invalid value {}{suffix}", metric["value"]));
    }
    if let Some(meta) = metric["value_meta"].as_object() {
        if meta.len() > 16 || meta.keys().any(|k| k.is_empty() || k.chars().count() > 255) {
            return Err(format!("invalid value_meta{suffix}"));
        }
        if pyjson::dumps_ascii(&metric["value_meta"]).len() > 2048 {
            return Err(format!("value_meta is longer than 2048 characters{suffix}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_python_does() {
        assert_eq!(utc_string(0), "1970-01-01 00:00:00");
        assert_eq!(utc_string(1_733_011_199_999), "2024-11-30 23:59:59");
        assert_eq!(utc_string(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(utc_string(-1), "1969-12-31 23:59:59");
    }

    #[test]
    fn json_is_written_as_the_original_sends_it() {
        let v = json!({"metric": {"name": "a_agg", "value": 40.0, "n": [1, 1e20, "é"]}, "creation_time": 5});
        assert_eq!(to_json(&v), r#"{"metric":{"name":"a_agg","value":40.0,"n":[1,1e+20,"\u00e9"]},"creation_time":5}"#);
    }

    #[test]
    fn validation_follows_monasca_common() {
        let ok = json!({"metric": {"name": "a_agg", "dimensions": {"host": "all"}, "value": 1.0, "timestamp": 1,
            "value_meta": {"record_count": 1.0}}});
        assert_eq!(validate(&ok), Ok(()));
        let mut bad = ok.clone();
        bad["metric"]["dimensions"]["host"] = Value::Null;
        assert!(validate(&bad).unwrap_err().contains("no string value"));
        let mut bad = ok.clone();
        bad["metric"]["dimensions"]["host"] = json!("a,b");
        assert!(validate(&bad).unwrap_err().contains("invalid value"));
        let mut bad = ok.clone();
        bad["metric"]["name"] = json!("has space");
        assert!(validate(&bad).is_err());
        let mut bad = ok;
        bad["metric"]["dimensions"]["_x"] = json!("y");
        assert!(validate(&bad).unwrap_err().contains("dimension key"));
    }
}
