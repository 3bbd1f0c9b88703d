//! A metric envelope read as monasca-transform reads it: its record-store
//! columns (resource, tenant, user, region, zone, host with the original's
//! fall-backs and `NA`), its required raw fields, its filters.
//!
//! The original reads every field through a Spark schema of strings, so a
//! number where a string is expected is read as its text; this does the same.

use crate::spec::{Column, Filter, PreTransformSpec, Required};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// A JSON object's entries, values left raw (a key given twice keeps its
/// last value, as Python and Spark do).
#[derive(Debug, Default)]
pub struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Fields<'a> {
    /// The entry's value as text: strings unescaped, other scalars and
    /// objects as their JSON text, `null` as `None`.
    pub fn text(&self, key: &str) -> Option<Cow<'a, str>> {
        let raw = self.0.iter().rev().find(|(k, _)| k == key)?.1.get();
        if raw == "null" {
            None
        } else if raw.starts_with('"') {
            if raw.contains('\\') {
                serde_json::from_str::<String>(raw).ok().map(Cow::Owned)
            } else {
                Some(Cow::Borrowed(&raw[1..raw.len() - 1]))
            }
        } else {
            Some(Cow::Borrowed(raw))
        }
    }

    /// The entry's text when it is neither missing, `null` nor empty (the
    /// original's `!= ''` tests).
    pub fn non_empty(&self, key: &str) -> Option<Cow<'a, str>> {
        self.text(key).filter(|t| !t.is_empty())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Fields<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for FieldsVisitor<'a> {
            type Value = Fields<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'a>, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<Cow<'a, str>, &'a RawValue>()? {
                    out.push((k, v));
                }
                Ok(Fields(out))
            }
            fn visit_unit<E>(self) -> Result<Fields<'a>, E> {
                Ok(Fields::default())
            }
        }
        deserializer.deserialize_any(FieldsVisitor(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    metric: MetricPart<'a>,
    #[serde(borrow, default)]
    meta: Option<Fields<'a>>,
    #[serde(borrow, default)]
    creation_time: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct MetricPart<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    dimensions: Option<Fields<'a>>,
    #[serde(borrow)]
    timestamp: &'a RawValue,
    #[serde(borrow)]
    value: &'a RawValue,
    #[serde(borrow, default)]
    value_meta: Option<Fields<'a>>,
}

/// A number given as a JSON number or as numeric text (Spark casts the
/// string column to double).
fn number(raw: &RawValue) -> Option<f64> {
    let text = raw.get();
    let text = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
    text.trim().parse::<f64>().ok().filter(|x| x.is_finite())
}

/// One metric of the `metrics` topic.
pub struct Metric<'a> {
    pub name: Cow<'a, str>,
    /// Milliseconds since the Unix epoch (a fraction is dropped).
    pub timestamp_ms: i64,
    pub value: f64,
    dimensions: Fields<'a>,
    value_meta: Fields<'a>,
    meta: Fields<'a>,
    has_creation_time: bool,
}

impl<'a> Metric<'a> {
    /// Parse an envelope; the error is a reason for the dead-letter topic.
    pub fn parse(bytes: &'a [u8]) -> Result<Metric<'a>, String> {
        let text = std::str::from_utf8(bytes).map_err(|e| format!("message is not valid UTF-8: {e}"))?;
        let envelope: Envelope<'a> = serde_json::from_str(text).map_err(|e| format!("not a metric envelope: {e}"))?;
        let m = envelope.metric;
        let timestamp = number(m.timestamp)
            .filter(|t| t.abs() < 1e15)
            .ok_or_else(|| format!("metric.timestamp is not a number of milliseconds: {}", m.timestamp.get()))?;
        let value = number(m.value).ok_or_else(|| format!("metric.value is not a finite number: {}", m.value.get()))?;
        Ok(Metric {
            name: m.name,
            timestamp_ms: timestamp as i64,
            value,
            dimensions: m.dimensions.unwrap_or_default(),
            value_meta: m.value_meta.unwrap_or_default(),
            meta: envelope.meta.unwrap_or_default(),
            has_creation_time: envelope.creation_time.is_some_and(|c| c.get() != "null" && c.get() != "\"\""),
        })
    }

    /// Whether every required raw field is there and not empty.
    pub fn has_required(&self, spec: &PreTransformSpec) -> bool {
        spec.required.iter().all(|field| match field {
            Required::Envelope(name) => match name.as_str() {
                "creation_time" => self.has_creation_time,
                "metric.name" | "metric.timestamp" | "metric.value" | "metric" => true,
                _ => false,
            },
            Required::Dimension(x) => self.dimensions.non_empty(x).is_some(),
            Required::Meta(x) => self.meta.non_empty(x).is_some(),
            Required::ValueMeta(x) => self.value_meta.non_empty(x).is_some(),
        })
    }

    /// A record-store column's value (`None` for a missing dimension, meta or
    /// value_meta entry, as Spark's null).
    pub fn column(&self, column: &Column, spec: &PreTransformSpec, metric_id: &str) -> Option<Cow<'a, str>> {
        let na = || Cow::Borrowed("NA");
        Some(match column {
            Column::EventType => Cow::Owned(spec.event_type.clone()),
            Column::ResourceUuid => self
                .dimensions
                .non_empty("instanceId")
                .or_else(|| self.dimensions.non_empty("resource_id"))
                .unwrap_or_else(na),
            Column::TenantId => self
                .dimensions
                .non_empty("tenantId")
                .or_else(|| self.dimensions.non_empty("tenant_id"))
                .or_else(|| self.dimensions.non_empty("project_id"))
                .unwrap_or_else(na),
            Column::UserId => self.meta.non_empty("userId").unwrap_or_else(na),
            Column::Region => {
                self.meta.non_empty("region").or_else(|| spec.default_region.clone().map(Cow::Owned)).unwrap_or_else(na)
            }
            Column::Zone => {
                self.meta.non_empty("zone").or_else(|| spec.default_zone.clone().map(Cow::Owned)).unwrap_or_else(na)
            }
            Column::Host => {
                self.dimensions.non_empty("hostname").or_else(|| self.value_meta.non_empty("host")).unwrap_or_else(na)
            }
            Column::MetricId | Column::MetricGroup => Cow::Owned(metric_id.to_string()),
            Column::Dimension(x) => return self.dimensions.text(x),
            Column::Meta(x) => return self.meta.text(x),
            Column::ValueMeta(x) => return self.value_meta.text(x),
        })
    }

