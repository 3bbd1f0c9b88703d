//! Typed Monasca messages, as monasca-api and monasca-thresh publish them.
//!
//! The types borrow from the message bytes where they can (`Cow<str>`), so
//! parsing a metric envelope allocates only for escaped strings.

pub(crate) mod scan;
pub mod versions;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;

/// A metric envelope on the `metrics` topic.
#[derive(Debug, Deserialize)]
pub struct MetricEnvelope<'a> {
    /// The measurement.
    #[serde(borrow)]
    pub metric: Metric<'a>,
    /// Who sent it and where.
    #[serde(borrow)]
    pub meta: MetricMeta<'a>,
    /// When the API received it (seconds since the Unix epoch).
    #[serde(default)]
    pub creation_time: Option<f64>,
    /// True when it was read by the fast path: no string held an escape
    /// sequence, so none holds a control character such as a line break.
    #[serde(skip)]
    plain_strings: bool,
    /// True when, besides, no string held a space, a comma or an equals sign.
    #[serde(skip)]
    key_plain_strings: bool,
}

/// One measurement of a metric.
#[derive(Debug, Deserialize)]
pub struct Metric<'a> {
    /// Metric name, e.g. `cpu.idle_perc`.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// Dimensions, sorted by key.
    #[serde(borrow, default)]
    pub dimensions: Dimensions<'a>,
    /// Measurement time in milliseconds since the Unix epoch (a float in the
    /// input is truncated, as monasca-persister does).
    #[serde(deserialize_with = "millis")]
    pub timestamp: i64,
    /// The measured value.
    pub value: f64,
    /// Optional metadata; `None` when absent or `null`.
    #[serde(borrow, default)]
    pub value_meta: Option<&'a RawValue>,
}

/// A metric's dimensions, sorted by key, borrowed from the message where
/// possible. A key given twice keeps its last value, as a Python dict does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dimensions<'a> {
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Dimensions<'a> {
    /// The value of a dimension.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.binary_search_by(|(k, _)| k.as_ref().cmp(key)).ok().map(|i| self.pairs[i].1.as_ref())
    }

    /// (key, value) pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }

    /// Number of dimensions.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The pairs, owned by the caller.
    pub fn into_pairs(self) -> Vec<(Cow<'a, str>, Cow<'a, str>)> {
        self.pairs
    }

    /// Dimensions from pairs in message order: sorted by key (stably), and a
    /// repeated key keeps its last value.
    fn from_unsorted(mut pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>) -> Self {
        // Agents send dimensions sorted more often than not.
        if !pairs.is_sorted_by(|a, b| a.0 < b.0) {
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            pairs.dedup_by(|later, kept| {
                if later.0 == kept.0 {
                    std::mem::swap(later, kept);
                    true
                } else {
                    false
                }
            });
        }
        Dimensions { pairs }
    }
}

/// A string that borrows from the input when it has no escapes.
#[derive(Deserialize)]
struct CowStr<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Dimensions<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DimensionsVisitor<'a>(std::marker::PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for DimensionsVisitor<'a> {
            type Value = Dimensions<'a>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of string dimensions")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut pairs: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::with_capacity(map.size_hint().unwrap_or(6));
                while let Some((CowStr(k), CowStr(v))) = map.next_entry::<CowStr<'de>, CowStr<'de>>()? {
                    pairs.push((k, v));
                }
                Ok(Dimensions::from_unsorted(pairs))
            }
        }

        deserializer.deserialize_map(DimensionsVisitor(std::marker::PhantomData))
    }
}

/// The envelope's `meta` object.
#[derive(Debug, Deserialize)]
pub struct MetricMeta<'a> {
    /// Tenant (project) that owns the metric.
    #[serde(rename = "tenantId", borrow)]
    pub tenant_id: Cow<'a, str>,
    /// Region the metric was received in.
    #[serde(borrow)]
    pub region: Cow<'a, str>,
}

impl<'a> MetricEnvelope<'a> {
    /// True when no string of the message held an escape sequence, so no
    /// name, dimension or meta value can hold a control character (a line
    /// break, say): a check for those can be skipped.
    pub fn strings_are_plain(&self) -> bool {
        self.plain_strings
    }

    /// True when, besides being plain, no string of the message holds a
    /// space, a comma or an equals sign: names, tag keys and tag values can
    /// go into InfluxDB line protocol as they are, without escaping.
    pub fn strings_need_no_key_escape(&self) -> bool {
        self.plain_strings && self.key_plain_strings
    }

    /// The fast path alone: the envelope when it has the plain shape that
    /// nearly all of Monasca's traffic has (no escapes, no duplicate keys,
    /// string dimensions, numbers read exactly), `None` for anything else.
    /// A guest that must read the rest its own way (as Python does, say)
    /// calls this first.
    pub fn scan(bytes: &'a [u8]) -> Option<Self> {
        scan::metric_envelope(bytes)
    }

