//! [`Json`]: a JSON value read from a message as Python's `json.loads` reads
//! it, borrowing its strings from the message where it can, and written back
//! as `json.dumps` writes it.
//!
//! A guest that re-publishes what it read (monasca-notification puts the
//! whole alarm into each notification record) spends most of its time in
//! building and walking a tree of owned strings and hash maps. This tree
//! keeps an object's members in a vector, in input order (Python's dicts
//! keep it), with keys and strings pointing into the message unless they
//! held escapes. Objects are small in Monasca's messages, so a member is
//! found by a linear scan.

use super::{write_integer, write_json_float, write_py_quoted, PyStr};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

/// A JSON value, strings borrowed from the text it was read from.
#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    /// `null` (Python `None`).
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number without fraction or exponent that fits 64 bits.
    Int(i64),
    /// Such a number above `i64::MAX`.
    UInt(u64),
    /// An integer beyond 64 bits, as its digits (made by
    /// [`super::loads`]; Python's integers have no size limit).
    BigInt(Cow<'a, str>),
    /// Any other number (Python `float`).
    Float(f64),
    /// A string (which may hold lone surrogates: see [`PyStr`]).
    Str(PyStr<'a>),
    /// An array.
    Array(Vec<Json<'a>>),
    /// An object: members in input order, each key once (a repeated key
    /// keeps its first place and its last value, as in a Python dict).
    Object(Vec<(PyStr<'a>, Json<'a>)>),
}

/// Shared `null` for lookups that find nothing.
static NULL: Json<'static> = Json::Null;

impl<'a> Json<'a> {
    /// Read `text` (one JSON value).
    pub fn parse(text: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(text)
    }

    /// Read `text` (one JSON value), already known to be UTF-8.
    pub fn parse_str(text: &'a str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// A member of an object (`None` for a missing key or a non-object).
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A member of an object, or `null`.
    pub fn member(&self, key: &str) -> &Json<'a> {
        self.get(key).unwrap_or(&NULL)
    }

    /// Take a member out of an object.
    pub fn remove(&mut self, key: &str) -> Option<Json<'a>> {
        match self {
            Json::Object(members) => {
                let at = members.iter().position(|(k, _)| k == key)?;
                Some(members.remove(at).1)
            }
            _ => None,
        }
    }

    /// The text of a string (a lone surrogate written `\\uXXXX`: see
    /// [`PyStr`]).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s.text()),
            _ => None,
        }
    }

    /// A string, as read.
    pub fn as_py_str(&self) -> Option<&PyStr<'a>> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Whether a string in the value (or a key) holds a lone surrogate:
    /// written as UTF-8 (`ensure_ascii=False`), Python's would fail.
    pub fn has_lone_surrogate(&self) -> bool {
        match self {
            Json::Str(s) => s.has_lone_surrogate(),
            Json::Array(items) => items.iter().any(Json::has_lone_surrogate),
            Json::Object(members) => members.iter().any(|(k, v)| k.has_lone_surrogate() || v.has_lone_surrogate()),
            _ => false,
        }
    }

    /// The items of an array.
    pub fn as_array(&self) -> Option<&[Json<'a>]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The members of an object.
    pub fn as_object(&self) -> Option<&[(PyStr<'a>, Json<'a>)]> {
        match self {
            Json::Object(members) => Some(members),
            _ => None,
        }
    }

    /// Whether it is a string.
    pub fn is_string(&self) -> bool {
        matches!(self, Json::Str(_))
    }

    /// Whether it is an array.
    pub fn is_array(&self) -> bool {
        matches!(self, Json::Array(_))
    }

    /// A number as `f64` (integers converted).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Json::Int(i) => Some(i as f64),
            Json::UInt(u) => Some(u as f64),
            Json::Float(f) => Some(f),
            Json::BigInt(ref digits) => digits.parse().ok(),
            _ => None,
        }
    }

    /// An integer as `i64` (`None` for floats and larger integers).
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Json::Int(i) => Some(i),
            _ => None,
        }
    }

    /// A copy that owns its strings.
    pub fn into_owned(self) -> Json<'static> {
        match self {
            Json::Null => Json::Null,
            Json::Bool(b) => Json::Bool(b),
            Json::Int(i) => Json::Int(i),
            Json::UInt(u) => Json::UInt(u),
            Json::BigInt(d) => Json::BigInt(Cow::Owned(d.into_owned())),
            Json::Float(f) => Json::Float(f),
            Json::Str(s) => Json::Str(s.into_owned()),
            Json::Array(items) => Json::Array(items.into_iter().map(Json::into_owned).collect()),
            Json::Object(members) => {
                Json::Object(members.into_iter().map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
            }
        }
    }

    /// `json.dumps(value)` (`ensure_ascii=True`, separators `", "` and `": "`).
    pub fn dumps_ascii(&self) -> String {
        let mut out = String::new();
        self.write_ascii(&mut out);
        out
    }

    /// Append [`Json::dumps_ascii`] to `out`.
    pub fn write_ascii(&self, out: &mut String) {
        self.write(out, true, None, 0);
    }

    /// `json.dumps(value, indent=indent)` (`ensure_ascii=True`).
    pub fn dumps_indented_ascii(&self, indent: usize) -> String {
        let mut out = String::new();
        self.write(&mut out, true, Some(indent), 0);
        out
    }

    /// Append [`Json::dumps`] to `out`.
    pub fn write_to(&self, out: &mut String) {
        self.write(out, false, None, 0);
    }

    /// `simplejson.dumps(value, ensure_ascii=False)`.
    pub fn dumps(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, false, None, 0);
        out
    }

    fn write(&self, out: &mut String, ascii: bool, indent: Option<usize>, depth: usize) {
        let newline = |out: &mut String, depth: usize| {
            if let Some(width) = indent {
                out.push('\n');
                out.extend(std::iter::repeat_n(' ', width * depth));
            }
        };
        let separator = if indent.is_some() { "," } else { ", " };
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(true) => out.push_str("true"),
            Json::Bool(false) => out.push_str("false"),
            Json::Int(i) => write_integer(out, *i),
            Json::UInt(u) => out.push_str(&u.to_string()),
            Json::BigInt(digits) => out.push_str(digits),
            Json::Float(f) => write_json_float(out, *f),
            Json::Str(s) => write_py_quoted(out, s, ascii),
            Json::Array(items) if items.is_empty() => out.push_str("[]"),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(separator);
                    }
                    newline(out, depth + 1);
                    item.write(out, ascii, indent, depth + 1);
                }
                newline(out, depth);
                out.push(']');
            }
            Json::Object(members) if members.is_empty() => out.push_str("{}"),
            Json::Object(members) => {
                out.push('{');
                for (i, (key, item)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push_str(separator);
                    }
                    newline(out, depth + 1);
                    write_py_quoted(out, key, ascii);
                    out.push_str(": ");
                    item.write(out, ascii, indent, depth + 1);
                }
                newline(out, depth);
                out.push('}');
            }
        }
    }
}

