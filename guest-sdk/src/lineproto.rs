//! InfluxDB line protocol, written as monasca-persister 9.0.0 writes it, and
//! [`LineBatch`]: many points for one sink in one buffer.
//!
//! Escaping follows monasca-persister's `line_utils`: measurement, tag keys,
//! tag values and field keys escape `\`, space, `,` and `=`; string field
//! values are quoted, with `\`, `"` and newline escaped; floats are written as
//! Python's `repr`; integers carry the `i` suffix, unsigned the `u` suffix.
//!
//! Handing points over as one [`LineBatch`] (a `store-encoded` effect) costs
//! one buffer copy at the component boundary instead of one string per tag,
//! which matters at Monasca's volumes (see `BENCHMARKS.md`).

use crate::effect::{EncodedPoints, FieldValue, Point};
use crate::message::{Message, Origin};
use crate::pyjson::write_float_repr;
use std::fmt::Write;

/// Append `point` as one line (no newline) to `out`.
pub fn write_point(out: &mut String, point: &Point) {
    write_parts(
        out,
        &point.measurement,
        &point.tags,
        point.fields.iter().map(|(k, v)| (k.as_str(), v)),
        point.timestamp_ms,
    )
}

/// Append one line from its parts (no newline) to `out`; shared by the
/// guest-side [`Point`] and the host's own point type.
pub fn write_parts<'a>(
    out: &mut String,
    measurement: &str,
    tags: &[(String, String)],
    fields: impl Iterator<Item = (&'a str, &'a FieldValue)>,
    timestamp_ms: i64,
) {
    escape_key(out, measurement);
    for (key, value) in tags {
        out.push(',');
        escape_key(out, key);
        out.push('=');
        escape_key(out, value);
    }
    for (i, (key, value)) in fields.enumerate() {
        out.push(if i == 0 { ' ' } else { ',' });
        escape_key(out, key);
        out.push('=');
        write_field(out, value);
    }
    let _ = write!(out, " {timestamp_ms}");
}

/// A borrowed field value: what [`write_field_ref`] needs, whichever point
/// type (the SDK's or the host's) it comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldRef<'a> {
    /// Float, written as Python's `repr`.
    Float(f64),
    /// Signed integer, `i` suffix.
    Integer(i64),
    /// Unsigned integer, `u` suffix.
    Unsigned(u64),
    /// Boolean.
    Boolean(bool),
    /// String, quoted and escaped.
    Text(&'a str),
}

impl<'a> From<&'a FieldValue> for FieldRef<'a> {
    fn from(value: &'a FieldValue) -> Self {
        match value {
            FieldValue::Float(f) => FieldRef::Float(*f),
            FieldValue::Integer(i) => FieldRef::Integer(*i),
            FieldValue::Unsigned(u) => FieldRef::Unsigned(*u),
            FieldValue::Boolean(b) => FieldRef::Boolean(*b),
            FieldValue::Text(s) => FieldRef::Text(s),
        }
    }
}

/// A field value as line protocol writes it.
pub fn write_field(out: &mut String, value: &FieldValue) {
    write_field_ref(out, value.into())
}

/// A borrowed field value as line protocol writes it.
pub fn write_field_ref(out: &mut String, value: FieldRef<'_>) {
    match value {
        FieldRef::Float(f) => write_float_repr(out, f),
        FieldRef::Integer(i) => {
            let _ = write!(out, "{i}i");
        }
        FieldRef::Unsigned(u) => {
            let _ = write!(out, "{u}u");
        }
        FieldRef::Boolean(b) => out.push_str(if b { "true" } else { "false" }),
        FieldRef::Text(s) => escape_string(out, s),
    }
}

/// monasca-persister's `line_utils.escape_tag`: `\`, space, `,` and `=` get a backslash.
pub fn escape_key(out: &mut String, s: &str) {
    // Most names and values need no escape: check them in one pass first.
    if !s.bytes().any(|b| KEY_SPECIAL[usize::from(b)]) {
        out.push_str(s);
        return;
    }
    escape_ascii(
        out,
        s,
        |b| matches!(b, b'\\' | b' ' | b',' | b'='),
        |out, b| {
            out.push('\\');
            out.push(b as char);
        },
    )
}

