//! Python's `float()`, `int()` and truthiness applied to a value that
//! `json.loads` made, for guests that must take what Monasca's Python code
//! takes: `float(metric['value'])` accepts `true`, `"1.5"` and `" 1_000 "`,
//! `int(timestamp)` truncates a float and reads a numeric string.
//!
//! Strings are read as CPython reads them: surrounding whitespace (Unicode's,
//! which is Rust's `char::is_whitespace`) ignored, single underscores between
//! digits, any Unicode decimal digit (Arabic-Indic `١٢`, full-width `１２`),
//! `inf`/`infinity`/`nan` in any case with a sign for `float`.

use super::{Json, PyStr};

/// Why a value has no Python number: the exception the original would raise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertError(pub String);

impl std::fmt::Display for ConvertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConvertError {}

impl Json<'_> {
    /// The name of the type Python gives the value (`NoneType`, `list`,
    /// `dict`, ...), as its error messages show it.
    pub fn py_type_name(&self) -> &'static str {
        type_name(self)
    }
}

fn type_name(value: &Json<'_>) -> &'static str {
    match value {
        Json::Null => "NoneType",
        Json::Bool(_) => "bool",
        Json::Int(_) | Json::UInt(_) | Json::BigInt(_) => "int",
        Json::Float(_) => "float",
        Json::Str(_) => "str",
        Json::Array(_) => "list",
        Json::Object(_) => "dict",
    }
}

impl Json<'_> {
    /// Python's `float(value)`. An integer too large for a float is an
    /// error, as in Python (`OverflowError`); a string may give `inf` or `nan`.
    pub fn py_float(&self) -> Result<f64, ConvertError> {
        match self {
            Json::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
            // `as` rounds to nearest, ties to even: what Python's int → float does.
            Json::Int(i) => Ok(*i as f64),
            Json::UInt(u) => Ok(*u as f64),
            Json::BigInt(digits) => match digits.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(f),
                _ => Err(ConvertError("OverflowError: int too large to convert to float".into())),
            },
            Json::Float(f) => Ok(*f),
            Json::Str(s) => float_from_str(s)
                .ok_or_else(|| ConvertError(format!("ValueError: could not convert string to float: {}", repr_of(s)))),
            other => Err(ConvertError(format!(
                "TypeError: float() argument must be a string or a real number, not '{}'",
                type_name(other)
            ))),
        }
    }

    /// Python's `int(value)`, when the result fits an `i64` (beyond it the
    /// error says so: no caller here can use such a number).
    pub fn py_int(&self) -> Result<i64, ConvertError> {
        let too_large = || ConvertError("OverflowError: integer beyond 64 bits".into());
        match self {
            Json::Bool(b) => Ok(i64::from(*b)),
            Json::Int(i) => Ok(*i),
            Json::UInt(_) | Json::BigInt(_) => Err(too_large()),
            Json::Float(f) if f.is_nan() => Err(ConvertError("ValueError: cannot convert float NaN to integer".into())),
            Json::Float(f) if f.is_infinite() => {
                Err(ConvertError("OverflowError: cannot convert float infinity to integer".into()))
            }
            // 2^63 is exact in an f64; anything at or past it does not fit.
            Json::Float(f) if f.abs() >= 9_223_372_036_854_775_808.0 => Err(too_large()),
            Json::Float(f) => Ok(f.trunc() as i64),
            Json::Str(s) => match int_from_str(s) {
                Some(Ok(i)) => Ok(i),
                Some(Err(())) => Err(too_large()),
                None => {
                    Err(ConvertError(format!("ValueError: invalid literal for int() with base 10: {}", repr_of(s))))
                }
            },
            other => Err(ConvertError(format!(
                "TypeError: int() argument must be a string, a bytes-like object or a real number, not '{}'",
                type_name(other)
            ))),
        }
    }

    /// True when a float in the value is not finite: simplejson 3.19 and
    /// later refuse to write it (`Out of range float values are not JSON
    /// compliant`).
    pub fn has_non_finite(&self) -> bool {
        match self {
            Json::Float(f) => !f.is_finite(),
            Json::Array(items) => items.iter().any(Json::has_non_finite),
            Json::Object(members) => members.iter().any(|(_, v)| v.has_non_finite()),
            _ => false,
        }
    }

    /// Python's truthiness (`if value:`): `None`, `False`, zero, and empty
    /// strings, lists and dicts are false.
    pub fn py_truthy(&self) -> bool {
        match self {
            Json::Null => false,
            Json::Bool(b) => *b,
            Json::Int(i) => *i != 0,
            Json::UInt(u) => *u != 0,
            Json::BigInt(_) => true,
            Json::Float(f) => *f != 0.0,
            Json::Str(s) => !s.is_empty(),
            Json::Array(a) => !a.is_empty(),
            Json::Object(o) => !o.is_empty(),
        }
    }
}

