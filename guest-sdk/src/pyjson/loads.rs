//! [`loads`]: JSON read as Python's `json.loads` reads it, for guests that
//! must take exactly what Monasca's Python services take: `NaN`,
//! `Infinity` and `-Infinity`; integers of any size (kept as their digits,
//! [`Json::BigInt`], beyond 64 bits); `-0` as the integer 0; a repeated key
//! keeping its first place and its last value; a lone surrogate escape
//! (`"\ud800"`) kept in its string, when asked for ([`LoadOptions`]; see
//! [`PyStr`]). Strings are borrowed from the text unless they hold escapes.
//! Unlike Python it refuses nesting deeper than [`MAX_DEPTH`] (Python fails
//! around 1,000 levels with a `RecursionError`).

use super::tree::Members;
use super::{Json, PyStr};
use std::borrow::Cow;

/// The deepest nesting read.
pub const MAX_DEPTH: usize = 128;

/// Why a text is not JSON, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// What is wrong.
    pub message: &'static str,
    /// Byte offset in the text.
    pub at: usize,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.message, self.at)
    }
}

impl std::error::Error for LoadError {}

impl LoadError {
    /// The message as Python's `json` words it for `text`:
    /// `Expecting value: line 1 column 9 (char 8)` (the column and the char
    /// index count characters, as Python's do).
    pub fn python_message(&self, text: &str) -> String {
        let at = self.at.min(text.len());
        let before = text.get(..at).unwrap_or(text);
        let char_index = before.chars().count();
        let line = before.matches('\n').count() + 1;
        let column = match before.rfind('\n') {
            Some(newline) => before[newline + 1..].chars().count() + 1,
            None => char_index + 1,
        };
        format!("{}: line {line} column {column} (char {char_index})", self.message)
    }
}

/// Python's text for bytes that are not UTF-8, as `bytes.decode('utf-8')`
/// raises it: `'utf-8' codec can't decode byte 0xff in position 21: invalid
/// start byte`. `None` when `bytes` is UTF-8.
pub fn utf8_error_message(bytes: &[u8]) -> Option<String> {
    let error = std::str::from_utf8(bytes).err()?;
    let at = error.valid_up_to();
    let byte = bytes.get(at).copied().unwrap_or_default();
    let reason = match error.error_len() {
        None => "unexpected end of data",
        Some(_) if (0xc2..=0xf4).contains(&byte) => "invalid continuation byte",
        Some(_) => "invalid start byte",
    };
    Some(format!("'utf-8' codec can't decode byte 0x{byte:02x} in position {at}: {reason}"))
}

/// The most digits of an integer Python converts (`sys.get_int_max_str_digits()`).
pub const MAX_INT_DIGITS: usize = 4300;

/// What [`loads_with`] reads beyond standard JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    /// `NaN`, `Infinity` and `-Infinity` are numbers (Python's `json`;
    /// simplejson 3.19 and later refuse them by default).
    pub allow_nan: bool,
    /// A lone surrogate escape (`"\ud800"`) is kept in its string, as
    /// Python keeps it ([`PyStr`]); otherwise it is an error. A guest that
    /// asks for it writes strings with [`Json`]'s writers, which escape it,
    /// and fails where Python fails to encode it ([`PyStr::to_utf8`],
    /// [`Json::py_utf8`], [`Json::has_lone_surrogate`]).
    pub lone_surrogates: bool,
}

impl LoadOptions {
    /// Python's `json.loads`.
    pub const JSON: LoadOptions = LoadOptions { allow_nan: true, lone_surrogates: true };
    /// `simplejson.loads` of version 3.19 and later: no `NaN` or `Infinity`
    /// (a number too large for a float is still read, as infinity).
    pub const SIMPLEJSON: LoadOptions = LoadOptions { allow_nan: false, lone_surrogates: true };
}

/// Read `text` as one JSON document, as `json.loads` would, but refusing a
/// lone surrogate escape (for guests that hold strings as Rust text).
pub fn loads(text: &str) -> Result<Json<'_>, LoadError> {
    loads_with(text, LoadOptions { lone_surrogates: false, ..LoadOptions::JSON })
}

/// Read `text` as simplejson 3.19 and later read it by default, but
/// refusing a lone surrogate escape: as [`loads`], but `NaN`, `Infinity`
/// and `-Infinity` are not JSON (`allow_nan=False`).
pub fn loads_strict(text: &str) -> Result<Json<'_>, LoadError> {
    loads_with(text, LoadOptions { lone_surrogates: false, ..LoadOptions::SIMPLEJSON })
}

