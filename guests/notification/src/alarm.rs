//! An `alarm-transitioned` message as monasca-notification's alarm
//! processor reads it: parsed into JSON values (key order kept, since the
//! whole alarm is re-published as `raw_alarm`), checked for the keys it
//! requires, and judged valid (actions enabled, not older than the TTL).

use crate::fields::Fields;
use monasca_guest_sdk::pyjson::{self, Json};

/// The keys monasca-notification requires (their presence only).
const REQUIRED: [&str; 12] = [
    "actionsEnabled",
    "alarmId",
    "alarmDefinitionId",
    "alarmName",
    "newState",
    "oldState",
    "stateChangeReason",
    "severity",
    "link",
    "lifecycleState",
    "tenantId",
    "timestamp",
];

/// A parsed alarm transition, its strings borrowed from the message.
#[derive(Debug, Clone)]
pub struct Alarm<'a> {
    /// The `alarm-transitioned` object, as received.
    pub raw: Json<'a>,
    /// Where its fields are.
    pub fields: Fields,
    /// `timestamp`, ms since the epoch (`None`: not a number).
    pub timestamp_ms: Option<i64>,
}

/// Why an alarm is not notified.
#[derive(Debug, Clone, PartialEq)]
pub enum Skip {
    /// Actions are disabled for its definition.
    ActionsDisabled,
    /// Older than the TTL (age in seconds).
    Expired(f64),
    /// Its actions are enabled but its time is not a number: the original
    /// crashes on it (`TypeError`); the reason to dead-letter it.
    Unreadable(String),
}

impl<'a> Alarm<'a> {
    /// Parse a message value; the error is the reason to dead-letter it.
    pub fn parse(value: &'a [u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(value).map_err(|e| format!("message is not valid UTF-8: {e}"))?;
        // simplejson skips a byte-order mark and, since 3.19, refuses `NaN`
        // and `Infinity`.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut message = pyjson::loads_strict(text).map_err(|e| match e.message.starts_with("Lone surrogate") {
            true => format!(
                "message holds a lone surrogate escape (such as \\ud800), which is not supported: {}",
                e.python_message(text)
            ),
            false => format!("message is not valid JSON: {}", e.python_message(text)),
        })?;
        if !matches!(message, Json::Object(_)) {
            return Err("message is not a JSON object".to_string());
        }
        let raw = match message.remove("alarm-transitioned") {
            Some(raw @ Json::Object(_)) => raw,
            Some(_) => return Err("`alarm-transitioned` is not an object".to_string()),
            None => return Err("message has no `alarm-transitioned` object".to_string()),
        };
        let fields = Fields::of(&raw);
        let missing: Vec<&str> = REQUIRED.iter().copied().filter(|k| fields.get(&raw, k).is_none()).collect();
        if !missing.is_empty() {
            return Err(format!("alarm transition lacks {}", quoted(&missing)));
        }
        // The original takes any JSON for the ids and the state (they go
        // into SQL parameters and texts as they are).
        let timestamp_ms = millis(fields.member(&raw, "timestamp"));
        Ok(Alarm { raw, fields, timestamp_ms })
    }

    /// Whether it is to be notified at `now_ms` with `ttl_seconds` (0: no TTL).
    pub fn check(&self, now_ms: i64, ttl_seconds: u64) -> Result<(), Skip> {
        if !self.member("actionsEnabled").py_truthy() {
            return Err(Skip::ActionsDisabled);
        }
        let Some(timestamp_ms) = self.timestamp_ms else {
            return Err(Skip::Unreadable("alarm transition: `timestamp` is not a number".to_string()));
        };
        let age = (now_ms as f64 - timestamp_ms as f64) / 1000.0;
        if ttl_seconds > 0 && age > ttl_seconds as f64 {
            return Err(Skip::Expired(age));
        }
        Ok(())
    }

    /// A field (absent: `None`).
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.fields.get(&self.raw, key)
    }

    /// A field (`null` when absent).
    pub fn member(&self, key: &str) -> &Json<'a> {
        self.fields.member(&self.raw, key)
    }

    /// A string field (empty when absent or not a string).
    pub fn text(&self, key: &str) -> &str {
        self.member(key).as_str().unwrap_or_default()
    }
}

/// A JSON number (or boolean, a number to Python) as whole milliseconds
/// (floats truncated).
pub fn millis(value: &Json) -> Option<i64> {
    match *value {
        Json::Int(i) => Some(i),
        Json::Bool(b) => Some(i64::from(b)),
        Json::UInt(_) | Json::Float(_) => value.as_f64().filter(|f| f.is_finite() && f.abs() < 9e15).map(|f| f as i64),
        _ => None,
    }
}

fn quoted(keys: &[&str]) -> String {
    keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"{"alarm-transitioned": {"actionsEnabled": true, "alarmId": "a", "alarmDefinitionId": "d",
        "alarmName": "n", "newState": "ALARM", "oldState": "OK", "stateChangeReason": "r", "severity": "LOW",
        "link": null, "lifecycleState": null, "tenantId": "t", "timestamp": 1700000000000, "metrics": []}}"#;

    #[test]
    fn valid_alarms_and_reasons() {
        let alarm = Alarm::parse(OK.as_bytes()).expect("valid");
        assert_eq!(alarm.timestamp_ms, Some(1_700_000_000_000));
        assert_eq!(alarm.check(1_700_000_100_000, 14_400), Ok(()));
        assert_eq!(alarm.check(1_700_014_400_000, 14_400), Ok(()), "exactly the TTL is still valid");
        assert!(matches!(alarm.check(1_700_014_400_001, 14_400), Err(Skip::Expired(_))));
        let err = Alarm::parse(OK.replace("\"severity\": \"LOW\",", "").as_bytes()).expect_err("missing");
        assert!(err.contains("`severity`"), "{err}");
        assert!(Alarm::parse(b"{").expect_err("json").contains("not valid JSON"));
        assert!(Alarm::parse(b"{}").expect_err("wrapper").contains("alarm-transitioned"));
        let disabled = OK.replace("\"actionsEnabled\": true", "\"actionsEnabled\": 0");
        assert_eq!(Alarm::parse(disabled.as_bytes()).expect("parses").check(0, 0), Err(Skip::ActionsDisabled));
    }
}
