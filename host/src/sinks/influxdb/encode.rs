//! Structured points (`store` effects) → InfluxDB line protocol with
//! millisecond timestamps, byte for byte as monasca-persister 9.0.0 writes
//! them. The escaping rules live in the guest SDK (`lineproto`), shared with
//! guests that encode points themselves (`store-encoded` effects).

use crate::engine::types::{FieldValue, Point};
use monasca_guest_sdk::lineproto::{escape_key, write_field_ref, FieldRef};
use std::fmt::Write;

/// One point as one line (no trailing newline).
pub fn line(point: &Point) -> String {
    let mut out = String::with_capacity(128);
    write_line(&mut out, point);
    out
}

/// Append one point as one line (no trailing newline) to `out`.
pub fn write_line(out: &mut String, point: &Point) {
    escape_key(out, &point.measurement);
    for (key, value) in &point.tags {
        out.push(',');
        escape_key(out, key);
        out.push('=');
        escape_key(out, value);
    }
    for (i, (key, value)) in point.fields.iter().enumerate() {
        out.push(if i == 0 { ' ' } else { ',' });
        escape_key(out, key);
        out.push('=');
        write_field_ref(
            out,
            match value {
                FieldValue::Float(f) => FieldRef::Float(*f),
                FieldValue::Integer(i) => FieldRef::Integer(*i),
                FieldValue::Unsigned(u) => FieldRef::Unsigned(*u),
                FieldValue::Boolean(b) => FieldRef::Boolean(*b),
                FieldValue::Text(s) => FieldRef::Text(s),
            },
        );
    }
    let _ = write!(out, " {}", point.timestamp_ms);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_monasca_persister() {
        let point = Point {
            measurement: "a b,c=d\\".into(),
            tags: vec![("k y".into(), "v,=".into())],
            fields: vec![
                ("value".into(), FieldValue::Float(0.0)),
                ("value_meta".into(), FieldValue::Text("{\"q\": \"x\\y\nz\"}".into())),
                ("n".into(), FieldValue::Integer(-3)),
            ],
            timestamp_ms: 42,
        };
        assert_eq!(
            line(&point),
            "a\\ b\\,c\\=d\\\\,k\\ y=v\\,\\= value=0.0,value_meta=\"{\\\"q\\\": \\\"x\\\\y\\nz\\\"}\",n=-3i 42"
        );
    }
}
