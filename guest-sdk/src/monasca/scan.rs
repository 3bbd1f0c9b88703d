//! The fast path for metric envelopes: one pass over the bytes, strings
//! borrowed from the message, no serde machinery.
//!
//! Metric envelopes are most of Monasca's traffic and nearly all of them have
//! the same plain shape, so this scanner handles exactly that shape and
//! answers `None` for anything else: a backslash in any string, a control
//! character, a duplicate key, nesting deeper than [`MAX_DEPTH`], a number it
//! cannot read exactly, malformed JSON. The serde path then parses the
//! message and, if it is invalid, says why. So the scanner never decides
//! that a message is invalid, and whatever it accepts it reads as the serde
//! path would (a differential test checks that on generated envelopes).

use super::{Dimensions, Metric, MetricEnvelope, MetricMeta};
use serde_json::value::RawValue;
use std::borrow::Cow;

/// Deepest nesting the scanner skips through (serde_json allows 128).
const MAX_DEPTH: usize = 32;

/// `bytes` as a metric envelope, when it has the plain shape. Only strings
/// may hold non-ASCII bytes (anything else fails the grammar), so UTF-8 is
/// checked string by string, and only for strings that are not pure ASCII.
pub(super) fn metric_envelope(bytes: &[u8]) -> Option<MetricEnvelope<'_>> {
    let mut scan = Scanner { bytes, pos: 0, key_specials: false };
    let (mut metric, mut meta, mut creation_time) = (None, None, None);
    scan.fields(|scan, key| match key {
        METRIC => set_once(&mut metric, scan.metric()?),
        META => set_once(&mut meta, scan.meta()?),
        CREATION_TIME => set_once(&mut creation_time, scan.optional_number()?),
        _ => scan.skip_value(0),
    })?;
    scan.end()?;
    Some(MetricEnvelope {
        metric: metric?,
        meta: meta?,
        creation_time: creation_time.flatten(),
        plain_strings: true,
        key_plain_strings: !scan.key_specials,
    })
}

/// Store a field's value, refusing a second one (serde refuses duplicate fields).
fn set_once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(value);
            Some(())
        }
    }
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Some string so far held a space, a comma or an equals sign.
    key_specials: bool,
}

/// What [`scan_string`] found before the byte that stopped it.
pub(crate) struct StringScan {
    /// Bytes before the stop (`"`, `\` or a control character).
    pub(crate) len: usize,
    /// Some byte was not ASCII.
    non_ascii: bool,
    /// Some byte was a space, a comma or an equals sign.
    key_specials: bool,
}

/// Scan a string's bytes to the first `"`, `\` or control character,
/// sixteen bytes at a time with wasm SIMD, else eight at a time in a word.
/// `None` when no byte stops the scan.
pub(crate) fn scan_string(rest: &[u8]) -> Option<StringScan> {
    let mut scan = StringScan { len: 0, non_ascii: false, key_specials: false };
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        use core::arch::wasm32::{u8x16_bitmask, u8x16_eq, u8x16_lt, u8x16_splat, v128, v128_load, v128_or};
        while let Some(chunk) = rest.get(scan.len..scan.len + 16) {
            // SAFETY: `chunk` is 16 readable bytes; `v128_load` takes any alignment.
            let v = unsafe { v128_load(chunk.as_ptr().cast::<v128>()) };
            let is = |byte: u8| u8x16_eq(v, u8x16_splat(byte));
            let stops = u8x16_bitmask(v128_or(v128_or(is(b'"'), is(b'\\')), u8x16_lt(v, u8x16_splat(0x20))));
            let specials = u8x16_bitmask(v128_or(v128_or(is(b' '), is(b',')), is(b'=')));
            let high = u8x16_bitmask(v);
            let before = if stops == 0 { u16::MAX } else { (1u16 << stops.trailing_zeros()) - 1 };
            scan.non_ascii |= high & before != 0;
            scan.key_specials |= specials & before != 0;
            if stops != 0 {
                scan.len += stops.trailing_zeros() as usize;
                return Some(scan);
            }
            scan.len += 16;
        }
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    while let Some(chunk) = rest.get(scan.len..scan.len + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let stops = string_stops(word);
        // Marks below the first stop are exact (see `zero_byte`).
        let before = if stops == 0 { u64::MAX } else { (1u64 << stops.trailing_zeros()) - 1 };
        scan.non_ascii |= word & HIGHS & before != 0;
        scan.key_specials |= key_specials(word) & before != 0;
        if stops != 0 {
            scan.len += (stops.trailing_zeros() / 8) as usize;
            return Some(scan);
        }
        scan.len += 8;
    }
    for &b in rest.get(scan.len..)? {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return Some(scan);
        }
        scan.non_ascii |= b >= 0x80;
        scan.key_specials |= matches!(b, b' ' | b',' | b'=');
        scan.len += 1;
    }
    None
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
const ONES: u64 = u64::from_le_bytes([0x01; 8]);
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);

