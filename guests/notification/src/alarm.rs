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
    /// `alarm['timestamp'] / 1000`, the seconds the age check computes, or
    /// the error Python raises computing them.
    pub seconds: Result<f64, String>,
}

/// Why an alarm is not notified.
#[derive(Debug, Clone, PartialEq)]
pub enum Skip {
    /// Actions are disabled for its definition.
    ActionsDisabled,
    /// Older than the TTL (age in seconds).
    Expired(f64),
    /// Its actions are enabled but its time is not a number Python can
    /// divide (or, when too old, print): the original crashes on it; the
    /// reason to dead-letter it.
    Unreadable(String),
}

impl<'a> Alarm<'a> {
    /// Parse a message value; the error is the reason to dead-letter it.
    pub fn parse(value: &'a [u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(value).map_err(|e| format!("message is not valid UTF-8: {e}"))?;
        // simplejson skips a byte-order mark, since 3.19 refuses `NaN` and
        // `Infinity`, and keeps a lone surrogate escape in its string.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut message = pyjson::loads_with(text, pyjson::LoadOptions::SIMPLEJSON)
            .map_err(|e| format!("message is not valid JSON: {}", e.python_message(text)))?;
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
        let seconds = age_seconds(fields.member(&raw, "timestamp"));
        Ok(Alarm { raw, fields, seconds })
    }

    /// Whether it is to be notified at `now_ms` with `ttl_seconds` (0: no TTL).
    pub fn check(&self, now_ms: i64, ttl_seconds: u64) -> Result<(), Skip> {
        if !self.member("actionsEnabled").py_truthy() {
            return Err(Skip::ActionsDisabled);
        }
        let seconds = self.seconds.as_ref().map_err(|e| Skip::Unreadable(format!("alarm transition: {e}")))?;
        let age = now_ms as f64 / 1000.0 - seconds;
        if ttl_seconds > 0 && age > ttl_seconds as f64 {
            // The original's warning prints the time with `time.ctime`.
            if !printable_time(*seconds) {
                return Err(Skip::Unreadable(format!(
                    "alarm transition: `timestamp` is too old and out of the range `time.ctime` prints \
                     (the original fails logging it): {}",
                    pyjson::float_repr(seconds * 1000.0)
                )));
            }
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

/// The seconds `time.gmtime` and `time.asctime` (or `time.ctime`) can
/// print: years 1 - 2^31 to 2^31 - 1 (in UTC; the original's host runs in UTC).
pub const PRINTABLE_SECONDS: std::ops::RangeInclusive<i64> = -67_768_040_609_740_800..=67_767_976_233_532_799;

/// Whether `time.ctime(seconds)` prints (rather than raises).
fn printable_time(seconds: f64) -> bool {
    let floor = seconds.floor();
    floor.is_finite() && floor.abs() < 9.2e18 && PRINTABLE_SECONDS.contains(&(floor as i64))
}

/// `alarm['timestamp'] / 1000` (Python's true division: a float), or the
/// error Python raises.
fn age_seconds(value: &Json) -> Result<f64, String> {
    match value {
        Json::Bool(b) => Ok(f64::from(u8::from(*b)) / 1000.0),
        Json::Int(i) if i.unsigned_abs() < 1 << 53 => Ok(*i as f64 / 1000.0),
        Json::Float(f) => Ok(f / 1000.0),
        Json::Int(_) | Json::UInt(_) | Json::BigInt(_) => {
            // Correctly rounded, as Python divides integers.
            match format!("{}e-3", value.dumps()).parse::<f64>() {
                Ok(seconds) if seconds.is_finite() => Ok(seconds),
                _ => Err("`timestamp`: OverflowError: integer division result too large for a float".to_string()),
            }
        }
        other => Err(format!(
            "`timestamp`: TypeError: unsupported operand type(s) for /: '{}' and 'int'",
            other.py_type_name()
        )),
    }
}

/// `int(alarm['timestamp'] / 1000.0)`: the transition's whole seconds as
/// the original's notification holds them (an integer of any size), or the
/// error Python raises.
pub fn alarm_seconds(value: &Json) -> Result<Json<'static>, String> {
    let float = match value {
        // Exact: |i| / 1000 is well within 64 bits (the common case, no big numbers).
        Json::Int(i) => return Ok(Json::Int((*i as f64 / 1000.0).trunc() as i64)),
        Json::Float(f) => *f,
        Json::Bool(b) => f64::from(u8::from(*b)),
        // `float(int)` rounds to nearest, as `as` does, and fails past the range.
        Json::UInt(_) | Json::BigInt(_) => match value.as_f64() {
            Some(f) if f.is_finite() => f,
            _ => return Err("`timestamp`: OverflowError: int too large to convert to float".to_string()),
        },
        other => {
            return Err(format!(
                "`timestamp`: TypeError: unsupported operand type(s) for /: '{}' and 'float'",
                other.py_type_name()
            ))
        }
    };
    pyjson::int_of_float(float / 1000.0).map_err(|e| format!("`timestamp`: {e}"))
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
        assert_eq!(alarm.seconds, Ok(1_700_000_000.0));
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

    #[test]
    fn timestamps_of_any_size_as_python_divides_them() {
        let with = |ts: &str| OK.replace("1700000000000", ts);
        let check = |ts: &str| Alarm::parse(with(ts).as_bytes()).expect("parses").check(1_700_000_100_000, 14_400);
        // Far future: a negative age, valid (2^64 ms is year 584 million).
        for future in ["18446744073709551616", "1e308", "1180591620717411303424"] {
            assert_eq!(check(future), Ok(()), "{future}");
        }
        // Python cannot divide these, or print the time of these expired ones.
        for crash in [format!("1{}", "0".repeat(400)), "-1e20".to_string(), "\"1700000000000\"".to_string()] {
            assert!(matches!(check(&crash), Err(Skip::Unreadable(_))), "{crash}");
        }
        assert!(matches!(check("-62135596800000"), Err(Skip::Expired(_))), "year 1 prints");
        let seconds = |ts: &str| alarm_seconds(&pyjson::loads(ts).expect("json")).map(|j| j.dumps());
        assert_eq!(seconds("18446744073709551616").as_deref(), Ok("18446744073709552"));
        assert_eq!(seconds("1e25").as_deref(), Ok("10000000000000000000000"));
        assert_eq!(seconds("true").as_deref(), Ok("0"));
        assert_eq!(seconds("1700000000999.9").as_deref(), Ok("1700000000"));
        assert!(seconds(&format!("1{}", "0".repeat(309))).is_err(), "beyond a float");
    }
}
