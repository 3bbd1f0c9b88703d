//! The URL and the form-encoded fallback body of a Slack notification, as
//! monasca-notification's Slack plugin and `requests` make them.
//!
//! The plugin replaces `#` with `%23`, splits the query off with
//! `urllib.parse.parse_qs` (blank values dropped, `+` and percent escapes
//! decoded, values grouped under their key's first place) and hands it to
//! `requests` as `params`, which encodes it again with `urlencode(doseq=True)`
//! (`quote_plus`: spaces as `+`, all but `A-Z a-z 0-9 _ . - ~` escaped).
//! When Slack refuses the JSON post, the plugin posts the same message again
//! as a form (`data=`), which some Slack-compatible receivers need.

/// The URL the original posts a Slack notification to.
pub fn url(address: &str) -> String {
    // With every `#` escaped, the address has no fragment.
    let address = address.replace('#', "%23");
    let (base, query) = address.split_once('?').unwrap_or((&address, ""));
    let base = requote(&join_path(base));
    let params = parse_qs(query);
    if params.is_empty() {
        return base;
    }
    let encoded: Vec<String> = params
        .iter()
        .flat_map(|(key, values)| values.iter().map(move |v| format!("{}={}", quote_plus(key), quote_plus(v))))
        .collect();
    format!("{base}?{}", encoded.join("&"))
}

/// `urljoin(address, urlparse(address).path)` on the part before the
/// query: the last segment's `;parameters` dropped, empty segments between
/// others dropped, `.` and `..` resolved. An address without a path stays.
fn join_path(base: &str) -> String {
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let Some(slash) = base[after_scheme..].find('/').map(|i| i + after_scheme) else {
        return base.to_string();
    };
    let (origin, mut path) = base.split_at(slash);
    let last_slash = path.rfind('/').unwrap_or(0);
    if let Some(semicolon) = path[last_slash..].find(';') {
        path = &path[..last_slash + semicolon];
    }
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len() - 1;
    let mut resolved: Vec<&str> = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "" if i > 0 && i < last => {}
            ".." => {
                resolved.pop();
            }
            "." => {}
            other => resolved.push(other),
        }
    }
    if matches!(segments[last], "." | "..") {
        resolved.push("");
    }
    let joined = resolved.join("/");
    format!("{origin}{}", if joined.is_empty() { "/" } else { joined.as_str() })
}

/// `requests.utils.requote_uri`: escapes of unreserved characters decoded,
/// then every character outside the unreserved and the URL's delimiters
/// escaped (a space, a quote, non-ASCII as UTF-8 bytes).
fn requote(uri: &str) -> String {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    let safe = |b: u8| unreserved(b) || b"!#$%&'()*+,/:;=?@[]~".contains(&b);
    let bytes = uri.as_bytes();
    let mut out = String::with_capacity(uri.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(decoded) = hex.filter(|d| unreserved(*d)) {
                out.push(char::from(decoded));
                i += 3;
                continue;
            }
        }
        if safe(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
        i += 1;
    }
    out
}

/// The form body of the fallback post: `urlencode({'text': text})`.
pub fn form_body(text: &str) -> String {
    format!("text={}", quote_plus(text))
}

/// `urllib.parse.parse_qs(query)`: pairs split on `&`, a pair without `=` or
/// with an empty value dropped, names and values unquoted; values grouped
/// under their name's first place.
fn parse_qs(query: &str) -> Vec<(String, Vec<String>)> {
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for pair in query.split('&') {
        let Some((name, value)) = pair.split_once('=') else { continue };
        if value.is_empty() {
            continue;
        }
        let (name, value) = (unquote_plus(name), unquote_plus(value));
        match grouped.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => grouped.push((name, vec![value])),
        }
    }
    grouped
}

/// `urllib.parse.unquote(text.replace('+', ' '))`: percent escapes decoded
/// as UTF-8, invalid sequences replaced by U+FFFD.
fn unquote_plus(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `urllib.parse.quote_plus(text)` (UTF-8, nothing safe but the unreserved).
fn quote_plus(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        match b {
            b' ' => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => out.push(char::from(b)),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_is_parsed_and_encoded_again_as_requests_does() {
        assert_eq!(url("https://hooks.example/services/x"), "https://hooks.example/services/x");
        assert_eq!(
            url("https://slack.example/api/chat.postMessage?token=xoxb-1&channel=#alerts"),
            "https://slack.example/api/chat.postMessage?token=xoxb-1&channel=%23alerts"
        );
        assert_eq!(url("http://h/p?a=1&b=&c&a=3&d=x+y%2Fz"), "http://h/p?a=1&a=3&d=x+y%2Fz");
        assert_eq!(url("http://h/p?b=&c"), "http://h/p");
        assert_eq!(url("http://h/p?q=%E2%9C%93%ZZ"), "http://h/p?q=%E2%9C%93%25ZZ");
        assert_eq!(url("https://s/api/chat.postMessage;v=1?token=a"), "https://s/api/chat.postMessage?token=a");
        assert_eq!(url("https://s/a/../api/./chat.postMessage?token=a"), "https://s/api/chat.postMessage?token=a");
        assert_eq!(url("https://s//x//y/.."), "https://s/x/");
        assert_eq!(url("https://s/caf\u{e9} x/%41"), "https://s/caf%C3%A9%20x/A");
    }

    #[test]
    fn the_form_body_is_urlencoded() {
        assert_eq!(form_body("{\n   \"a\": \"b c\"\n}"), "text=%7B%0A+++%22a%22%3A+%22b+c%22%0A%7D");
    }
}