/// Read `text` as one JSON document, with `options`.
pub fn loads_with(text: &str, options: LoadOptions) -> Result<Json<'_>, LoadError> {
    let mut parser = Parser { text, bytes: text.as_bytes(), at: 0, depth: 0, options };
    parser.skip_whitespace();
    let value = parser.value()?;
    parser.skip_whitespace();
    if parser.at != parser.bytes.len() {
        return Err(parser.error("Extra data"));
    }
    Ok(value)
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    depth: usize,
    options: LoadOptions,
}

/// A string being read: text until a lone surrogate turns it into code units.
enum Buffer {
    Text(String),
    Wide(Vec<u16>),
}

impl Buffer {
    fn push_str(&mut self, s: &str) {
        match self {
            Buffer::Text(text) => text.push_str(s),
            Buffer::Wide(units) => units.extend(s.encode_utf16()),
        }
    }

    fn push(&mut self, c: char) {
        match self {
            Buffer::Text(text) => text.push(c),
            Buffer::Wide(units) => units.extend_from_slice(c.encode_utf16(&mut [0; 2])),
        }
    }

    fn push_lone(&mut self, unit: u16) {
        if let Buffer::Text(text) = self {
            *self = Buffer::Wide(text.encode_utf16().collect());
        }
        if let Buffer::Wide(units) = self {
            units.push(unit);
        }
    }

    fn finish<'a>(self) -> PyStr<'a> {
        match self {
            Buffer::Text(text) => PyStr::from(text),
            Buffer::Wide(units) => PyStr::from_utf16(units),
        }
    }
}

/// What a `\u` escape names.
enum Escaped {
    Char(char),
    /// A surrogate without its other half.
    Lone(u16),
}