impl From<&serde_json::Value> for Json<'static> {
    fn from(value: &serde_json::Value) -> Self {
        use serde_json::Value;
        match value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => Json::Int(i),
                (None, Some(u), _) => Json::UInt(u),
                (_, _, f) => Json::Float(f.unwrap_or(f64::NAN)),
            },
            Value::String(s) => Json::Str(PyStr::from(s.clone())),
            Value::Array(items) => Json::Array(items.iter().map(Json::from).collect()),
            Value::Object(map) => {
                Json::Object(map.iter().map(|(k, v)| (PyStr::from(k.clone()), Json::from(v))).collect())
            }
        }
    }
}

impl<'de> de::Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(b))
    }

    fn visit_i64<E>(self, i: i64) -> Result<Json<'de>, E> {
        Ok(Json::Int(i))
    }

    fn visit_u64<E>(self, u: u64) -> Result<Json<'de>, E> {
        Ok(i64::try_from(u).map(Json::Int).unwrap_or(Json::UInt(u)))
    }

    fn visit_f64<E>(self, f: f64) -> Result<Json<'de>, E> {
        Ok(Json::Float(f))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::Str(PyStr::from(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Json<'de>, E> {
        Ok(Json::Str(PyStr::from(s.to_string())))
    }

    fn visit_string<E>(self, s: String) -> Result<Json<'de>, E> {
        Ok(Json::Str(PyStr::from(s)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut members = Members::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value: Json<'de> = map.next_value()?;
            members.insert(PyStr::from(key), value);
        }
        Ok(Json::Object(members.into_vec()))
    }
}

