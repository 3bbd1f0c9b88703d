//! [`PyStr`]: a string as Python's `json.loads` makes it.
//!
//! Nearly always it is plain UTF-8 text, borrowed from the message when it
//! held no escapes. But a JSON escape may name a lone surrogate (`"\ud800"`,
//! a high surrogate without its low half, or a low one alone): Python keeps
//! it in its `str`, and no Rust `str` can hold it. Such a string is kept as
//! its UTF-16 code units, so that what Python can write, ours writes the
//! same: JSON with `ensure_ascii` and `repr()` show the surrogate as
//! `\ud800`. What Python cannot write (the string encoded as UTF-8: an
//! InfluxDB line, an email) is an error here too: [`PyStr::to_utf8`].
//!
//! For reading, a `PyStr` dereferences to text: its own, or for a string
//! with lone surrogates the text Python's `backslashreplace` error handler
//! gives (each surrogate as the six characters `\ud800`). That text is what
//! logs and lookups see; it never reaches an output that must match Python,
//! which asks [`PyStr::to_utf8`] or writes the string with its escapes.

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// A Python string read from JSON (see the module's documentation).
#[derive(Clone)]
pub struct PyStr<'a>(Repr<'a>);

#[derive(Clone)]
enum Repr<'a> {
    /// Valid Unicode text.
    Text(Cow<'a, str>),
    /// Text holding at least one lone surrogate.
    Wide(Box<Wide>),
}

/// A string with lone surrogates: its code units, and its text with each
/// lone surrogate written `\uXXXX` (the text it dereferences to).
#[derive(Clone)]
struct Wide {
    units: Box<[u16]>,
    replaced: Box<str>,
}

/// Why a string cannot be encoded as UTF-8: Python's `UnicodeEncodeError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeError {
    /// The first lone surrogate.
    pub surrogate: u16,
    /// Its position in the string, in characters (as Python counts them).
    pub position: usize,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "'utf-8' codec can't encode character '\\u{:04x}' in position {}: surrogates not allowed",
            self.surrogate, self.position
        )
    }
}

impl std::error::Error for EncodeError {}

impl<'a> PyStr<'a> {
    /// The string of these UTF-16 code units (lone surrogates kept).
    pub fn from_utf16(units: Vec<u16>) -> PyStr<'static> {
        match String::from_utf16(&units) {
            Ok(text) => PyStr(Repr::Text(Cow::Owned(text))),
            Err(_) => {
                let mut replaced = String::with_capacity(units.len() + 8);
                for item in char::decode_utf16(units.iter().copied()) {
                    match item {
                        Ok(c) => replaced.push(c),
                        Err(lone) => push_unit_escape(&mut replaced, lone.unpaired_surrogate()),
                    }
                }
                PyStr(Repr::Wide(Box::new(Wide { units: units.into(), replaced: replaced.into() })))
            }
        }
    }

    /// The text, when it holds no lone surrogate.
    #[inline]
    pub fn as_str(&self) -> Option<&str> {
        match &self.0 {
            Repr::Text(text) => Some(text),
            Repr::Wide(_) => None,
        }
    }

    /// The text, lone surrogates written `\uXXXX` (what it dereferences to).
    #[inline]
    pub fn text(&self) -> &str {
        match &self.0 {
            Repr::Text(text) => text,
            Repr::Wide(wide) => &wide.replaced,
        }
    }

    /// Whether it holds a lone surrogate.
    #[inline]
    pub fn has_lone_surrogate(&self) -> bool {
        matches!(self.0, Repr::Wide(_))
    }

    /// The text as UTF-8, or Python's error for a string that cannot be
    /// encoded (`str.encode('utf-8')` raises `UnicodeEncodeError`).
    #[inline]
    pub fn to_utf8(&self) -> Result<&str, EncodeError> {
        match &self.0 {
            Repr::Text(text) => Ok(text),
            Repr::Wide(wide) => Err(encode_error(&wide.units)),
        }
    }

    /// Whether the text points into the message it was read from.
    #[inline]
    pub fn is_borrowed(&self) -> bool {
        matches!(self.0, Repr::Text(Cow::Borrowed(_)))
    }

    /// A copy that owns its text.
    pub fn into_owned(self) -> PyStr<'static> {
        PyStr(match self.0 {
            Repr::Text(text) => Repr::Text(Cow::Owned(text.into_owned())),
            Repr::Wide(wide) => Repr::Wide(wide),
        })
    }

    /// Its characters, a lone surrogate as `Err(unit)`.
    pub(super) fn chars(&self) -> Chars<'_> {
        match &self.0 {
            Repr::Text(text) => Chars::Text(text.chars()),
            Repr::Wide(wide) => Chars::Wide(char::decode_utf16(wide.units.iter().copied())),
        }
    }
}

/// The characters of a [`PyStr`].
pub(super) enum Chars<'s> {
    Text(std::str::Chars<'s>),
    Wide(std::char::DecodeUtf16<std::iter::Copied<std::slice::Iter<'s, u16>>>),
}

impl Iterator for Chars<'_> {
    type Item = Result<char, u16>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Chars::Text(chars) => chars.next().map(Ok),
            Chars::Wide(units) => units.next().map(|item| item.map_err(|lone| lone.unpaired_surrogate())),
        }
    }
}