    /// Append a column's value to a group key (no copy for the columns
    /// every shipped spec groups by).
    pub fn push_column(&self, key: &mut Vec<u8>, column: &Column, spec: &PreTransformSpec, metric_id: &str) {
        match column {
            Column::EventType => crate::exchange::push_value(key, Some(&spec.event_type)),
            Column::MetricId | Column::MetricGroup => crate::exchange::push_own_id(key),
            other => crate::exchange::push_value(key, self.column(other, spec, metric_id).as_deref()),
        }
    }

    /// Whether the record passes every filter of a transform spec.
    pub fn passes(&self, filters: &[Filter], spec: &PreTransformSpec, metric_id: &str) -> bool {
        filters.iter().all(|f| match self.column(&f.column, spec, metric_id) {
            Some(value) => f.regex.is_match(&value) == f.include,
            None => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Specs, SHIPPED_PRE_TRANSFORM, SHIPPED_TRANSFORM};

    #[test]
    fn columns_fall_back_as_the_original_does() {
        let specs = Specs::parse(SHIPPED_PRE_TRANSFORM, SHIPPED_TRANSFORM, None).unwrap();
        let pre = &specs.by_event_type["mem.total_mb"];
        let m = Metric::parse(
            br#"{"metric":{"name":"mem.total_mb","dimensions":{"hostname":"","project_id":"p","n":5},"timestamp":"1000","value":2,"value_meta":{"host":"vh"}},"meta":{"region":""},"creation_time":1}"#,
        )
        .unwrap();
        assert_eq!(m.timestamp_ms, 1000);
        assert_eq!(m.column(&Column::Host, pre, "x").as_deref(), Some("vh"));
        assert_eq!(m.column(&Column::TenantId, pre, "x").as_deref(), Some("p"));
        assert_eq!(m.column(&Column::ResourceUuid, pre, "x").as_deref(), Some("NA"));
        assert_eq!(m.column(&Column::Region, pre, "x").as_deref(), Some("W"));
        assert_eq!(m.column(&Column::UserId, pre, "x").as_deref(), Some("NA"));
        assert_eq!(m.column(&Column::Dimension("n".into()), pre, "x").as_deref(), Some("5"));
        assert_eq!(m.column(&Column::Dimension("gone".into()), pre, "x"), None);
        assert!(m.has_required(pre));
        let vm = &specs.by_event_type["vm.mem.total_mb"];
        assert!(!m.has_required(vm), "dimensions#tenant_id and resource_id are missing");
    }

    #[test]
    fn bad_values_have_reasons() {
        let e = Metric::parse(br#"{"metric":{"name":"a","timestamp":1,"value":"x"}}"#).err().unwrap();
        assert!(e.contains("metric.value"), "{e}");
        let e = Metric::parse(br#"{"metric":{"name":"a","value":1}}"#).err().unwrap();
        assert!(e.contains("timestamp"), "{e}");
        assert!(Metric::parse(b"\xff").err().unwrap().contains("UTF-8"));
    }
}