/// Python's `int(x)` of a float: truncated, exact at any size (an integer
/// beyond 64 bits as its digits, [`Json::BigInt`]); an error for infinity
/// and NaN, as Python's.
pub fn int_of_float(x: f64) -> Result<Json<'static>, ConvertError> {
    if x.is_nan() {
        return Err(ConvertError("ValueError: cannot convert float NaN to integer".into()));
    }
    if x.is_infinite() {
        return Err(ConvertError("OverflowError: cannot convert float infinity to integer".into()));
    }
    let x = x.trunc();
    if x.abs() < 9_223_372_036_854_775_808.0 {
        return Ok(Json::Int(x as i64));
    }
    // |x| ≥ 2^63 is a whole number: mantissa × 2^exponent, exponent > 0.
    let bits = x.to_bits();
    let mantissa = (bits & ((1 << 52) - 1)) | (1 << 52);
    let exponent = ((bits >> 52) & 0x7ff) as i32 - 1075;
    // Base 10^9 limbs, least significant first.
    const LIMB: u64 = 1_000_000_000;
    let mut limbs = vec![mantissa % LIMB, mantissa / LIMB % LIMB, mantissa / LIMB / LIMB];
    for _ in 0..exponent {
        let mut carry = 0;
        for limb in &mut limbs {
            let doubled = *limb * 2 + carry;
            *limb = doubled % LIMB;
            carry = doubled / LIMB;
        }
        if carry > 0 {
            limbs.push(carry);
        }
    }
    while limbs.len() > 1 && limbs.last() == Some(&0) {
        limbs.pop();
    }
    let mut digits = String::with_capacity(limbs.len() * 9 + 1);
    if x < 0.0 {
        digits.push('-');
    }
    let mut limbs = limbs.iter().rev();
    if let Some(top) = limbs.next() {
        digits.push_str(&top.to_string());
    }
    for limb in limbs {
        digits.push_str(&format!("{limb:09}"));
    }
    Ok(Json::BigInt(digits.into()))
}

/// Python's `repr()` of a string, capped (the text goes into reasons).
fn repr_of(s: &PyStr<'_>) -> String {
    let mut units = Vec::new();
    for c in s.chars().take(64) {
        match c {
            Ok(c) => units.extend(c.encode_utf16(&mut [0; 2]).iter()),
            Err(lone) => units.push(lone),
        }
    }
    let mut out = String::new();
    super::repr::write_py_str_repr(&mut out, &PyStr::from_utf16(units));
    out
}

/// The code points of Unicode's zero digits: each starts a run of ten decimal
/// digits (Unicode 14, as Python 3.11 knows them).
const ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6f0, 0x7c0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66, 0xde6, 0xe50, 0xed0,
    0xf20, 0x1040, 0x1090, 0x17e0, 0x1810, 0x1946, 0x19d0, 0x1a80, 0x1a90, 0x1b50, 0x1bb0, 0x1c40, 0x1c50, 0xa620,
    0xa8d0, 0xa900, 0xa9d0, 0xa9f0, 0xaa50, 0xabf0, 0xff10, 0x104a0, 0x10d30, 0x11066, 0x110f0, 0x11136, 0x111d0,
    0x112f0, 0x11450, 0x114d0, 0x11650, 0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50, 0x11da0, 0x16a60,
    0x16ac0, 0x16b50, 0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e950, 0x1fbf0,
];

/// The value of a decimal digit of any script.
fn decimal_digit(c: char) -> Option<u8> {
    let code = u32::from(c);
    if c.is_ascii() {
        return c.is_ascii_digit().then(|| code as u8 - b'0');
    }
    let run = ZEROS.partition_point(|&zero| zero <= code).checked_sub(1)?;
    let offset = code - ZEROS[run];
    (offset < 10).then_some(offset as u8)
}

/// The text as ASCII, as CPython prepares a number's text: whitespace
/// around it removed, every decimal digit made ASCII, underscores checked
/// (only single ones between two digits) and removed. `None` when a
/// character has no place in a number.
fn ascii_number(s: &str) -> Option<String> {
    let s = s.trim_matches(char::is_whitespace);
    let mut out = String::with_capacity(s.len());
    let mut previous_digit = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(d) = decimal_digit(c) {
            out.push(char::from(b'0' + d));
            previous_digit = true;
            continue;
        }
        if c == '_' {
            let next_digit = chars.peek().is_some_and(|&n| decimal_digit(n).is_some());
            if !previous_digit || !next_digit {
                return None;
            }
        } else if c.is_ascii() {
            out.push(c);
        } else {
            return None;
        }
        previous_digit = false;
    }
    Some(out)
}