/// The bytes [`escape_key`] escapes, as a table (one load per byte).
static KEY_SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    table[b'\\' as usize] = true;
    table[b' ' as usize] = true;
    table[b',' as usize] = true;
    table[b'=' as usize] = true;
    table
};

/// True when `bytes` holds one of the four `wanted` bytes, testing a word of
/// eight bytes at a time (a byte loop is the slow part of escaping in a guest).
pub fn has_any_of(bytes: &[u8], wanted: [u8; 4]) -> bool {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    // A byte of `word` equals `b` when that byte of `word ^ b…b` is zero.
    let has_zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS != 0;
    let mut words = bytes.chunks_exact(8);
    for chunk in &mut words {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        if wanted.iter().any(|&b| has_zero_byte(word ^ (ONES * u64::from(b)))) {
            return true;
        }
    }
    words.remainder().iter().any(|b| wanted.contains(b))
}

/// Copy `s` to `out`, passing each ASCII byte that `special` picks to `escape`
/// and everything between such bytes through in one piece. The special bytes
/// are ASCII, so cutting at them never splits a UTF-8 character.
fn escape_ascii(out: &mut String, s: &str, special: impl Fn(u8) -> bool, escape: impl Fn(&mut String, u8)) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if special(b) {
            out.push_str(&s[start..i]);
            escape(out, b);
            start = i + 1;
        }
    }
    out.push_str(&s[start..]);
}

/// monasca-persister's `line_utils.escape_value`: a quoted string with `\`,
/// `"` and newline escaped.
pub fn escape_string(out: &mut String, s: &str) {
    out.push('"');
    escape_ascii(
        out,
        s,
        |b| matches!(b, b'\\' | b'"' | b'\n'),
        |out, b| {
            out.push_str(match b {
                b'\\' => "\\\\",
                b'"' => "\\\"",
                _ => "\\n",
            })
        },
    );
    out.push('"');
}

/// Points for one sink, encoded as line protocol into one buffer, each line
/// remembering the message it came from. Push points, then hand the batch to
/// [`crate::Effects::store_lines`].
#[derive(Debug, Clone, Default)]
pub struct LineBatch {
    sink: String,
    tenant: Option<String>,
    body: String,
    origins: Vec<Origin>,
}

impl LineBatch {
    /// An empty batch for `sink`, with room for about `points` points.
    pub fn new(sink: impl Into<String>, points: usize) -> Self {
        LineBatch {
            sink: sink.into(),
            tenant: None,
            body: String::with_capacity(points * 192),
            origins: Vec::with_capacity(points),
        }
    }

    /// An empty batch for the points of one tenant (see
    /// [`crate::effect::EncodedPoints::tenant`]).
    pub fn for_tenant(sink: impl Into<String>, tenant: impl Into<String>, points: usize) -> Self {
        LineBatch { tenant: Some(tenant.into()), ..LineBatch::new(sink, points) }
    }

    /// The tenant of the batch's points, if it was made for one.
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// The batch was made for `tenant`. Compares eight bytes at a time: a
    /// guest asks this for every point, and `==` on text calls the C
    /// library's byte-by-byte `memcmp`.
    pub fn is_for_tenant(&self, tenant: &str) -> bool {
        self.tenant.as_deref().is_some_and(|mine| crate::compare::same_text(mine, tenant))
    }

    /// Append one point derived from `from`.
    pub fn push(&mut self, from: &Message, point: &Point) {
        if !self.origins.is_empty() {
            self.body.push('\n');
        }
        write_point(&mut self.body, point);
        self.origins.push(from.origin());
    }

