//! Reading InfluxDB line protocol as the sinks need it: the lines of a body,
//! and a line's series key (measurement and tags), field set and timestamp.
//! Only as much parsing as storing a point by its identity needs; field
//! values are kept as written.

/// The lines of a body (empty lines skipped, as InfluxDB does).
pub fn split(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    split_with_offsets(body).map(|(start, end)| &body[start..end])
}

/// The (start, end) byte offsets of the lines of a body (empty lines
/// skipped, numbered as [`split`] numbers them).
pub fn split_with_offsets(body: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    // memchr finds the line ends a vector register at a time: bodies are
    // megabytes of short lines.
    let ends = memchr::memchr_iter(b'\n', body).chain(std::iter::once(body.len()));
    let mut start = 0;
    ends.filter_map(move |end| {
        let line = (start, end);
        start = end + 1;
        (end > line.0).then_some(line)
    })
}

/// Number of lines in a body.
pub fn count(body: &[u8]) -> usize {
    split(body).count()
}

/// One point, by parts, borrowed from its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedLine<'a> {
    /// Measurement, still escaped.
    pub measurement: &'a str,
    /// Measurement and tags as written: InfluxDB's series key.
    pub series: &'a str,
    /// The field set as written.
    pub fields: &'a str,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

/// Split a line into series key, field set and timestamp. Every point the
/// host stores carries a timestamp (guests write millisecond times).
pub fn parse(line: &[u8]) -> Result<ParsedLine<'_>, String> {
    let line = std::str::from_utf8(line).map_err(|e| format!("line protocol is not UTF-8: {e}"))?;
    let series_end = unescaped(line, b' ').ok_or("line protocol without a field set")?;
    let series = &line[..series_end];
    let measurement = &series[..unescaped(series, b',').unwrap_or(series.len())];
    if measurement.is_empty() {
        return Err("line protocol without a measurement".into());
    }
    // Field values may hold spaces only inside quotes, which come before the
    // timestamp: the last space separates it.
    let rest = &line[series_end + 1..];
    let time_start = rest.rfind(' ').ok_or("line protocol without a timestamp")?;
    let fields = &rest[..time_start];
    if fields.is_empty() || !fields.contains('=') {
        return Err("line protocol without fields".into());
    }
    let timestamp_ms =
        rest[time_start + 1..].parse::<i64>().map_err(|_| format!("bad timestamp {:?}", &rest[time_start + 1..]))?;
    Ok(ParsedLine { measurement, series, fields, timestamp_ms })
}

/// Position of the first `wanted` byte not escaped with a backslash.
fn unescaped(text: &str, wanted: u8) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == wanted => return Some(i),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_escaped_names_and_quoted_fields() {
        let line = br#"cpu\ load\,x,host=a\ b,k\=y=v value=1.0,value_meta="{\"a b\": \"c\"}" 1700000000123"#;
        let parsed = parse(line).unwrap();
        assert_eq!(parsed.measurement, r"cpu\ load\,x");
        assert_eq!(parsed.series, r"cpu\ load\,x,host=a\ b,k\=y=v");
        assert_eq!(parsed.fields, r#"value=1.0,value_meta="{\"a b\": \"c\"}""#);
        assert_eq!(parsed.timestamp_ms, 1_700_000_000_123);
    }

    #[test]
    fn refuses_lines_without_parts() {
        assert!(parse(b"cpu").is_err());
        assert!(parse(b"cpu value=1").unwrap_err().contains("timestamp"));
        assert!(parse(b"cpu value=1 soon").unwrap_err().contains("timestamp"));
        assert!(parse(b" value=1 1").unwrap_err().contains("measurement"));
        assert!(parse(&[b'c', 0xff, b' ', b'v', b'=', b'1', b' ', b'1']).unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn splits_and_counts_lines() {
        assert_eq!(count(b"a v=1 1\nb v=2 2\n"), 2);
        assert_eq!(count(b""), 0);
        let body = b"a 1\n\nbb 2\nc 3";
        let spans: Vec<(usize, usize)> = split_with_offsets(body).collect();
        assert_eq!(spans, [(0, 3), (5, 9), (10, 13)]);
        let lines: Vec<&[u8]> = split(body).collect();
        assert_eq!(lines, spans.iter().map(|(s, e)| &body[*s..*e]).collect::<Vec<_>>());
    }
}
