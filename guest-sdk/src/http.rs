//! HTTP requests and their answers, for the guest of a pipeline whose source
//! is an HTTP listener (`[pipeline.http]` in the host's configuration).
//!
//! Each request arrives as one [`Message`]: the body is the value, the
//! offset names the request, and the rest are headers the host sets:
//! [`METHOD`], [`PATH`], [`QUERY`], the caller's identity once the host has
//! authenticated it ([`PROJECT_ID`], [`ROLES`], [`USER_ID`]; names no HTTP
//! client can send, so no client can forge them), and the request's own
//! headers with lower-case names (credentials removed). [`Request`] reads them.
//!
//! The guest produces the request's records with the request's message as
//! their origin and answers it with [`respond`]. The host sends the answer
//! once every record of that request is acknowledged by Kafka (503 when one
//! is not); a request answered with a status of 400 or more has its records
//! dropped; a request left unanswered gets 204.

use crate::Message;

/// The request's method (`POST`, `GET`, ...).
pub const METHOD: &str = ":method";
/// The request's path, e.g. `/v2.0/metrics`.
pub const PATH: &str = ":path";
/// The request's query string without the `?` (absent when there is none).
pub const QUERY: &str = ":query";
/// The authenticated caller's project (tenant) id.
pub const PROJECT_ID: &str = ":project-id";
/// The authenticated caller's roles, comma-separated.
pub const ROLES: &str = ":roles";
/// The authenticated caller's user id, when known.
pub const USER_ID: &str = ":user-id";

/// A view of one request of the batch.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    message: &'a Message,
}

impl<'a> Request<'a> {
    /// The request that `message` carries.
    pub fn of(message: &'a Message) -> Self {
        Request { message }
    }

    /// The message it arrived in.
    pub fn message(&self) -> &'a Message {
        self.message
    }

    /// A header as text (`None` when absent or not UTF-8). Request header
    /// names are lower case.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.message.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The method, upper case as sent.
    pub fn method(&self) -> &'a str {
        self.header(METHOD).unwrap_or("")
    }

    /// The path.
    pub fn path(&self) -> &'a str {
        self.header(PATH).unwrap_or("")
    }

    /// The raw query string, without the `?`.
    pub fn query(&self) -> Option<&'a str> {
        self.header(QUERY)
    }

    /// The first value of the query parameter `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(key) == name).then(|| decode_component(value))
        })
    }

    /// The caller's project id.
    pub fn project_id(&self) -> Option<&'a str> {
        self.header(PROJECT_ID)
    }

    /// The caller's roles.
    pub fn roles(&self) -> impl Iterator<Item = &'a str> {
        self.header(ROLES).unwrap_or("").split(',').map(str::trim).filter(|r| !r.is_empty())
    }

    /// True when the caller holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles().any(|r| r == role)
    }

    /// The caller's user id.
    pub fn user_id(&self) -> Option<&'a str> {
        self.header(USER_ID)
    }

    /// The body.
    pub fn body(&self) -> &'a [u8] {
        &self.message.value
    }
}

/// A query-string component with `+` as space and `%XX` escapes decoded
/// (invalid UTF-8 is replaced).
pub fn decode_component(text: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', high, low]) => hex(*high).zip(hex(*low)).map(|(h, l)| (h * 16 + l) as u8),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An error body as falcon (the originals' web framework) writes it:
/// `{"title": ..., "description": ...}`, the description left out when
/// `None`, separators `", "` and `": "`, non-ASCII as it is.
pub fn falcon_error(title: &str, description: Option<&str>) -> String {
    let mut out = String::from("{\"title\": ");
    crate::pyjson::write_string(&mut out, title);
    if let Some(description) = description {
        out.push_str(", \"description\": ");
        crate::pyjson::write_string(&mut out, description);
    }
    out.push('}');
    out
}

/// Answer with a falcon error body (`content-type: application/json`).
pub fn respond_error(message: &Message, status: u16, title: &str, description: Option<&str>) {
    respond_json(message, status, &falcon_error(title, description))
}

/// Answer the request of `message` with `status`, `headers` and `body`.
///
/// Bounds (the host fails the call beyond them): one answer per request, a
/// status from 200 to 599, a body of at most 1 MiB, at most 32 headers of
/// 8 KiB together, and none of the framing headers the host sets
/// (`content-length`, `transfer-encoding`, `connection`, ...).
pub fn respond(message: &Message, status: u16, headers: &[(&str, &str)], body: &[u8]) {
    imp::respond(message.offset, status, headers, body)
}

/// Answer with a JSON body (`content-type: application/json`).
pub fn respond_json(message: &Message, status: u16, json: &str) {
    respond(message, status, &[("content-type", "application/json")], json.as_bytes())
}

/// Answer with a status and no body.
pub fn respond_empty(message: &Message, status: u16) {
    respond(message, status, &[], &[])
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use crate::bindings::monasca::processor::http_reply;
    use crate::bindings::monasca::processor::types::Header;

    pub fn respond(offset: i64, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        let headers: Vec<Header> =
            headers.iter().map(|(k, v)| Header { key: k.to_string(), value: v.as_bytes().to_vec() }).collect();
        http_reply::respond(offset, status, &headers, body);
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::Reply;
    use std::cell::RefCell;

    thread_local! {
        static REPLIES: RefCell<Vec<Reply>> = const { RefCell::new(Vec::new()) };
    }

    pub fn respond(offset: i64, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        REPLIES.with(|r| r.borrow_mut().push(Reply { offset, status, headers, body: body.to_vec() }));
    }

    /// Take the answers given on this thread so far.
    pub fn take() -> Vec<Reply> {
        REPLIES.with(|r| std::mem::take(&mut *r.borrow_mut()))
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use imp::take as take_native_replies;

/// An answer as the native [`crate::testing::Harness`] collects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The request's offset.
    pub offset: i64,
    /// Status.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Header;

    #[test]
    fn a_request_reads_from_its_headers() {
        let mut m = Message::new("http", b"{}".to_vec());
        for (k, v) in
            [(METHOD, "POST"), (PATH, "/v2.0/metrics"), (QUERY, "tenant_id=a%20b&x=1&y"), (ROLES, "admin, agent")]
        {
            m.headers.push(Header { key: k.into(), value: v.as_bytes().to_vec() });
        }
        let r = Request::of(&m);
        assert_eq!((r.method(), r.path()), ("POST", "/v2.0/metrics"));
        assert_eq!(r.query_param("tenant_id").as_deref(), Some("a b"));
        assert_eq!(r.query_param("y").as_deref(), Some(""));
        assert_eq!(r.query_param("z"), None);
        assert!(r.has_role("agent") && !r.has_role("monasca-user"));
        assert_eq!(r.project_id(), None);
        assert_eq!(decode_component("%4"), "%4");
        assert_eq!(decode_component("%zz%41"), "%zzA");
    }
}