/// An object's members as they are read: a repeated key keeps its first
/// place and takes the last value, as in a Python dict.
pub(super) struct Members<'a> {
    members: Vec<(PyStr<'a>, Json<'a>)>,
    /// Past [`Members::SCAN`] members, where each key is.
    index: Option<HashMap<PyStr<'a>, usize>>,
}

impl<'a> Members<'a> {
    /// Up to this many members, a repeated key is found by a scan.
    const SCAN: usize = 32;

    pub(super) fn with_capacity(n: usize) -> Self {
        Members { members: Vec::with_capacity(n.min(64)), index: None }
    }

    #[inline]
    pub(super) fn insert(&mut self, key: PyStr<'a>, value: Json<'a>) {
        let at = match &self.index {
            Some(index) => index.get(&key).copied(),
            // Lengths first: most keys differ in length (equal strings have equal texts).
            None => self.members.iter().position(|(k, _)| k.text().len() == key.text().len() && *k == key),
        };
        match at {
            Some(at) => self.members[at].1 = value,
            None => {
                if let Some(index) = &mut self.index {
                    index.insert(key.clone(), self.members.len());
                }
                self.members.push((key, value));
                if self.index.is_none() && self.members.len() > Self::SCAN {
                    self.index = Some(self.members.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)).collect());
                }
            }
        }
    }

    pub(super) fn into_vec(self) -> Vec<(PyStr<'a>, Json<'a>)> {
        self.members
    }
}

/// An object key, borrowed when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(s))
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s.to_string()))
    }

    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_the_serde_tree_writes() {
        let cases = [
            r#"{"b": 1, "a": [1.5, -0.0, 1e21, 12345678901234567890, -5, "x\"y\\z\u00e9\ud83d\ude00\n"], "c": {}, "d": [], "e": null, "f": true}"#,
            r#"[{"k": {"nested": [false, 0.1, 100.0]}}, "\u0000\u001f\u007f"]"#,
            r#""plain""#,
        ];
        for text in cases {
            let ours = Json::parse(text.as_bytes()).expect("parses");
            let theirs: serde_json::Value = serde_json::from_str(text).expect("serde parses");
            assert_eq!(ours.dumps_ascii(), super::super::dumps_ascii(&theirs), "{text}");
            assert_eq!(ours.dumps(), super::super::dumps(&theirs), "{text}");
            assert_eq!(ours.dumps_indented_ascii(3), super::super::dumps_indented_ascii(&theirs, 3), "{text}");
            assert_eq!(ours, Json::from(&theirs), "{text}");
        }
    }

    #[test]
    fn strings_borrow_unless_escaped_and_repeated_keys_keep_first_place() {
        let text = br#"{"plain": "abc", "esc\"aped": "a\nb", "plain": "last"}"#;
        let value = Json::parse(text).expect("parses");
        let members = value.as_object().expect("object");
        assert_eq!(members.len(), 2);
        assert!(members[0].0.is_borrowed() && members[0].0 == "plain");
        assert!(matches!(&members[0].1, Json::Str(s) if s.is_borrowed() && s == "last"));
        assert!(!members[1].0.is_borrowed() && members[1].0 == "esc\"aped");
        assert_eq!(value.member("esc\"aped").as_str(), Some("a\nb"));
        assert_eq!(value.member("missing"), &Json::Null);
        // Many members: repeated keys are still merged.
        let many: Vec<String> = (0..100).map(|i| format!("\"k{}\": {i}", i % 50)).collect();
        let text = format!("{{{}}}", many.join(", "));
        let value = Json::parse(text.as_bytes()).expect("parses");
        let members = value.as_object().expect("object");
        assert_eq!(members.len(), 50);
        assert_eq!(value.member("k3"), &Json::Int(53));
        assert!(Json::parse(b"{\"a\": }").is_err());
    }
}