/// The zero bytes of `x` as their high bits. A borrow can mark a byte just
/// above a zero byte too, so only marks below the lowest true one are exact:
/// the lowest mark, and "is there a mark below position k", are always right.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn zero_byte(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// The bytes of `word` that end a plain string's scan (`"`, `\`, a control
/// character) as high bits (see [`zero_byte`] for which marks are exact).
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn string_stops(word: u64) -> u64 {
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    zero_byte(word ^ (ONES * u64::from(b'"'))) | zero_byte(word ^ (ONES * u64::from(b'\\'))) | below_space
}

/// The spaces, commas and equals signs of `word` as high bits.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn key_specials(word: u64) -> u64 {
    let is = |b: u8| zero_byte(word ^ (ONES * u64::from(b)));
    is(b' ') | is(b',') | is(b'=')
}

/// An object key of at most 15 bytes as one number: its bytes, little-endian,
/// with its length in the top byte. A known key then matches in one
/// comparison (in a guest, comparing `str`s calls a byte-by-byte `memcmp`).
const fn key_word(key: &[u8]) -> u128 {
    assert!(key.len() <= 15, "key words hold at most 15 bytes");
    let mut word = (key.len() as u128) << 120;
    let mut i = 0;
    while i < key.len() {
        word |= (key[i] as u128) << (8 * i);
        i += 1;
    }
    word
}

/// `KEY_MASKS[n]` keeps a word's low `n` bytes (a table: a 128-bit shift by
/// a variable amount is a library call in wasm).
const KEY_MASKS: [u128; 16] = {
    let mut masks = [0u128; 16];
    let mut n = 1;
    while n < 16 {
        masks[n] = (masks[n - 1] << 8) | 0xff;
        n += 1;
    }
    masks
};

/// The word of every key longer than 15 bytes (no [`key_word`] equals it).
const LONG_KEY: u128 = u128::MAX;

const METRIC: u128 = key_word(b"metric");
const META: u128 = key_word(b"meta");
const CREATION_TIME: u128 = key_word(b"creation_time");
const NAME: u128 = key_word(b"name");
const DIMENSIONS: u128 = key_word(b"dimensions");
const TIMESTAMP: u128 = key_word(b"timestamp");
const VALUE: u128 = key_word(b"value");
const VALUE_META: u128 = key_word(b"value_meta");
const TENANT_ID: u128 = key_word(b"tenantId");
const REGION: u128 = key_word(b"region");

/// Powers of ten that an `f64` holds exactly.
const EXACT_POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// `mantissa / 10^fraction_digits` when one division gives it exactly
/// rounded (Clinger's fast path: both operands are exact in an `f64`, and a
/// division rounds correctly), so it agrees with any correct parser; `None`
/// for the rest (an exponent, more than 19 digits, a mantissa beyond 2^53).
/// Reading a number this way skips the general algorithm, whose 128-bit
/// products are library calls in a guest.
fn fast_decimal(mantissa: u64, digits: usize, fraction_digits: usize, exponent: bool) -> Option<f64> {
    if exponent || digits > 19 || mantissa > 1 << 53 {
        return None;
    }
    let power = EXACT_POWERS_OF_TEN.get(fraction_digits)?;
    Some(mantissa as f64 / power)
}