    /// Append one line written by `write` (without a newline), derived from
    /// `from`. When `write` fails, whatever it wrote is removed and its error
    /// returned: the batch is unchanged.
    pub fn push_with<E>(&mut self, from: &Message, write: impl FnOnce(&mut String) -> Result<(), E>) -> Result<(), E> {
        let mark = self.body.len();
        if !self.origins.is_empty() {
            self.body.push('\n');
        }
        match write(&mut self.body) {
            Ok(()) => {
                self.origins.push(from.origin());
                Ok(())
            }
            Err(e) => {
                self.body.truncate(mark);
                Err(e)
            }
        }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.origins.len()
    }

    /// True when no point was pushed.
    pub fn is_empty(&self) -> bool {
        self.origins.is_empty()
    }

    /// The lines written so far.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.body.split('\n').filter(|_| !self.origins.is_empty())
    }

    pub(crate) fn into_encoded(self) -> EncodedPoints {
        EncodedPoints { sink: self.sink, tenant: self.tenant, body: self.body.into_bytes(), origins: self.origins }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_knows_its_tenant() {
        let batch = LineBatch::for_tenant("tsdb", "a-tenant-id-of-32-bytes-00000001", 1);
        assert!(batch.is_for_tenant("a-tenant-id-of-32-bytes-00000001"));
        assert!(!batch.is_for_tenant("a-tenant-id-of-32-bytes-00000002"));
        assert!(!LineBatch::new("tsdb", 1).is_for_tenant(""));
    }

    #[test]
    fn word_search_finds_each_special_byte_at_every_position() {
        for len in 0..40 {
            let plain = "a".repeat(len);
            assert!(!has_any_of(plain.as_bytes(), *b"\\ ,="));
            for at in 0..len {
                for special in [b'\\', b' ', b',', b'='] {
                    let mut bytes = plain.clone().into_bytes();
                    bytes[at] = special;
                    assert!(has_any_of(&bytes, *b"\\ ,="), "{special} at {at} of {len}");
                }
            }
        }
        // Bytes next to the wanted ones (and UTF-8 continuation bytes) are not matches.
        assert!(!has_any_of("!-<>[]é漢字😀+/".as_bytes(), *b"\\ ,="));
    }

    #[test]
    fn escapes_like_monasca_persister() {
        let point = Point::new("a b,c=d\\", 42)
            .tag("k y", "v,=")
            .field("value", 0.0)
            .field("value_meta", "{\"q\": \"x\\y\nz\"}")
            .field("n", -3i64);
        let mut line = String::new();
        write_point(&mut line, &point);
        assert_eq!(
            line,
            "a\\ b\\,c\\=d\\\\,k\\ y=v\\,\\= value=0.0,value_meta=\"{\\\"q\\\": \\\"x\\\\y\\nz\\\"}\",n=-3i 42"
        );
    }

    #[test]
    fn failed_push_leaves_the_batch_unchanged() {
        let mut batch = LineBatch::new("tsdb", 2);
        let m = Message::new("metrics", "x");
        batch.push(&m, &Point::new("a", 1).field("value", 1.0));
        let failed: Result<(), &str> = batch.push_with(&m, |out| {
            out.push_str("half a line");
            Err("bad")
        });
        assert_eq!(failed, Err("bad"));
        assert_eq!(batch.len(), 1);
        assert_eq!(batch.lines().collect::<Vec<_>>(), ["a value=1.0 1"]);
    }

    #[test]
    fn batch_keeps_one_origin_per_line() {
        let mut batch = LineBatch::new("tsdb", 2);
        let mut m = Message::new("metrics", "x");
        batch.push(&m, &Point::new("a", 1).field("value", 1.0));
        m.offset = 7;
        batch.push(&m, &Point::new("b", 2).field("value", 2.0));
        let lines: Vec<&str> = batch.lines().collect();
        assert_eq!(lines, ["a value=1.0 1", "b value=2.0 2"]);
        let encoded = batch.into_encoded();
        assert_eq!(encoded.origins.iter().map(|o| o.offset).collect::<Vec<_>>(), [0, 7]);
    }
}
