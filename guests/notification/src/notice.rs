//! A notification as monasca-notification passes it around: one alarm
//! transition for one notification method. [`Notice::to_json`] is the
//! exact record the original publishes on `alarm-notifications`,
//! `retry-notifications` and the periodic topics, and [`Notice::from_json`]
//! reads such a record back (the retry and periodic topics).

use crate::alarm::{alarm_seconds, millis};
use crate::fields::Fields;
use monasca_guest_sdk::pyjson::{self, Json};
use std::cell::OnceCell;
use std::ops::Range;
use std::rc::Rc;

/// An alarm as notifications carry it: the `alarm-transitioned` object and,
/// rendered once however many methods notify it, its JSON text, where each
/// member's value sits in that text, and the webhook body.
#[derive(Debug)]
pub struct RawAlarm<'a> {
    /// The object (a JSON object), key order kept.
    pub object: Json<'a>,
    /// `json.dumps` of it.
    pub json: String,
    /// Where each member's value is in `json`, in member order.
    spans: Vec<Range<usize>>,
    /// Where its fields are among the members.
    fields: Fields,
    /// The webhook body (the same for every method), made at first use.
    webhook: OnceCell<String>,
}

impl<'a> RawAlarm<'a> {
    /// Wrap an alarm object.
    pub fn new(object: Json<'a>) -> Rc<Self> {
        let fields = Fields::of(&object);
        Self::indexed(object, fields)
    }

    /// Wrap an alarm object whose fields are already indexed.
    pub fn indexed(object: Json<'a>, fields: Fields) -> Rc<Self> {
        let mut json = String::with_capacity(1024);
        let mut spans = Vec::new();
        match &object {
            // As `json.dumps` writes an object, noting where each value goes.
            Json::Object(members) if !members.is_empty() => {
                json.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        json.push_str(", ");
                    }
                    pyjson::write_py_string_ascii(&mut json, key);
                    json.push_str(": ");
                    let start = json.len();
                    value.write_ascii(&mut json);
                    spans.push(start..json.len());
                }
                json.push('}');
            }
            other => other.write_ascii(&mut json),
        }
        Rc::new(RawAlarm { object, json, spans, fields, webhook: OnceCell::new() })
    }

    /// `json.dumps` of a member's value (`null` when absent), a slice of
    /// the alarm's own text: written once, copied since.
    pub fn member_json(&self, key: &str) -> &str {
        match self.fields.position(&self.object, key).and_then(|at| self.spans.get(at)) {
            Some(span) => &self.json[span.clone()],
            None => "null",
        }
    }

    /// A field of the alarm (`null` when absent).
    pub fn member(&self, key: &str) -> &Json<'a> {
        self.fields.member(&self.object, key)
    }

    /// The webhook body of this alarm, made by `make` the first time and
    /// reused for every method of the alarm: `make` must read the alarm
    /// only, never the method (address, id, name).
    pub fn webhook_body(&self, make: impl FnOnce() -> String) -> &str {
        self.webhook.get_or_init(make)
    }
}

/// One notification of one alarm transition.
#[derive(Debug, Clone)]
pub struct Notice<'a> {
    /// Notification method id.
    pub id: String,
    /// Method type, lower case (`webhook`, `email`, ...).
    pub kind: String,
    /// Method name.
    pub name: Json<'a>,
    /// Method address (URL, email address, PagerDuty service key, ...).
    pub address: String,
    /// Failed attempts so far.
    pub retry_count: u64,
    /// The whole `alarm-transitioned` object.
    pub raw_alarm: Rc<RawAlarm<'a>>,
    /// When it was (last) sent, seconds since the epoch.
    pub notification_timestamp: Option<f64>,
    /// The method's period, seconds (0: not periodic).
    pub period: i64,
}

impl<'a> Notice<'a> {
    /// The alarm's transition time, ms (0 when it has none).
    pub fn alarm_timestamp_ms(&self) -> i64 {
        millis(self.alarm("timestamp")).unwrap_or(0)
    }

