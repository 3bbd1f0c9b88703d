//! A notification as monasca-notification passes it around: one alarm
//! transition for one notification method. [`Notice::to_json`] is the
//! exact record the original publishes on `alarm-notifications`,
//! `retry-notifications` and the periodic topics, and [`Notice::from_json`]
//! reads such a record back (the retry and periodic topics).

use crate::alarm::millis;
use monasca_guest_sdk::pyjson;
use serde_json::{Map, Value};

/// One notification of one alarm transition.
#[derive(Debug, Clone)]
pub struct Notice {
    /// Notification method id.
    pub id: String,
    /// Method type, lower case (`webhook`, `email`, ...).
    pub kind: String,
    /// Method name.
    pub name: Value,
    /// Method address (URL, email address, PagerDuty service key, ...).
    pub address: String,
    /// Failed attempts so far.
    pub retry_count: u64,
    /// The whole `alarm-transitioned` object.
    pub raw_alarm: Map<String, Value>,
    /// When it was (last) sent, seconds since the epoch.
    pub notification_timestamp: Option<f64>,
    /// The method's period, seconds (0: not periodic).
    pub period: i64,
}

impl Notice {
    /// The alarm's transition time, ms (0 when it has none).
    pub fn alarm_timestamp_ms(&self) -> i64 {
        self.raw_alarm.get("timestamp").and_then(millis).unwrap_or(0)
    }

    /// `alarm_timestamp`: whole seconds, as `int(ts / 1000.0)`.
    pub fn alarm_timestamp(&self) -> i64 {
        let ms = self.raw_alarm.get("timestamp").cloned().unwrap_or(Value::Null);
        match ms {
            Value::Number(n) => match n.as_i64() {
                Some(i) => (i as f64 / 1000.0).trunc() as i64,
                None => (n.as_f64().unwrap_or(0.0) / 1000.0).trunc() as i64,
            },
            _ => 0,
        }
    }

    /// A field of the alarm (`Null` when absent).
    pub fn alarm(&self, key: &str) -> &Value {
        self.raw_alarm.get(key).unwrap_or(&Value::Null)
    }

    /// A string field of the alarm (empty when absent or not text).
    pub fn alarm_text(&self, key: &str) -> &str {
        self.alarm(key).as_str().unwrap_or_default()
    }

    /// The alarm id.
    pub fn alarm_id(&self) -> &str {
        self.alarm_text("alarmId")
    }

    /// The stable identity of this notification: alarm, transition time,
    /// method. The same transition for the same method always has it.
    pub fn key(&self) -> String {
        format!("{}:{}:{}", self.alarm_id(), self.alarm_timestamp_ms(), self.id)
    }

    /// The record monasca-notification's `Notification.to_json()` writes.
    pub fn to_json(&self) -> String {
        let mut map = Map::new();
        map.insert("id".into(), Value::String(self.id.clone()));
        map.insert("type".into(), Value::String(self.kind.clone()));
        map.insert("name".into(), self.name.clone());
        map.insert("address".into(), Value::String(self.address.clone()));
        map.insert("retry_count".into(), Value::from(self.retry_count));
        map.insert("raw_alarm".into(), Value::Object(self.raw_alarm.clone()));
        map.insert("alarm_id".into(), self.alarm("alarmId").clone());
        map.insert("alarm_name".into(), self.alarm("alarmName").clone());
        map.insert("alarm_timestamp".into(), Value::from(self.alarm_timestamp()));
        map.insert("message".into(), self.alarm("stateChangeReason").clone());
        let stamp = self.notification_timestamp.and_then(serde_json::Number::from_f64).map(Value::Number);
        map.insert("notification_timestamp".into(), stamp.unwrap_or(Value::Null));
        map.insert("state".into(), self.alarm("newState").clone());
        map.insert("severity".into(), self.alarm("severity").clone());
        map.insert("link".into(), self.alarm("link").clone());
        map.insert("lifecycle_state".into(), self.alarm("lifecycleState").clone());
        map.insert("tenant_id".into(), self.alarm("tenantId").clone());
        map.insert("period".into(), Value::from(self.period));
        pyjson::dumps_ascii(&Value::Object(map))
    }

    /// Read a record written by [`Notice::to_json`] (by this guest or by
    /// monasca-notification).
    pub fn from_json(value: &[u8]) -> Result<Self, String> {
        let record: Value =
            serde_json::from_slice(value).map_err(|e| format!("notification is not valid JSON: {e}"))?;
        let Value::Object(mut record) = record else {
            return Err("notification is not a JSON object".to_string());
        };
        let text = |record: &Map<String, Value>, key: &str| match record.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(format!("notification: `{key}` is missing or not a string")),
        };
        let raw_alarm = match record.remove("raw_alarm") {
            Some(Value::Object(raw)) => raw,
            _ => return Err("notification: `raw_alarm` is missing or not an object".to_string()),
        };
        Ok(Notice {
            id: text(&record, "id")?,
            kind: text(&record, "type")?.to_ascii_lowercase(),
            name: record.get("name").cloned().unwrap_or(Value::Null),
            address: text(&record, "address")?,
            retry_count: record.get("retry_count").and_then(Value::as_u64).unwrap_or(0),
            raw_alarm,
            notification_timestamp: record.get("notification_timestamp").and_then(Value::as_f64),
            period: record.get("period").and_then(Value::as_i64).unwrap_or(0),
        })
    }
}