    /// Parse and check an envelope: valid UTF-8, JSON object, required keys
    /// present, non-empty name, numeric value and timestamp. The error is a
    /// reason a person can read.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, String> {
        let envelope: MetricEnvelope<'a> = match scan::metric_envelope(bytes) {
            Some(envelope) => envelope,
            None => {
                let text = std::str::from_utf8(bytes).map_err(|e| format!("message is not valid UTF-8: {e}"))?;
                parse_json(text, "metric envelope")?
            }
        };
        if envelope.metric.name.is_empty() {
            return Err("invalid metric envelope: metric.name is empty".to_string());
        }
        if !envelope.metric.value.is_finite() {
            return Err("invalid metric envelope: metric.value is not a finite number".to_string());
        }
        Ok(envelope)
    }
}

/// A message on the `alarm-state-transitions` topic.
#[derive(Debug, Deserialize)]
pub struct AlarmTransitionedEnvelope<'a> {
    /// The transition.
    #[serde(rename = "alarm-transitioned", borrow)]
    pub alarm_transitioned: AlarmTransitioned<'a>,
}

/// An alarm's change of state, as monasca-thresh publishes it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmTransitioned<'a> {
    /// Tenant that owns the alarm.
    #[serde(borrow)]
    pub tenant_id: Cow<'a, str>,
    /// Alarm id.
    #[serde(borrow)]
    pub alarm_id: Cow<'a, str>,
    /// Alarm definition id.
    #[serde(borrow, default)]
    pub alarm_definition_id: Option<Cow<'a, str>>,
    /// Alarm definition name.
    #[serde(borrow, default)]
    pub alarm_name: Option<Cow<'a, str>>,
    /// Alarm definition description.
    #[serde(borrow, default)]
    pub alarm_description: Option<Cow<'a, str>>,
    /// The metrics of the alarm (objects with `id`, `name`, `dimensions`), key order kept.
    pub metrics: Value,
    /// State before the transition: `OK`, `ALARM` or `UNDETERMINED`.
    #[serde(borrow)]
    pub old_state: Cow<'a, str>,
    /// State after the transition.
    #[serde(borrow)]
    pub new_state: Cow<'a, str>,
    /// Whether notifications are enabled for the definition.
    #[serde(default)]
    pub actions_enabled: Option<bool>,
    /// Why the state changed.
    #[serde(borrow)]
    pub state_change_reason: Cow<'a, str>,
    /// Severity: `LOW`, `MEDIUM`, `HIGH`, `CRITICAL`.
    #[serde(borrow, default)]
    pub severity: Option<Cow<'a, str>>,
    /// Optional link (e.g. a runbook).
    #[serde(borrow, default)]
    pub link: Option<Cow<'a, str>>,
    /// Optional lifecycle state.
    #[serde(borrow, default)]
    pub lifecycle_state: Option<Cow<'a, str>>,
    /// The sub-alarms with their expressions and current values, key order kept.
    pub sub_alarms: Value,
    /// Transition time in milliseconds since the Unix epoch.
    #[serde(deserialize_with = "millis")]
    pub timestamp: i64,
}

impl<'a> AlarmTransitionedEnvelope<'a> {
    /// Parse an `alarm-transitioned` message; the error is a reason a person can read.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(bytes).map_err(|e| format!("message is not valid UTF-8: {e}"))?;
        parse_json(text, "alarm-transitioned message")
    }
}

/// Parse `text` as a `T`; on failure, say whether it is not JSON at all, not
/// an object, or which field is wrong (the slower path-tracking parse runs
/// only then).
fn parse_json<'a, T: Deserialize<'a>>(text: &'a str, what: &str) -> Result<T, String> {
    match serde_json::from_str(text) {
        Ok(value) => Ok(value),
        Err(e) if e.is_syntax() || e.is_eof() => Err(format!("not valid JSON: {e}")),
        Err(e) => {
            if !text.trim_start().starts_with('{') {
                return Err(format!("invalid {what}: expected a JSON object"));
            }
            let mut de = serde_json::Deserializer::from_str(text);
            match serde_path_to_error::deserialize::<_, T>(&mut de) {
                Err(err) if !err.path().to_string().is_empty() && err.path().to_string() != "." => {
                    Err(format!("invalid {what}: {}: {}", err.path(), err.inner()))
                }
                _ => Err(format!("invalid {what}: {e}")),
            }
        }
    }
}

/// Largest timestamp magnitude accepted, in milliseconds (about year 287,000).
const MAX_TIMESTAMP: f64 = 9.0e15;

/// A timestamp in milliseconds given as a JSON integer or float (truncated).
fn millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let value = f64::deserialize(deserializer)?;
    if !value.is_finite() || value.abs() > MAX_TIMESTAMP {
        return Err(serde::de::Error::custom(format!("timestamp {value} is out of range")));
    }
    Ok(value.trunc() as i64)
}