    /// `alarm_timestamp`: whole seconds, as `int(ts / 1000.0)`, an integer
    /// of any size (0 for a time Python cannot divide: such a transition
    /// is dead-lettered before it is notified).
    pub fn alarm_timestamp(&self) -> Json<'static> {
        alarm_seconds(self.alarm("timestamp")).unwrap_or(Json::Int(0))
    }

    /// A field of the alarm (`Null` when absent).
    pub fn alarm(&self, key: &str) -> &Json<'a> {
        self.raw_alarm.member(key)
    }

    /// `json.dumps` of a field of the alarm (`null` when absent).
    pub fn alarm_json(&self, key: &str) -> &str {
        self.raw_alarm.member_json(key)
    }

    /// A string field of the alarm (empty when absent or not text).
    pub fn alarm_text(&self, key: &str) -> &str {
        self.alarm(key).as_str().unwrap_or_default()
    }

    /// The alarm id, as Python's `str()` writes it (`None` for null; a lone
    /// surrogate as `\ud800`).
    pub fn alarm_id(&self) -> std::borrow::Cow<'_, str> {
        self.alarm("alarmId").py_text()
    }

    /// The stable identity of this notification: alarm, transition time,
    /// method. The same transition for the same method always has it.
    pub fn key(&self) -> String {
        match millis(self.alarm("timestamp")) {
            Some(ms) => format!("{}:{ms}:{}", self.alarm_id(), self.id),
            // Far beyond any real time: the time as the alarm gave it.
            None => format!("{}:{}:{}", self.alarm_id(), self.alarm_json("timestamp"), self.id),
        }
    }

    /// The record monasca-notification's `Notification.to_json()` writes.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(self.raw_alarm.json.len() + 768);
        let mut fields = JsonObject::new(&mut out);
        fields.text("id", &self.id);
        fields.text("type", &self.kind);
        fields.value("name", &self.name);
        fields.text("address", &self.address);
        fields.integer("retry_count", i64::try_from(self.retry_count).unwrap_or(i64::MAX));
        fields.raw("raw_alarm", &self.raw_alarm.json);
        fields.raw("alarm_id", self.alarm_json("alarmId"));
        fields.raw("alarm_name", self.alarm_json("alarmName"));
        fields.value("alarm_timestamp", &self.alarm_timestamp());
        fields.raw("message", self.alarm_json("stateChangeReason"));
        match self.notification_timestamp.filter(|t| t.is_finite()) {
            Some(stamp) => fields.float("notification_timestamp", stamp),
            None => fields.raw("notification_timestamp", "null"),
        }
        fields.raw("state", self.alarm_json("newState"));
        fields.raw("severity", self.alarm_json("severity"));
        fields.raw("link", self.alarm_json("link"));
        fields.raw("lifecycle_state", self.alarm_json("lifecycleState"));
        fields.raw("tenant_id", self.alarm_json("tenantId"));
        fields.integer("period", self.period);
        fields.close();
        out
    }

    /// Read a record written by [`Notice::to_json`] (by this guest or by
    /// monasca-notification).
    pub fn from_json(value: &'a [u8]) -> Result<Self, String> {
        // As the original's `json.loads`: integers of any size, `Infinity`,
        // lone surrogate escapes.
        let text = std::str::from_utf8(value).map_err(|e| format!("notification is not valid UTF-8: {e}"))?;
        let mut record = pyjson::loads_with(text, pyjson::LoadOptions::JSON)
            .map_err(|e| format!("notification is not valid JSON: {}", e.python_message(text)))?;
        if !matches!(record, Json::Object(_)) {
            return Err("notification is not a JSON object".to_string());
        }
        let text = |record: &Json, key: &str| match record.get(key) {
            Some(Json::Str(s)) => Ok(s.to_string()),
            _ => Err(format!("notification: `{key}` is missing or not a string")),
        };
        let raw_alarm = match record.remove("raw_alarm") {
            Some(raw @ Json::Object(_)) => RawAlarm::new(raw),
            _ => return Err("notification: `raw_alarm` is missing or not an object".to_string()),
        };
        let retry_count = match *record.member("retry_count") {
            Json::Int(n) => u64::try_from(n).unwrap_or(0),
            Json::UInt(n) => n,
            _ => 0,
        };
        Ok(Notice {
            id: text(&record, "id")?,
            kind: text(&record, "type")?.to_ascii_lowercase(),
            name: record.remove("name").unwrap_or(Json::Null),
            address: text(&record, "address")?,
            retry_count,
            raw_alarm,
            notification_timestamp: record.member("notification_timestamp").as_f64(),
            period: record.member("period").as_i64().unwrap_or(0),
        })
    }
}