fn is_json_space(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// Text that was checked to be UTF-8 (or ASCII).
fn text(bytes: &[u8], ascii: bool) -> Option<&str> {
    if ascii {
        // SAFETY: every byte is below 0x80, and ASCII is valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes).ok()
    }
}

impl<'a> Scanner<'a> {
    /// The next byte after whitespace, not consumed.
    #[inline]
    fn peek(&mut self) -> Option<u8> {
        // Compact JSON has no whitespace: answer without entering a loop
        // (in a guest, every loop iteration also checks the epoch deadline).
        match self.bytes.get(self.pos) {
            Some(&b) if !is_json_space(b) => Some(b),
            _ => self.skip_space(),
        }
    }

    #[cold]
    fn skip_space(&mut self) -> Option<u8> {
        while let Some(&b) = self.bytes.get(self.pos) {
            if !is_json_space(b) {
                return Some(b);
            }
            self.pos += 1;
        }
        None
    }

    /// Consume `expected` (after whitespace).
    fn eat(&mut self, expected: u8) -> Option<()> {
        (self.peek()? == expected).then(|| self.pos += 1)
    }

    /// Only whitespace is left.
    fn end(&mut self) -> Option<()> {
        self.peek().is_none().then_some(())
    }

    /// Consume an object, calling `entry` with each key; `entry` consumes the value.
    fn object(&mut self, entry: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.members(Self::string, entry)
    }

    /// Consume an object of known fields, calling `entry` with each key as
    /// a [`key_word`]; `entry` consumes the value.
    fn fields(&mut self, entry: impl FnMut(&mut Self, u128) -> Option<()>) -> Option<()> {
        self.members(Self::key, entry)
    }

    fn members<K>(
        &mut self,
        read_key: fn(&mut Self) -> Option<K>,
        mut entry: impl FnMut(&mut Self, K) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(());
        }
        loop {
            let key = read_key(self)?;
            self.eat(b':')?;
            entry(self, key)?;
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A plain string (no escapes), consumed: the bytes from its first on
    /// (the string is the first `len` of them) and whether any is not ASCII.
    fn plain(&mut self) -> Option<(&'a [u8], usize, bool)> {
        self.eat(b'"')?;
        let start = self.pos;
        let rest = self.bytes.get(start..)?;
        let found = scan_string(rest)?;
        if rest[found.len] != b'"' {
            return None;
        }
        self.key_specials |= found.key_specials;
        self.pos = start + found.len + 1;
        Some((rest, found.len, found.non_ascii))
    }

    /// A plain string as its [`key_word`]; checked to be UTF-8.
    fn key(&mut self) -> Option<u128> {
        let (rest, len, non_ascii) = self.plain()?;
        if non_ascii {
            std::str::from_utf8(&rest[..len]).ok()?;
        }
        if len > 15 {
            return Some(LONG_KEY);
        }
        let bytes = match rest.get(..16) {
            // One load, then the bytes past the key masked off.
            Some(sixteen) => u128::from_le_bytes(sixteen.try_into().ok()?) & KEY_MASKS[len],
            None => rest[..len].iter().rev().fold(0u128, |word, &b| word << 8 | u128::from(b)),
        };
        Some(bytes | (len as u128) << 120)
    }

    /// A plain string, borrowed; checked to be UTF-8.
    fn string(&mut self) -> Option<&'a str> {
        let (rest, len, non_ascii) = self.plain()?;
        text(&rest[..len], !non_ascii)
    }

    /// A JSON number as `f64`, when reading it as one is exact and unambiguous.
    fn number(&mut self) -> Option<f64> {
        self.peek()?;
        let start = self.pos;
        let b = self.bytes;
        // Digits from `i` on: where they end, how many, and their value
        // (`mantissa` continued; it wraps past 19 digits, which `fast_decimal` refuses).
        let digits = |mut i: usize, mut mantissa: u64| {
            let from = i;
            while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
                mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
                i += 1;
            }
            (i > from).then_some((i, i - from, mantissa))
        };
        let mut i = start;
        let negative = b.get(i) == Some(&b'-');
        if negative {
            i += 1;
        }
        let int_start = i;
        let (end, int_digits, mut mantissa) = digits(i, 0)?;
        i = end;
        if b[int_start] == b'0' && int_digits > 1 {
            return None; // leading zero: not JSON
        }
        let (mut integer, mut fraction_digits, mut exponent) = (true, 0, false);
        if b.get(i) == Some(&b'.') {
            (i, fraction_digits, mantissa) = digits(i + 1, mantissa)?;
            integer = false;
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            i = digits(i, 0)?.0;
            (integer, exponent) = (false, true);
        }
        // serde_json reads `-0` as a float minus zero and a whole number as an
        // integer first; leave the former to it, the latter agrees.
        if integer && negative && b[int_start..i].iter().all(|&d| d == b'0') {
            return None;
        }
        let value = match fast_decimal(mantissa, int_digits + fraction_digits, fraction_digits, exponent) {
            Some(magnitude) if negative => -magnitude,
            Some(magnitude) => magnitude,
            None => text(&b[start..i], true)?.parse().ok()?,
        };
        self.pos = i;
        value.is_finite().then_some(value)
    }

    /// A number or `null`.
    fn optional_number(&mut self) -> Option<Option<f64>> {
        if self.peek()? == b'n' {
            self.literal("null")?;
            return Some(None);
        }
        self.number().map(Some)
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        self.peek()?;
        let end = self.pos + word.len();
        (self.bytes.get(self.pos..end)? == word.as_bytes()).then(|| self.pos = end)
    }

    /// Consume any JSON value, checking its syntax.
    fn skip_value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'{' => self.object(|scan, _| scan.skip_value(depth + 1)),
            b'[' => {
                self.pos += 1;
                if self.peek()? == b']' {
                    self.pos += 1;
                    return Some(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    match self.peek()? {
                        b',' => self.pos += 1,
                        b']' => {
                            self.pos += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'"' => self.string().map(drop),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            _ => self.number().map(drop),
        }
    }

    /// The text of the next value, checked.
    fn raw_value(&mut self) -> Option<&'a str> {
        self.peek()?;
        let start = self.pos;
        self.skip_value(0)?;
        std::str::from_utf8(self.bytes.get(start..self.pos)?).ok()
    }

    fn metric(&mut self) -> Option<Metric<'a>> {
        let (mut name, mut dimensions, mut timestamp, mut value, mut value_meta) = (None, None, None, None, None);
        self.fields(|scan, key| match key {
            NAME => set_once(&mut name, scan.string()?),
            DIMENSIONS => set_once(&mut dimensions, scan.dimensions()?),
            TIMESTAMP => set_once(&mut timestamp, scan.number()?),
            VALUE => set_once(&mut value, scan.number()?),
            VALUE_META => set_once(&mut value_meta, scan.value_meta()?),
            _ => scan.skip_value(0),
        })?;
        let timestamp = timestamp?;
        if timestamp.abs() > super::MAX_TIMESTAMP {
            return None;
        }
        Some(Metric {
            name: Cow::Borrowed(name?),
            dimensions: dimensions.unwrap_or_default(),
            timestamp: timestamp.trunc() as i64,
            value: value?,
            value_meta: value_meta.flatten(),
        })
    }

    /// `value_meta`: `None` for `null`, else the raw value.
    fn value_meta(&mut self) -> Option<Option<&'a RawValue>> {
        if self.peek()? == b'n' {
            self.literal("null")?;
            return Some(None);
        }
        let raw = self.raw_value()?;
        serde_json::from_str::<&RawValue>(raw).ok().map(Some)
    }

    fn dimensions(&mut self) -> Option<Dimensions<'a>> {
        let mut pairs = Vec::with_capacity(8);
        self.object(|scan, key| {
            pairs.push((Cow::Borrowed(key), Cow::Borrowed(scan.string()?)));
            Some(())
        })?;
        Some(Dimensions::from_unsorted(pairs))
    }

    fn meta(&mut self) -> Option<MetricMeta<'a>> {
        let (mut tenant_id, mut region) = (None, None);
        self.fields(|scan, key| match key {
            TENANT_ID => set_once(&mut tenant_id, scan.string()?),
            REGION => set_once(&mut region, scan.string()?),
            _ => scan.skip_value(0),
        })?;
        Some(MetricMeta { tenant_id: Cow::Borrowed(tenant_id?), region: Cow::Borrowed(region?) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Read one key with `Scanner::key`.
    fn key_of(bytes: &[u8]) -> Option<u128> {
        Scanner { bytes, pos: 0, key_specials: false }.key()
    }

    /// Read one number with `Scanner::number`.
    fn number_of(text: &str) -> Option<f64> {
        Scanner { bytes: text.as_bytes(), pos: 0, key_specials: false }.number()
    }

    #[test]
    fn numbers_read_as_a_correct_parser_reads_them() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut texts: Vec<String> = [
            "0",
            "7",
            "0.5",
            "-0.0",
            "0.1",
            "97.123456",
            "0.000123",
            "9007199254740992",
            "9007199254740993",
            "9007199254740992.5",
            "1234567890123456789",
            "12345678901234567890",
            "0.1234567890123456789012",
            "0.12345678901234567890123",
            "1700000000000.9",
            "-1e3",
            "2.5E-3",
            "123456.7890123456",
        ]
        .iter()
        .map(|t| t.to_string())
        .collect();
        for _ in 0..20_000 {
            let digits = 1 + (rng.next() % 21) as usize;
            let text: String = (0..digits).map(|_| char::from(b'0' + (rng.next() % 10) as u8)).collect();
            // The whole part: no leading zero (JSON), or just "0".
            let point = 1 + (rng.next() as usize) % text.len();
            let whole = match text[..point].trim_start_matches('0') {
                "" => "0",
                whole => whole,
            };
            let mut number =
                if point == text.len() { whole.to_string() } else { format!("{whole}.{}", &text[point..]) };
            if rng.next().is_multiple_of(2) {
                number.insert(0, '-');
            }
            texts.push(number);
        }
        for text in &texts {
            let expected: f64 = text.parse().expect("a number");
            match number_of(text) {
                Some(value) => assert_eq!(value.to_bits(), expected.to_bits(), "{text}"),
                None => assert!(text.trim_start_matches('-').chars().all(|c| c == '0'), "{text} was refused"),
            }
        }
    }

    #[test]
    fn key_words_match_only_their_own_key() {
        assert_eq!(key_of(br#""value":1,"value_meta":null}"#), Some(VALUE));
        assert_eq!(key_of(br#""value_meta":null}"#), Some(VALUE_META));
        // Near the end of the buffer (fewer than 16 bytes from the key on).
        assert_eq!(key_of(br#""value":1}"#), Some(VALUE));
        assert_eq!(key_of(br#""meta""#), Some(META));
        for other in [&br#""valu":1}"#[..], br#""values":1}"#, br#""Value":1}"#, br#""":1}"#, br#""value ":1, "x": 1}"#]
        {
            let word = key_of(other).expect("a plain key");
            assert!(![VALUE, VALUE_META, META, METRIC].contains(&word), "{}", String::from_utf8_lossy(other));
        }
        assert_eq!(key_of(br#""creation_time_of_it":1}"#), Some(LONG_KEY));
        // 15 bytes (the longest word) and 16 (too long), with the buffer
        // ending right after the key or going on.
        let fifteen = key_word(b"fifteen-bytes-k");
        assert_eq!(key_of(br#""fifteen-bytes-k""#), Some(fifteen));
        assert_eq!(key_of(br#""fifteen-bytes-k":1, "more": 2}"#), Some(fifteen));
        assert_eq!(key_of(br#""sixteen-bytes-ke""#), Some(LONG_KEY));
        assert_eq!(key_of(br#""fifteen-bytes-""#), Some(key_word(b"fifteen-bytes-")));
        assert_ne!(key_of(br#""fifteen-bytes-""#), Some(fifteen));
        assert_eq!(key_of(b"\"\xc3\xa9t\xc3\xa9\":1}"), Some(key_word("\u{e9}t\u{e9}".as_bytes())));
        assert_eq!(key_of(b"\"m\xffta\":1}"), None, "not UTF-8");
        assert_eq!(key_of(br#""me\"ta":1}"#), None, "escapes are not plain");
    }

    /// A small deterministic generator (xorshift64*).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn pick<'p>(&mut self, items: &[&'p str]) -> &'p str {
            items[(self.next() % items.len() as u64) as usize]
        }

        fn chance(&mut self, percent: u64) -> bool {
            self.next() % 100 < percent
        }
    }

    const NUMBERS: &[&str] = &[
        "0",
        "-0",
        "-0.0",
        "97",
        "-3",
        "1e3",
        "1E+2",
        "0.1",
        "-1.5e-7",
        "1700000000000.9",
        "1700000000000",
        "12345678901234567890123",
        "9007199254740993",
        "1e400",
        "01",
        "1.",
        ".5",
        "-",
        "2.2250738585072011e-308",
        "123456789012345678",
        "18446744073709551616",
        "-9223372036854775809",
        "4.9e-324",
        "0.30000000000000004",
        "9000000000000001",
        "9e15",
        "true",
        "null",
        "\"5\"",
    ];
    const STRINGS: &[&str] = &[
        "\"cpu.idle_perc\"",
        "\"\"",
        "\"a b,c=d\"",
        "\"é😀\"",
        "\"with\\\"quote\"",
        "\"tab\\t\"",
        "\"\\u00e9\"",
        "\"\\ud800\"",
        "\"h1\"",
        "\"hostname\"",
        "\"zone\"",
        "1",
        "null",
        "\"r1\"",
        "\"t1\"",
        "\"compute-001.example.com\"",
        "\"ünïcödé-hostname-rather-long\"",
        "\"0f1c8f4a7a9e4b5b9c1d2e3f40516273\"",
        "\"a-long-name-with-an-escape\\n-after-eight-bytes\"",
        "\"exactly8\"",
        "\"sixteen-bytes-ab\"",
    ];
    const VALUES: &[&str] =
        &["{}", "[]", "{\"a\":[1,2,{\"b\":null}],\"c\":true}", "\"x\"", "null", "false", "[1,]", "{\"a\" 1}", "-2.5e3"];
    const SPACE: &[&str] = &["", "", "", " ", "\n\t ", "\r"];

    fn entry(rng: &mut Rng, key: &str, value: &str) -> String {
        let (a, b) = (rng.pick(SPACE), rng.pick(SPACE));
        format!("{a}\"{key}\"{b}:{}{value}{}", rng.pick(SPACE), rng.pick(SPACE))
    }

    fn pick_entry(rng: &mut Rng, key: &str, values: &[&str]) -> String {
        let value = rng.pick(values);
        entry(rng, key, value)
    }

    fn object(rng: &mut Rng, mut entries: Vec<String>) -> String {
        if rng.chance(10) && !entries.is_empty() {
            let twice = entries[(rng.next() % entries.len() as u64) as usize].clone();
            entries.push(twice);
        }
        if rng.chance(20) {
            entries.push(pick_entry(rng, "extra", VALUES));
        }
        if rng.chance(5) && !entries.is_empty() {
            entries.remove(0);
        }
        format!("{{{}}}", entries.join(","))
    }

    fn envelope(rng: &mut Rng) -> String {
        let mut dims = Vec::new();
        for _ in 0..rng.next() % 5 {
            let key = rng.pick(&["hostname", "zone", "_region", "service", "a b", "zone"]);
            dims.push(pick_entry(rng, key, STRINGS));
        }
        let dims = object(rng, dims);
        let mut metric = vec![
            pick_entry(rng, "name", STRINGS),
            pick_entry(rng, "timestamp", NUMBERS),
            pick_entry(rng, "value", NUMBERS),
        ];
        if rng.chance(80) {
            metric.push(entry(rng, "dimensions", &dims));
        }
        if rng.chance(30) {
            metric.push(pick_entry(rng, "value_meta", VALUES));
        }
        let metric = object(rng, metric);
        let meta = vec![pick_entry(rng, "tenantId", STRINGS), pick_entry(rng, "region", STRINGS)];
        let meta = object(rng, meta);
        let mut top = vec![entry(rng, "metric", &metric), entry(rng, "meta", &meta)];
        if rng.chance(50) {
            top.push(pick_entry(rng, "creation_time", NUMBERS));
        }
        let mut text = object(rng, top);
        if rng.chance(10) {
            let cut = (rng.next() % text.len() as u64) as usize;
            if text.is_char_boundary(cut) {
                text.truncate(cut);
            }
        }
        if rng.chance(5) {
            text.push_str(rng.pick(&[" ", "x", "{}", "\n"]));
        }
        text
    }

    #[test]
    fn fast_path_reads_what_serde_reads() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut accepted = 0;
        for _ in 0..200_000 {
            let text = envelope(&mut rng);
            if let Some(fast) = metric_envelope(text.as_bytes()) {
                accepted += 1;
                let slow: Result<MetricEnvelope<'_>, _> = serde_json::from_str(&text);
                match slow {
                    Ok(mut slow) => {
                        slow.plain_strings = true;
                        slow.key_plain_strings = fast.key_plain_strings;
                        let specials = |s: &str| s.contains([' ', ',', '=']);
                        if fast.key_plain_strings {
                            // What the persister writes unescaped must need no escape.
                            assert!(!specials(&fast.metric.name) && !specials(&fast.meta.region), "{text}");
                            assert!(!specials(&fast.meta.tenant_id), "{text}");
                            assert!(!fast.metric.dimensions.iter().any(|(k, v)| specials(k) || specials(v)), "{text}");
                        } else {
                            assert!(text.contains([' ', ',', '=']), "{text}");
                        }
                        assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "input: {text}");
                    }
                    Err(e) => panic!("the fast path accepted what serde refuses ({e}): {text}"),
                }
            }
        }
        assert!(accepted > 2_000, "the fast path accepted only {accepted} generated envelopes");
    }

    #[test]
    fn plain_envelopes_take_the_fast_path() {
        let text = r#"{"metric":{"name":"cpu.idle_perc","dimensions":{"zone":"z","hostname":"h1"},"timestamp":1700000000000.9,"value":97,"value_meta":{"b":1}},"meta":{"tenantId":"t1","region":"r1"},"creation_time":1700000000}"#;
        let envelope = metric_envelope(text.as_bytes()).expect("fast path");
        assert_eq!(envelope.metric.name, "cpu.idle_perc");
        assert_eq!(envelope.metric.dimensions.iter().collect::<Vec<_>>(), [("hostname", "h1"), ("zone", "z")]);
        assert_eq!(envelope.metric.timestamp, 1_700_000_000_000);
        assert_eq!(envelope.metric.value, 97.0);
        assert_eq!(envelope.metric.value_meta.map(RawValue::get), Some(r#"{"b":1}"#));
        assert_eq!((envelope.meta.tenant_id.as_ref(), envelope.meta.region.as_ref()), ("t1", "r1"));
        assert_eq!(envelope.creation_time, Some(1_700_000_000.0));
    }

    #[test]
    fn invalid_utf8_in_a_string_is_left_to_serde() {
        for at in 0..40 {
            let mut text = br#"{"metric":{"name":"a-name-long-enough-to-span-words","timestamp":1,"value":1},"meta":{"tenantId":"t","region":"r"}}"#.to_vec();
            let name = text.windows(6).position(|w| w == b"a-name").expect("name") + at;
            text[name] = 0xff;
            assert!(metric_envelope(&text).is_none(), "0xff at {at}");
        }
    }

    #[test]
    fn unusual_input_is_left_to_serde() {
        for text in [
            r#"{"metric":{"name":"a\"b","timestamp":1,"value":1},"meta":{"tenantId":"t","region":"r"}}"#,
            r#"{"metric":{"name":"a","timestamp":1,"value":1},"meta":{"tenantId":"t","region":"r"},"meta":{}}"#,
            r#"{"metric":{"name":"a","timestamp":1,"value":-0},"meta":{"tenantId":"t","region":"r"}}"#,
            r#"{"metric":{"name":"a","timestamp":1,"value":1e999},"meta":{"tenantId":"t","region":"r"}}"#,
            r#"{"metric":{"name":"a","timestamp":1,"value":1},"meta":{"tenantId":"t","region":"r"}} x"#,
            r#"{"metric":{"name":"a","timestamp":1,"value":1},"meta":{"tenantId":"t"}}"#,
        ] {
            assert!(metric_envelope(text.as_bytes()).is_none(), "{text}");
        }
    }
}
