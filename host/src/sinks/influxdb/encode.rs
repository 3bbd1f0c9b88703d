//! Points → InfluxDB line protocol with millisecond timestamps, escaped as
//! monasca-persister's `line_utils` does: names, tag keys and tag values
//! escape `\`, space, `,` and `=`; string fields are quoted with `\`, `"` and
//! newline escaped; floats are written as Python's `repr`.

use crate::engine::types::{FieldValue, Point};
use monasca_guest_sdk::pyjson::write_float_repr;
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
        write_field(out, value);
    }
    let _ = write!(out, " {}", point.timestamp_ms);
}

fn write_field(out: &mut String, value: &FieldValue) {
    match value {
        FieldValue::Float(f) => write_float_repr(out, *f),
        FieldValue::Integer(i) => {
            let _ = write!(out, "{i}i");
        }
        FieldValue::Unsigned(u) => {
            let _ = write!(out, "{u}u");
        }
        FieldValue::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        FieldValue::Text(s) => escape_string(out, s),
    }
}

/// `line_utils.escape_tag`.
fn escape_key(out: &mut String, s: &str) {
    for c in s.chars() {
        if matches!(c, '\\' | ' ' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// `line_utils.escape_value`.
fn escape_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
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