/// CPython's `float(str)`.
fn float_from_str(s: &str) -> Option<f64> {
    let text = ascii_number(s)?;
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text.as_str()),
    };
    let magnitude = match body.to_ascii_lowercase().as_str() {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        lower => {
            // Rust's grammar is Python's for what is left (digits, one point,
            // an exponent), except that it also takes `inf`-like words,
            // handled above, and nothing else: check the characters anyway.
            let valid = !lower.is_empty()
                && !lower.starts_with(['+', '-'])
                && lower.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'))
                && lower.bytes().any(|b| b.is_ascii_digit());
            if !valid {
                return None;
            }
            lower.parse::<f64>().ok()?
        }
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// CPython's `int(str)` in base 10: `Some(Err(()))` when the number is
/// beyond 64 bits.
fn int_from_str(s: &str) -> Option<Result<i64, ()>> {
    let text = ascii_number(s)?;
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text.as_str()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude: i128 = match digits.trim_start_matches('0') {
        "" => 0,
        significant if significant.len() > 20 => return Some(Err(())),
        significant => significant.parse().ok()?,
    };
    let value = if negative { -magnitude } else { magnitude };
    Some(i64::try_from(value).map_err(drop))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Json<'_> {
        Json::Str(text.into())
    }

    #[test]
    fn float_takes_what_python_takes() {
        assert_eq!(Json::Bool(true).py_float(), Ok(1.0));
        assert_eq!(Json::Int(-3).py_float(), Ok(-3.0));
        assert_eq!(Json::BigInt("18446744073709551616".into()).py_float(), Ok(18446744073709551616.0));
        assert!(Json::BigInt(format!("1{}", "0".repeat(400)).into()).py_float().is_err());
        for (text, want) in [
            (" 2 ", 2.0),
            ("1_000.0_1", 1000.01),
            ("1e1_0", 1e10),
            ("+5", 5.0),
            ("-0", -0.0),
            ("5.", 5.0),
            (".5", 0.5),
            ("\u{661}.\u{665}", 1.5),
            ("\u{3000}7\u{2028}", 7.0),
            ("-Infinity", f64::NEG_INFINITY),
            ("1e5000", f64::INFINITY),
        ] {
            let got = s(text).py_float().unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(got.to_bits(), want.to_bits(), "{text:?}");
        }
        assert!(s("nan").py_float().is_ok_and(f64::is_nan));
        for text in
            ["", "0x10", "1__0", "_1", "1_", "1_e10", "--5", "+-5", "in_f", "1e", ".", "\u{1c}5", "five", "1.5.5"]
        {
            assert!(s(text).py_float().is_err(), "{text:?}");
        }
        let error = Json::Null.py_float().unwrap_err().0;
        assert_eq!(error, "TypeError: float() argument must be a string or a real number, not 'NoneType'");
    }

    #[test]
    fn int_of_float_is_exact_at_any_size() {
        assert_eq!(int_of_float(1.7e9), Ok(Json::Int(1_700_000_000)));
        assert_eq!(int_of_float(-2.9), Ok(Json::Int(-2)));
        assert_eq!(int_of_float(9.2e18), Ok(Json::Int(9_200_000_000_000_000_000)));
        // Written by Python 3.11: int(2.0**63), int(-1e22), int(1.8446744073709552e16 * 1000), int(1e300).
        let big = |x: f64| int_of_float(x).map(|j| j.dumps());
        assert_eq!(big(9_223_372_036_854_775_808.0).as_deref(), Ok("9223372036854775808"));
        assert_eq!(big(-1e22).as_deref(), Ok("-10000000000000000000000"));
        assert_eq!(big(1.8446744073709552e19).as_deref(), Ok("18446744073709551616"));
        assert_eq!(
            big(1e300).as_deref(),
            Ok("1000000000000000052504760255204420248704468581108159154915854115511802457988908195786371375080447864043704443832883878176942523235360430575644792184786706982848387200926575803737830233794788090059368953234970799945081119038967640880074652742780142494579258788820056842838115669472196386865459400540160")
        );
        assert!(int_of_float(f64::INFINITY).unwrap_err().0.starts_with("OverflowError"));
        assert!(int_of_float(f64::NAN).unwrap_err().0.starts_with("ValueError"));
    }

    #[test]
    fn int_takes_what_python_takes() {
        assert_eq!(Json::Float(1700000000000.9).py_int(), Ok(1700000000000));
        assert_eq!(Json::Float(-2.5).py_int(), Ok(-2));
        assert_eq!(Json::Bool(true).py_int(), Ok(1));
        for (text, want) in [(" 17 ", 17), ("0_1", 1), ("00", 0), ("-0", 0), ("\u{ff11}\u{ff12}", 12), ("+9", 9)] {
            assert_eq!(s(text).py_int(), Ok(want), "{text:?}");
        }
        for text in ["1.5", "1e3", "0x10", "", "+_1", "1__0"] {
            assert!(s(text).py_int().is_err(), "{text:?}");
        }
        assert!(s("99999999999999999999").py_int().unwrap_err().0.starts_with("OverflowError"));
        assert!(Json::Float(f64::NAN).py_int().unwrap_err().0.starts_with("ValueError"));
        assert!(Json::Float(1e19).py_int().is_err());
    }

    #[test]
    fn truthiness_is_pythons() {
        for falsy in [Json::Null, Json::Bool(false), Json::Int(0), Json::Float(-0.0), s(""), Json::Array(vec![])] {
            assert!(!falsy.py_truthy(), "{falsy:?}");
        }
        for truthy in [Json::Float(f64::NAN), s("0"), Json::BigInt("100000000000000000000".into())] {
            assert!(truthy.py_truthy(), "{truthy:?}");
        }
    }
}