/// The error for the first lone surrogate among `units`.
fn encode_error(units: &[u16]) -> EncodeError {
    let mut position = 0;
    for item in char::decode_utf16(units.iter().copied()) {
        match item {
            Ok(_) => position += 1,
            Err(lone) => return EncodeError { surrogate: lone.unpaired_surrogate(), position },
        }
    }
    // Not reached: a wide string holds a lone surrogate.
    EncodeError { surrogate: 0xd800, position }
}

/// `\uXXXX` for one UTF-16 code unit.
pub(super) fn push_unit_escape(out: &mut String, unit: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str("\\u");
    for shift in [12, 8, 4, 0] {
        out.push(char::from(HEX[usize::from((unit >> shift) & 0xf)]));
    }
}

impl Deref for PyStr<'_> {
    type Target = str;

    #[inline]
    fn deref(&self) -> &str {
        self.text()
    }
}

impl AsRef<str> for PyStr<'_> {
    #[inline]
    fn as_ref(&self) -> &str {
        self.text()
    }
}

impl fmt::Display for PyStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl fmt::Debug for PyStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Text(text) => fmt::Debug::fmt(&**text, f),
            Repr::Wide(wide) => write!(f, "PyStr(lone surrogates: {:?})", &*wide.replaced),
        }
    }
}

/// Equal when Python's strings are: the same text, or the same code units
/// (text is compared a word at a time: a guest compares keys often).
impl PartialEq for PyStr<'_> {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Repr::Text(a), Repr::Text(b)) => crate::compare::same_text(a, b),
            (Repr::Wide(a), Repr::Wide(b)) => a.units == b.units,
            _ => false,
        }
    }
}

impl Eq for PyStr<'_> {}

impl Hash for PyStr<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match &self.0 {
            Repr::Text(text) => text.hash(state),
            Repr::Wide(wide) => wide.units.hash(state),
        }
    }
}

/// Only text without lone surrogates equals a Rust string.
impl PartialEq<str> for PyStr<'_> {
    #[inline]
    fn eq(&self, other: &str) -> bool {
        self.as_str().is_some_and(|text| crate::compare::same_text(text, other))
    }
}

impl PartialEq<&str> for PyStr<'_> {
    #[inline]
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl<'a> From<&'a str> for PyStr<'a> {
    #[inline]
    fn from(text: &'a str) -> Self {
        PyStr(Repr::Text(Cow::Borrowed(text)))
    }
}

impl From<String> for PyStr<'_> {
    #[inline]
    fn from(text: String) -> Self {
        PyStr(Repr::Text(Cow::Owned(text)))
    }
}

impl<'a> From<Cow<'a, str>> for PyStr<'a> {
    #[inline]
    fn from(text: Cow<'a, str>) -> Self {
        PyStr(Repr::Text(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_surrogates_are_kept_and_shown_as_escapes() {
        // 'a', a lone high surrogate, a pair (U+1F600), a lone low one.
        let s = PyStr::from_utf16(vec![0x61, 0xd800, 0xd83d, 0xde00, 0xdc00]);
        assert!(s.has_lone_surrogate());
        assert_eq!(s.as_str(), None);
        assert_eq!(&*s, "a\\ud800😀\\udc00");
        assert_eq!(
            s.to_utf8().unwrap_err().to_string(),
            "'utf-8' codec can't encode character '\\ud800' in position 1: surrogates not allowed"
        );
        let chars: Vec<Result<char, u16>> = s.chars().collect();
        assert_eq!(chars, [Ok('a'), Err(0xd800), Ok('😀'), Err(0xdc00)]);
        // Not equal to its replacement text, nor to another surrogate.
        assert!(s != *"a\\ud800😀\\udc00");
        assert_ne!(PyStr::from_utf16(vec![0xd800]), PyStr::from_utf16(vec![0xdbff]));
        // Two strings whose texts agree (a surrogate, and its escape written out) differ.
        let mut written_out: Vec<u16> = "\\ud800".encode_utf16().collect();
        written_out.push(0xd801);
        assert_eq!(&*PyStr::from_utf16(written_out.clone()), &*PyStr::from_utf16(vec![0xd800, 0xd801]));
        assert_ne!(PyStr::from_utf16(written_out), PyStr::from_utf16(vec![0xd800, 0xd801]));
        assert_eq!(s.clone().into_owned(), s);
    }

    #[test]
    fn valid_code_units_make_plain_text() {
        let s = PyStr::from_utf16("é😀".encode_utf16().collect());
        assert_eq!((s.as_str(), s.to_utf8()), (Some("é😀"), Ok("é😀")));
        assert!(!s.has_lone_surrogate() && !s.is_borrowed());
        let borrowed = PyStr::from("x");
        assert!(borrowed.is_borrowed() && borrowed == "x");
    }
}
