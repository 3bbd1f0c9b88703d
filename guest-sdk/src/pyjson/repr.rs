//! Python's `repr()` and `str()` of a value read from JSON, as Monasca's
//! error messages and emails show values (`{'a': 1}`, `[1, 'two']`, `None`,
//! `True`, `1e-05`).

use super::{write_float_repr, EncodeError, Json, PyStr};
use std::borrow::Cow;
use std::fmt::Write;

impl Json<'_> {
    /// Python's `repr()` of the value `json.loads` would make of it.
    pub fn py_repr(&self) -> String {
        let mut out = String::new();
        write_repr(&mut out, self);
        out
    }

    /// Python's `str()`: a string as it is, anything else as its `repr()`.
    pub fn py_str(&self) -> String {
        self.py_text().into_owned()
    }

    /// [`Json::py_str`], borrowing a string instead of copying it. A lone
    /// surrogate in a string is written `\ud800` (see [`PyStr`]); where
    /// Python would fail to encode it, use [`Json::py_utf8`].
    pub fn py_text(&self) -> Cow<'_, str> {
        match self {
            Json::Str(s) => Cow::Borrowed(s.text()),
            other => Cow::Owned(other.py_repr()),
        }
    }

    /// `str(value).encode('utf-8')`: [`Json::py_text`], or Python's error
    /// for a string holding a lone surrogate (a list or dict holding one is
    /// fine: its `repr` escapes it).
    pub fn py_utf8(&self) -> Result<Cow<'_, str>, EncodeError> {
        match self {
            Json::Str(s) => s.to_utf8().map(Cow::Borrowed),
            other => Ok(Cow::Owned(other.py_repr())),
        }
    }
}

fn write_repr(out: &mut String, value: &Json<'_>) {
    match value {
        Json::Null => out.push_str("None"),
        Json::Bool(true) => out.push_str("True"),
        Json::Bool(false) => out.push_str("False"),
        Json::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Json::UInt(u) => {
            let _ = write!(out, "{u}");
        }
        Json::BigInt(digits) => out.push_str(digits),
        Json::Float(f) if f.is_nan() => out.push_str("nan"),
        Json::Float(f) if f.is_infinite() => out.push_str(if *f > 0.0 { "inf" } else { "-inf" }),
        Json::Float(f) => write_float_repr(out, *f),
        Json::Str(s) => write_py_str_repr(out, s),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, item);
            }
            out.push(']');
        }
        Json::Object(members) => {
            out.push('{');
            for (i, (key, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_py_str_repr(out, key);
                out.push_str(": ");
                write_repr(out, item);
            }
            out.push('}');
        }
    }
}

/// Python's `repr(str)`: single quotes unless the text holds a single quote
/// and no double quote; backslash, the quote and `\n \r \t` escaped; other
/// characters Python does not print as `\xNN`, `\uNNNN` or `\UNNNNNNNN`.
pub fn write_str_repr(out: &mut String, s: &str) {
    let quote = repr_quote(s);
    out.push(quote);
    for c in s.chars() {
        write_repr_char(out, c, quote);
    }
    out.push(quote);
}

/// [`write_str_repr`] of a [`PyStr`]: a lone surrogate as `\ud800`.
pub(super) fn write_py_str_repr(out: &mut String, s: &PyStr<'_>) {
    match s.as_str() {
        Some(text) => write_str_repr(out, text),
        None => {
            // The quote depends on quotes only, which the text keeps.
            let quote = repr_quote(s.text());
            out.push(quote);
            for c in s.chars() {
                match c {
                    Ok(c) => write_repr_char(out, c, quote),
                    Err(unit) => super::pystr::push_unit_escape(out, unit),
                }
            }
            out.push(quote);
        }
    }
}

/// Single quotes unless the text holds a single quote and no double quote.
fn repr_quote(s: &str) -> char {
    if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    }
}

fn write_repr_char(out: &mut String, c: char, quote: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        c if printable(c) => out.push(c),
        c if (c as u32) < 0x100 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if (c as u32) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\U{:08x}", c as u32);
        }
    }
}

/// Whether Python's `str.isprintable()` holds for `c`, for the characters
/// that occur in practice: control characters (C0, DEL, C1), separators
/// other than the space, format characters and private use are not.
fn printable(c: char) -> bool {
    let n = c as u32;
    !matches!(n,
        0x00..=0x1f | 0x7f..=0xa0 | 0xad
        | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e
        | 0x1680 | 0x2000..=0x200f | 0x2028..=0x202f | 0x205f..=0x2064 | 0x2066..=0x206f
        | 0x3000 | 0xd800..=0xdfff | 0xe000..=0xf8ff | 0xfeff | 0xfff9..=0xfffb
        | 0xe0001 | 0xe0020..=0xe007f | 0xf0000..=0x10ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr(text: &str) -> String {
        Json::parse(text.as_bytes()).unwrap().py_repr()
    }

    #[test]
    fn values_as_python_shows_them() {
        assert_eq!(
            repr(r#"{"a": 1, "b": [true, null, 1.5, 1e-5, "x"]}"#),
            "{'a': 1, 'b': [True, None, 1.5, 1e-05, 'x']}"
        );
        assert_eq!(repr(r#""it's""#), r#""it's""#);
        assert_eq!(repr(r#""it's \"q\"""#), r#"'it\'s "q"'"#);
        assert_eq!(repr(r#""a\\b\n\u0001\u007f\u00a0é\u2028😀""#), "'a\\\\b\\n\\x01\\x7f\\xa0é\\u2028😀'");
        assert_eq!(repr("1e20"), "1e+20");
        assert_eq!(repr("100.0"), "100.0");
        assert_eq!(Json::parse(b"\"plain\"").unwrap().py_str(), "plain");
        assert_eq!(Json::parse(b"12").unwrap().py_str(), "12");
    }

    #[test]
    fn lone_surrogates_show_as_python_shows_them() {
        let value = super::super::loads_with(
            r#"{"k\udc00": ["it's \ud800", "\ud83d\ude00\udfff"]}"#,
            super::super::LoadOptions::JSON,
        )
        .unwrap();
        assert_eq!(value.py_repr(), r#"{'k\udc00': ["it's \ud800", '😀\udfff']}"#);
        // str() of the list escapes; of the string itself, it cannot be encoded.
        let list = value.member("k\\udc00");
        assert_eq!(list, &Json::Null, "a key with a surrogate equals no Rust string");
        let (_, list) = &value.as_object().unwrap()[0];
        assert!(list.py_utf8().is_ok());
        let item = &list.as_array().unwrap()[0];
        assert_eq!(
            item.py_utf8().unwrap_err().to_string(),
            "'utf-8' codec can't encode character '\\ud800' in position 5: surrogates not allowed"
        );
        assert_eq!(item.py_text(), "it's \\ud800");
    }
}
