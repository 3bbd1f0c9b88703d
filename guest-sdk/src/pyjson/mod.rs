//! JSON and float text exactly as Monasca's Python code writes them.
//!
//! monasca-persister stores `value_meta`, `metrics` and `sub_alarms` as JSON
//! strings made by `simplejson.dumps(obj, ensure_ascii=False)`: separators
//! `", "` and `": "`, keys in input order, non-ASCII kept as is, floats as
//! Python's `repr`. Other tools read those strings back, so a faithful
//! replacement writes them byte for byte the same.

mod convert;
mod loads;
mod pystr;
mod repr;
mod tree;

pub use convert::{int_of_float, ConvertError};
pub use loads::{
    loads, loads_strict, loads_with, utf8_error_message, LoadError, LoadOptions, MAX_DEPTH, MAX_INT_DIGITS,
};
pub use pystr::{EncodeError, PyStr};
pub use repr::write_str_repr;
pub use tree::Json;

use serde_json::Value;
use std::fmt::Write;

/// Python's `repr(float)`: the shortest text that reads back as the same
/// number, in fixed notation for exponents from -4 to 15 (always with a
/// decimal point) and in scientific notation with a signed, two-digit
/// exponent otherwise (`1e-05`, `1.8446744073709552e+19`).
pub fn float_repr(x: f64) -> String {
    let mut out = String::new();
    write_float_repr(&mut out, x);
    out
}

/// Append [`float_repr`] of `x` to `out`.
pub fn write_float_repr(out: &mut String, x: f64) {
    if x.is_nan() {
        out.push_str("nan");
        return;
    }
    if x.is_infinite() {
        out.push_str(if x > 0.0 { "inf" } else { "-inf" });
        return;
    }
    if x == 0.0 {
        out.push_str(if x.is_sign_negative() { "-0.0" } else { "0.0" });
        return;
    }
    // Whole numbers below 10^16 (most metric values) print as `digits.0`.
    if x.fract() == 0.0 && x.abs() < 1e16 {
        write_integer(out, x as i64);
        out.push_str(".0");
        return;
    }
    // ryu prints the shortest digits that read back as `x` (as Python's
    // repr does), in plain or scientific form; Python chooses the form by
    // the decimal point's position, so take ryu's digits and place the point.
    let mut ryu = ryu::Buffer::new();
    let text = ryu.format_finite(x);
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match text.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // The significant digits, without leading or trailing zeros.
    let mut digit_buf = StackText::new();
    let _ = digit_buf.write_str(whole);
    let _ = digit_buf.write_str(fraction);
    let all = digit_buf.as_str();
    let leading = all.len() - all.trim_start_matches('0').len();
    let digits = all.trim_matches('0');
    // The value is 0.DIGITS × 10^point.
    let point = whole.len() as i32 - leading as i32 + exponent;
    if negative {
        out.push('-');
    }
    let exponent = point - 1;
    if !(-3..=16).contains(&point) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exponent < 0 { '-' } else { '+' });
        if exponent.abs() < 10 {
            out.push('0');
        }
        write_integer(out, i64::from(exponent.abs()));
    } else if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(digits);
    } else {
        let point = point as usize;
        if point >= digits.len() {
            out.push_str(digits);
            out.extend(std::iter::repeat_n('0', point - digits.len()));
            out.push_str(".0");
        } else {
            out.push_str(&digits[..point]);
            out.push('.');
            out.push_str(&digits[point..]);
        }
    }
}

/// Append the decimal digits of `n` without going through `fmt`.
pub fn write_integer(out: &mut String, n: i64) {
    let mut buf = [0u8; 20];
    let mut start = buf.len();
    let mut rest = n.unsigned_abs();
    loop {
        start -= 1;
        buf[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.push('-');
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&buf[start..]).unwrap_or_default());
}

/// A small text buffer on the stack, for formatting a float without allocating.
struct StackText {
    buf: [u8; 48],
    len: usize,
}

impl StackText {
    fn new() -> Self {
        StackText { buf: [0; 48], len: 0 }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// `simplejson.dumps(value, ensure_ascii=False)` with its default separators.
pub fn dumps(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

/// Append [`dumps`] of `value` to `out`.
pub fn write_value(out: &mut String, value: &Value) {
    write_with(out, value, (", ", ": "), false);
}

/// `json.dumps(value, separators=(',', ':'))` (`ensure_ascii=True`): the
/// compact form, as monasca-transform sends its metrics.
pub fn dumps_compact_ascii(value: &Value) -> String {
    let mut out = String::new();
    write_with(&mut out, value, (",", ":"), true);
    out
}

/// Write `value` with the given (item, key) separators, ASCII-escaped or not.
fn write_with(out: &mut String, value: &Value, separators: (&str, &str), ascii: bool) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                let _ = write!(out, "{i}");
            } else if let Some(u) = n.as_u64() {
                let _ = write!(out, "{u}");
            } else if let Some(f) = n.as_f64() {
                write_json_float(out, f);
            }
        }
        Value::String(s) => write_quoted(out, s, ascii),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(separators.0);
                }
                write_with(out, item, separators, ascii);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(separators.0);
                }
                write_quoted(out, key, ascii);
                out.push_str(separators.1);
                write_with(out, item, separators, ascii);
            }
            out.push('}');
        }
    }
}