/// A JSON object written field by field as Python's `json.dumps` writes it
/// (`", "` between fields, `": "` after keys, ASCII only). Keys are the
/// guest's own names (printable ASCII, nothing to escape), written as they
/// are: escaping a constant twenty times per record cost more than copying.
pub struct JsonObject<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> JsonObject<'a> {
    /// Open an object in `out`.
    pub fn new(out: &'a mut String) -> Self {
        out.push('{');
        JsonObject { out, first: true }
    }

    fn key(&mut self, key: &'static str) {
        debug_assert!(
            key.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\'),
            "key {key:?} would need escaping"
        );
        if !self.first {
            self.out.push_str(", ");
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(key);
        self.out.push_str("\": ");
    }

    /// A string field.
    pub fn text(&mut self, key: &'static str, value: &str) {
        self.key(key);
        pyjson::write_string_ascii(self.out, value);
    }

    /// A field holding any JSON value.
    pub fn value(&mut self, key: &'static str, value: &Json) {
        self.key(key);
        value.write_ascii(self.out);
    }

    /// An integer field.
    pub fn integer(&mut self, key: &'static str, value: i64) {
        self.key(key);
        pyjson::write_integer(self.out, value);
    }

    /// A float field, as Python's `repr` writes a finite float.
    pub fn float(&mut self, key: &'static str, value: f64) {
        self.key(key);
        pyjson::write_float_repr(self.out, value);
    }

    /// A field whose JSON text is already written.
    pub fn raw(&mut self, key: &'static str, json: &str) {
        self.key(key);
        self.out.push_str(json);
    }

    /// Close the object.
    pub fn close(self) {
        self.out.push('}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_texts_are_what_json_dumps_writes_for_each_member() {
        let text = r#"{"alarmId": "a\u00e9\"1", "n": 1.5, "big": 18446744073709551615, "metrics": [{"dimensions": {"h": "x\ny"}}], "link": null, "e": {}, "l": []}"#;
        let object = Json::parse_str(text).expect("parses");
        let alarm = RawAlarm::new(object.clone());
        assert_eq!(alarm.json, object.dumps_ascii(), "the whole text is json.dumps");
        for (key, value) in object.as_object().expect("object") {
            assert_eq!(alarm.member_json(key), value.dumps_ascii(), "member {key}");
        }
        assert_eq!(alarm.member_json("absent"), "null");
        let empty = RawAlarm::new(Json::parse_str("{}").expect("parses"));
        assert_eq!((empty.json.as_str(), empty.member_json("x")), ("{}", "null"));
    }

    #[test]
    fn the_webhook_body_is_made_once_per_alarm() {
        let alarm = RawAlarm::new(Json::parse_str(r#"{"a": 1}"#).expect("parses"));
        let mut made = 0;
        for _ in 0..3 {
            alarm.webhook_body(|| {
                made += 1;
                "body".to_string()
            });
        }
        assert_eq!((made, alarm.webhook_body(String::new)), (1, "body"));
    }
}