impl<'a> Parser<'a> {
    fn error(&self, message: &'static str) -> LoadError {
        LoadError { message, at: self.at }
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn literal(&mut self, word: &str, value: Json<'a>) -> Result<Json<'a>, LoadError> {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(self.error("Expecting value"))
        }
    }

    fn value(&mut self) -> Result<Json<'a>, LoadError> {
        match self.bytes.get(self.at) {
            Some(b'{') => self.nested(Self::object),
            Some(b'[') => self.nested(Self::array),
            Some(b'"') => Ok(Json::Str(self.string()?)),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b'N') if self.options.allow_nan => self.literal("NaN", Json::Float(f64::NAN)),
            Some(b'I') if self.options.allow_nan => self.literal("Infinity", Json::Float(f64::INFINITY)),
            Some(b'-') if self.options.allow_nan && self.text[self.at..].starts_with("-Infinity") => {
                self.literal("-Infinity", Json::Float(f64::NEG_INFINITY))
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.error("Expecting value")),
        }
    }

    fn nested(&mut self, read: fn(&mut Self) -> Result<Json<'a>, LoadError>) -> Result<Json<'a>, LoadError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error("Nested too deeply"));
        }
        self.depth += 1;
        let value = read(self);
        self.depth -= 1;
        value
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while let Some(b'0'..=b'9') = self.bytes.get(self.at) {
            self.at += 1;
        }
        self.at - start
    }

    fn number(&mut self) -> Result<Json<'a>, LoadError> {
        let start = self.at;
        if self.bytes[self.at] == b'-' {
            self.at += 1;
        }
        match self.bytes.get(self.at) {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("Expecting value")),
        }
        let mut float = false;
        if self.bytes.get(self.at) == Some(&b'.') && matches!(self.bytes.get(self.at + 1), Some(b'0'..=b'9')) {
            self.at += 1;
            self.digits();
            float = true;
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.at) {
            let mark = self.at;
            self.at += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.at) {
                self.at += 1;
            }
            if self.digits() == 0 {
                // Python stops the number before a bare `e`; what follows is then extra data.
                self.at = mark;
            } else {
                float = true;
            }
        }
        let text = &self.text[start..self.at];
        if !float && text.trim_start_matches('-').len() > MAX_INT_DIGITS {
            self.at = start;
            return Err(self.error("Exceeds the limit (4300 digits) for integer string conversion"));
        }
        if float {
            return text.parse::<f64>().map(Json::Float).map_err(|_| self.error("Expecting value"));
        }
        Ok(match (text.parse::<i64>(), text.parse::<u64>()) {
            (Ok(i), _) => Json::Int(i),
            (_, Ok(u)) => Json::UInt(u),
            _ => Json::BigInt(Cow::Borrowed(text)),
        })
    }

    fn hex4(&mut self) -> Result<u32, LoadError> {
        let digits = self.text.get(self.at..self.at + 4).ok_or_else(|| self.error("Invalid \\uXXXX escape"))?;
        let unit = u32::from_str_radix(digits, 16).map_err(|_| self.error("Invalid \\uXXXX escape"))?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.error("Invalid \\uXXXX escape"));
        }
        self.at += 4;
        Ok(unit)
    }

    fn string(&mut self) -> Result<PyStr<'a>, LoadError> {
        self.at += 1;
        let start = self.at;
        // The plain run up to the first quote, backslash or control
        // character, found a word (or a SIMD vector) at a time.
        self.at = match crate::monasca::scan::scan_string(&self.bytes[start..]) {
            Some(found) => start + found.len,
            None => self.bytes.len(),
        };
        match self.bytes.get(self.at) {
            Some(b'"') => {
                self.at += 1;
                return Ok(PyStr::from(&self.text[start..self.at - 1]));
            }
            Some(0x00..=0x1f) => return Err(self.error("Invalid control character at")),
            _ => {}
        }
        if self.at == self.bytes.len() {
            return Err(LoadError { message: "Unterminated string starting at", at: start - 1 });
        }
        let mut owned = Buffer::Text(String::from(&self.text[start..self.at]));
        loop {
            let Some(&b) = self.bytes.get(self.at) else {
                return Err(LoadError { message: "Unterminated string starting at", at: start - 1 });
            };
            match b {
                b'"' => {
                    self.at += 1;
                    return Ok(owned.finish());
                }
                0x00..=0x1f => return Err(self.error("Invalid control character at")),
                b'\\' => {
                    self.at += 1;
                    let escaped = self.bytes.get(self.at).copied();
                    self.at += 1;
                    let c = match escaped {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => match self.unicode_escape()? {
                            Escaped::Char(c) => c,
                            Escaped::Lone(unit) => {
                                owned.push_lone(unit);
                                continue;
                            }
                        },
                        _ => return Err(self.error("Invalid \\escape")),
                    };
                    owned.push(c);
                }
                _ => {
                    let run = self.at;
                    while let Some(&b) = self.bytes.get(self.at) {
                        if b == b'"' || b == b'\\' || b < 0x20 {
                            break;
                        }
                        self.at += 1;
                    }
                    owned.push_str(&self.text[run..self.at]);
                }
            }
        }
    }

    /// The character of a `\u` escape (the `\u` read), a surrogate pair
    /// taken together; a surrogate without its other half when the options
    /// keep it (the escape after a lone high one is read next).
    fn unicode_escape(&mut self) -> Result<Escaped, LoadError> {
        let unit = self.hex4()?;
        let code = match unit {
            0xd800..=0xdbff if self.text[self.at..].starts_with("\\u") => {
                let mark = self.at;
                self.at += 2;
                match self.hex4()? {
                    low @ 0xdc00..=0xdfff => 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00),
                    _ => {
                        self.at = mark;
                        return self.lone(unit);
                    }
                }
            }
            0xd800..=0xdfff => return self.lone(unit),
            unit => unit,
        };
        char::from_u32(code).map(Escaped::Char).ok_or_else(|| self.error("Invalid \\uXXXX escape"))
    }

    fn lone(&self, unit: u32) -> Result<Escaped, LoadError> {
        match u16::try_from(unit) {
            Ok(unit) if self.options.lone_surrogates => Ok(Escaped::Lone(unit)),
            _ => Err(self.error("Lone surrogate in a string")),
        }
    }

    fn array(&mut self) -> Result<Json<'a>, LoadError> {
        self.at += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.bytes.get(self.at) == Some(&b']') {
            self.at += 1;
            return Ok(Json::Array(items));
        }
        loop {
            self.skip_whitespace();
            items.push(self.value()?);
            self.skip_whitespace();
            match self.bytes.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Json::Array(items));
                }
                _ => return Err(self.error("Expecting ',' delimiter")),
            }
        }
    }

    fn object(&mut self) -> Result<Json<'a>, LoadError> {
        self.at += 1;
        let mut members = Members::with_capacity(0);
        self.skip_whitespace();
        if self.bytes.get(self.at) == Some(&b'}') {
            self.at += 1;
            return Ok(Json::Object(members.into_vec()));
        }
        loop {
            self.skip_whitespace();
            if self.bytes.get(self.at) != Some(&b'"') {
                return Err(self.error("Expecting property name enclosed in double quotes"));
            }
            let key = self.string()?;
            self.skip_whitespace();
            if self.bytes.get(self.at) != Some(&b':') {
                return Err(self.error("Expecting ':' delimiter"));
            }
            self.at += 1;
            self.skip_whitespace();
            let value = self.value()?;
            members.insert(key, value);
            self.skip_whitespace();
            match self.bytes.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Json::Object(members.into_vec()));
                }
                _ => return Err(self.error("Expecting ',' delimiter")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_python_reads() {
        let doc =
            loads(r#" {"a": NaN, "b": [Infinity, -Infinity, -0, 18446744073709551616, 1e400, 1E3], "a": 2} "#).unwrap();
        assert_eq!(doc.dumps(), r#"{"a": 2, "b": [Infinity, -Infinity, 0, 18446744073709551616, Infinity, 1000.0]}"#);
        assert_eq!(loads(r#""\u00e9\ud83d\ude00\n""#).unwrap(), Json::Str("é😀\n".into()));
        assert!(matches!(loads(r#""plain""#).unwrap(), Json::Str(s) if s.is_borrowed() && s == "plain"));
        assert_eq!(loads("18446744073709551615").unwrap(), Json::UInt(u64::MAX));
        assert_eq!(loads("-9223372036854775809").unwrap(), Json::BigInt(Cow::Borrowed("-9223372036854775809")));
    }

    #[test]
    fn lone_surrogates_are_kept_when_asked_for() {
        let text = r#"["\ud800", "a\udc00b\u00e9", "\ud83d\ude00", "\ud800\ud83d\ude00", "\udbff\u0041", "x\ud800"]"#;
        assert_eq!(loads(text).unwrap_err().message, "Lone surrogate in a string");
        let value = loads_with(text, LoadOptions::SIMPLEJSON).unwrap();
        let items = value.as_array().unwrap();
        let shown: Vec<&str> = items.iter().map(|i| i.as_str().unwrap()).collect();
        assert_eq!(shown, ["\\ud800", "a\\udc00bé", "😀", "\\ud800😀", "\\udbffA", "x\\ud800"]);
        let lone: Vec<bool> = items.iter().map(Json::has_lone_surrogate).collect();
        assert_eq!(lone, [true, true, false, true, true, true]);
        // Written back as Python writes them.
        assert_eq!(
            value.dumps_ascii(),
            r#"["\ud800", "a\udc00b\u00e9", "\ud83d\ude00", "\ud800\ud83d\ude00", "\udbffA", "x\ud800"]"#
        );
        // Keys too; two keys that differ only in their surrogate stay apart.
        let object = loads_with(r#"{"\ud800": 1, "\udc00": 2, "\ud800": 3}"#, LoadOptions::JSON).unwrap();
        assert_eq!(object.dumps(), r#"{"\ud800": 3, "\udc00": 2}"#);
        assert!(object.has_lone_surrogate());
        // Still refused: a bad escape after a high surrogate.
        assert!(loads_with(r#""\ud800\uzzzz""#, LoadOptions::JSON).is_err());
    }

    #[test]
    fn errors_read_as_pythons() {
        let text = "{\"a\": \n  [1, }";
        assert_eq!(loads(text).unwrap_err().python_message(text), "Expecting value: line 2 column 7 (char 13)");
        let text = "{\"é\": 1 x";
        assert_eq!(loads(text).unwrap_err().python_message(text), "Expecting ',' delimiter: line 1 column 9 (char 8)");
        let text = "[\"abc";
        assert_eq!(
            loads(text).unwrap_err().python_message(text),
            "Unterminated string starting at: line 1 column 2 (char 1)"
        );
        assert_eq!(loads("").unwrap_err().python_message(""), "Expecting value: line 1 column 1 (char 0)");
        assert_eq!(loads("{} x").unwrap_err().python_message("{} x"), "Extra data: line 1 column 4 (char 3)");
        assert_eq!(
            utf8_error_message(b"{\"a\": \"\xff\"}").as_deref(),
            Some("'utf-8' codec can't decode byte 0xff in position 7: invalid start byte")
        );
        assert_eq!(utf8_error_message(b"ok"), None);
    }

    #[test]
    fn refuses_what_python_refuses_and_what_rust_cannot_hold() {
        for bad in [
            "",
            " ",
            "\u{feff}{}",
            "{} x",
            "[1,]",
            "{'a': 1}",
            "\"a\u{1}\"",
            "01",
            "1.",
            "nan",
            "\"\\ud800\"",
            "\"\\x41\"",
        ] {
            assert!(loads(bad).is_err(), "{bad:?} was read");
        }
        for literal in ["NaN", "[Infinity]", "{\"a\": -Infinity}"] {
            assert!(loads(literal).is_ok(), "{literal}");
            assert!(loads_strict(literal).is_err(), "{literal} was read strictly");
        }
        assert!(loads_strict("1e400").is_ok_and(|v| v.has_non_finite()));
        let many = "9".repeat(MAX_INT_DIGITS);
        assert!(loads(&many).is_ok());
        assert!(loads(&format!("-{many}9")).unwrap_err().message.starts_with("Exceeds the limit"));
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(loads(&deep).unwrap_err().message, "Nested too deeply");
        assert!(loads(&("[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH))).is_ok());
    }
}