/// `json.dumps(value)` with Python's defaults (`ensure_ascii=True`): as
/// [`dumps`], but every character outside printable ASCII is escaped
/// (`\u00e9`, astral characters as surrogate pairs). monasca-notification
/// writes its Kafka records and HTTP payloads this way.
pub fn dumps_ascii(value: &Value) -> String {
    Json::from(value).dumps_ascii()
}

/// `json.dumps(value, indent=indent)` (`ensure_ascii=True`): items on their
/// own lines indented by `indent` spaces per level, `","` between items,
/// `": "` after keys, empty containers as `[]`/`{}`.
pub fn dumps_indented_ascii(value: &Value, indent: usize) -> String {
    Json::from(value).dumps_indented_ascii(indent)
}

/// Append [`dumps_ascii`] of `value` to `out`. (Written by [`Json`]'s
/// writer, through a copy of the tree: a guest that writes this form on a
/// hot path reads its input into [`Json`] in the first place.)
pub fn write_value_ascii(out: &mut String, value: &Value) {
    Json::from(value).write_ascii(out);
}

/// A JSON string literal as Python's `json` writes it with `ensure_ascii=True`.
pub fn write_string_ascii(out: &mut String, s: &str) {
    write_quoted(out, s, true);
}

fn write_json_float(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("NaN");
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
    } else {
        write_float_repr(out, f);
    }
}

/// [`write_string_ascii`] for a [`PyStr`]: a lone surrogate as `\ud800`.
#[inline]
pub fn write_py_string_ascii(out: &mut String, s: &PyStr<'_>) {
    write_py_quoted(out, s, true);
}

/// A JSON string literal as simplejson writes it with `ensure_ascii=False`.
pub fn write_string(out: &mut String, s: &str) {
    write_quoted(out, s, false);
}

/// A string literal with Python's escapes: the short forms, `\u00XX` for
/// other control characters, and (`ascii`) `\uXXXX` for everything outside
/// printable ASCII, astral characters as surrogate pairs.
fn write_quoted(out: &mut String, s: &str, ascii: bool) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    // Runs of characters written as they are go out in one copy.
    let mut run = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Eight plain bytes at a time while there are eight.
        if let Some(chunk) = bytes.get(i..i + 8) {
            let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
            if !needs_escape(word, ascii) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let plain = match b {
            b'"' | b'\\' => false,
            b' '..=b'~' => true,
            0x7f.. => !ascii,
            _ => false,
        };
        if plain {
            i += 1;
            continue;
        }
        out.push_str(&s[run..i]);
        let c = s[i..].chars().next().unwrap_or_default();
        write_char(out, c, ascii);
        i += c.len_utf8().max(1);
        run = i;
    }
    out.push_str(&s[run..]);
    out.push('"');
}

/// One character of a string literal, escaped as Python's `json` escapes it.
fn write_char(out: &mut String, c: char, ascii: bool) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{08}' => out.push_str("\\b"),
        '\u{0c}' => out.push_str("\\f"),
        ' '..='~' => out.push(c),
        c if !ascii && c >= '\u{7f}' => out.push(c),
        c => {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                pystr::push_unit_escape(out, *unit);
            }
        }
    }
}

/// A string literal of a [`PyStr`], as [`write_quoted`] writes text; a lone
/// surrogate is written `\uXXXX`, also when not `ascii` (Python's text
/// would hold the surrogate itself, which no UTF-8 output can carry: ask
/// [`Json::has_lone_surrogate`] where that must fail).
#[inline]
fn write_py_quoted(out: &mut String, s: &PyStr<'_>, ascii: bool) {
    match s.as_str() {
        Some(text) => write_quoted(out, text, ascii),
        None => write_wide_quoted(out, s, ascii),
    }
}

/// [`write_py_quoted`] of a string with lone surrogates.
fn write_wide_quoted(out: &mut String, s: &PyStr<'_>, ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            Ok(c) => write_char(out, c, ascii),
            Err(unit) => pystr::push_unit_escape(out, unit),
        }
    }
    out.push('"');
}

/// Whether any of the eight bytes in `word` is not written as it is: a
/// control character, `"`, `\\`, and (`ascii`) DEL or a non-ASCII byte.
fn needs_escape(word: u64, ascii: bool) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte of `x` is zero, or (for `below`) less than `n` (n ≤ 128).
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH != 0;
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGH != 0;
    let special = below(word, 0x20) || has_zero(word ^ (ONES * b'"' as u64)) || has_zero(word ^ (ONES * b'\\' as u64));
    special || (ascii && (word & HIGH != 0 || has_zero(word ^ (ONES * 0x7f))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_match_python_repr_on_thousands_of_values() {
        // Written by Python 3.11 (see the file's first line); includes
        // halfway cases, where the shortest digits must round to even.
        let table = include_str!("../../testdata/float-repr.txt");
        let mut checked = 0;
        for line in table.lines().filter(|l| !l.starts_with('#')) {
            let (bits, python) = line.split_once(' ').expect("bits and repr");
            let x = f64::from_bits(u64::from_str_radix(bits, 16).expect("hex bits"));
            assert_eq!(float_repr(x), python, "bits {bits}");
            checked += 1;
        }
        assert!(checked >= 3000, "only {checked} values checked");
    }

    #[test]
    fn word_scan_finds_every_byte_to_escape() {
        let plain = |b: u8, ascii: bool| match b {
            b'"' | b'\\' => false,
            b' '..=b'~' => true,
            0x7f.. => !ascii,
            _ => false,
        };
        // Each byte value at each position, among plain neighbours.
        for position in 0..8 {
            for b in 0..=255u8 {
                let mut bytes = *b"abcdefgh";
                bytes[position] = b;
                let word = u64::from_le_bytes(bytes);
                for ascii in [true, false] {
                    assert_eq!(needs_escape(word, ascii), !plain(b, ascii), "byte {b:#x} at {position}, ascii {ascii}");
                }
            }
        }
    }

    #[test]
    fn strings_escape_as_python_json() {
        // Written by Python 3.11 (see the file's first line): control
        // characters, quotes, DEL, Latin-1, BMP and astral characters.
        let table = include_str!("../../testdata/string-escapes.txt");
        let mut checked = 0;
        for line in table.lines().filter(|l| !l.starts_with('#')) {
            let cols: Vec<&str> = line.split('\t').collect();
            let input: String = serde_json::from_str(cols[0]).expect("input");
            let not_ascii: String = serde_json::from_str(cols[2]).expect("not-ascii form");
            let mut out = String::new();
            write_string_ascii(&mut out, &input);
            assert_eq!(out, cols[1], "ascii form of {:?}", input);
            out.clear();
            write_string(&mut out, &input);
            assert_eq!(out, not_ascii, "not-ascii form of {:?}", input);
            checked += 1;
        }
        assert!(checked >= 400, "only {checked} strings checked");
    }

    #[test]
    fn floats_match_python_repr() {
        let cases = [
            (97.5, "97.5"),
            (12034.0, "12034.0"),
            (0.0, "0.0"),
            (-3.75, "-3.75"),
            (1.8446744073709552e19, "1.8446744073709552e+19"),
            (1.5e-7, "1.5e-07"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (1e-5, "1e-05"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (1e22, "1e+22"),
            (-5.0, "-5.0"),
            (9999999999999998.0, "9999999999999998.0"),
            (-1234567890123456.0, "-1234567890123456.0"),
            (1700000000000.0, "1700000000000.0"),
        ];
        for (value, python) in cases {
            assert_eq!(float_repr(value), python, "repr({value:?})");
        }
    }

    #[test]
    fn ascii_dumps_match_python_json() {
        let value: Value =
            serde_json::from_str(r#"{"z":"é🔥\u007f\u2028\n","b":[1,2.5,[],{}],"a":{"k":null}}"#).unwrap();
        assert_eq!(
            dumps_ascii(&value),
            r#"{"z": "\u00e9\ud83d\udd25\u007f\u2028\n", "b": [1, 2.5, [], {}], "a": {"k": null}}"#
        );
        assert_eq!(
            dumps_indented_ascii(&value, 3),
            "{\n   \"z\": \"\\u00e9\\ud83d\\udd25\\u007f\\u2028\\n\",\n   \"b\": [\n      1,\n      2.5,\n      [],\n      {}\n   ],\n   \"a\": {\n      \"k\": null\n   }\n}"
        );
    }

    #[test]
    fn dumps_matches_simplejson() {
        let value: Value =
            serde_json::from_str(r#"{"z":"x\u2028yé\u0001\"\\","b":[1,2.0,1e-7,null,true,{}],"a":{"k":-1}}"#).unwrap();
        assert_eq!(
            dumps(&value),
            "{\"z\": \"x\u{2028}yé\\u0001\\\"\\\\\", \"b\": [1, 2.0, 1e-07, null, true, {}], \"a\": {\"k\": -1}}"
        );
    }
}
