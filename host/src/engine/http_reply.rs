//! The `http-reply` import: the answers a guest gives to the HTTP requests
//! of its batch (a pipeline with an HTTP source hands it one message per
//! request, the offset naming the request).
//!
//! A call's answers are kept only if the call succeeds, like its effects.
//! Each is bounded: one per request of the call's batch, a status from 200 to
//! 599, a body of at most [`MAX_BODY`] and headers of at most
//! [`MAX_HEADERS`] / [`MAX_HEADER_BYTES`]; a guest past a bound fails its call.

/// Most bytes of one answer's body.
pub const MAX_BODY: usize = 1 << 20;
/// Most headers of one answer.
pub const MAX_HEADERS: usize = 32;
/// Most bytes of one answer's header names and values together.
pub const MAX_HEADER_BYTES: usize = 8 << 10;

/// The guest's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The request's offset in the batch.
    pub offset: i64,
    /// HTTP status.
    pub status: u16,
    /// Header names and values.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The bytes the host holds for it, estimated (for the output budget).
    pub fn size(&self) -> usize {
        64 + self.body.len() + self.headers.iter().map(|(k, v)| 32 + k.len() + v.len()).sum::<usize>()
    }
}

/// Why an answer was refused (the call then fails with this reason).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReplyError {
    /// The offset names no request of the batch.
    #[error("http-reply: offset {0} is not a request of this batch")]
    UnknownRequest(i64),
    /// The request was answered already.
    #[error("http-reply: the request at offset {0} is answered twice")]
    Twice(i64),
    /// A status outside 200..=599.
    #[error("http-reply: status {0} is not between 200 and 599")]
    Status(u16),
    /// The body is too large.
    #[error("http-reply: a body of {0} bytes is over the {MAX_BODY} bytes an answer may hold")]
    Body(usize),
    /// Too many headers or header bytes, or a header that HTTP cannot carry.
    #[error("http-reply: {0}")]
    Headers(String),
}

/// The answers of the current call.
#[derive(Debug, Default)]
pub struct Replies {
    /// Offsets of the call's requests, ascending.
    requests: Vec<i64>,
    /// The answers given so far in this call.
    answered: Vec<Reply>,
}

impl Replies {
    /// Start a call on a batch whose messages have `offsets` (ascending).
    pub fn begin(&mut self, offsets: impl Iterator<Item = i64>) {
        self.requests.clear();
        self.requests.extend(offsets);
        self.answered.clear();
    }

    /// The answers of the call that just ended.
    pub fn take(&mut self) -> Vec<Reply> {
        self.requests.clear();
        std::mem::take(&mut self.answered)
    }

    /// Record the guest's answer to the request at `offset`.
    pub fn respond(&mut self, reply: Reply) -> Result<(), ReplyError> {
        if self.requests.binary_search(&reply.offset).is_err() {
            return Err(ReplyError::UnknownRequest(reply.offset));
        }
        if self.answered.iter().any(|r| r.offset == reply.offset) {
            return Err(ReplyError::Twice(reply.offset));
        }
        if !(200..=599).contains(&reply.status) {
            return Err(ReplyError::Status(reply.status));
        }
        if reply.body.len() > MAX_BODY {
            return Err(ReplyError::Body(reply.body.len()));
        }
        check_headers(&reply.headers)?;
        self.answered.push(reply);
        Ok(())
    }
}

/// Headers an answer may carry: few and small, valid HTTP names and values,
/// and none the host sets itself.
fn check_headers(headers: &[(String, Vec<u8>)]) -> Result<(), ReplyError> {
    if headers.len() > MAX_HEADERS {
        return Err(ReplyError::Headers(format!("{} headers, over {MAX_HEADERS}", headers.len())));
    }
    let bytes: usize = headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > MAX_HEADER_BYTES {
        return Err(ReplyError::Headers(format!("headers of {bytes} bytes, over {MAX_HEADER_BYTES}")));
    }
    for (name, value) in headers {
        let shown = || crate::text::escape_capped(name, 64);
        if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(ReplyError::Headers(format!("`{}` is not a header name", shown())));
        }
        if axum::http::HeaderValue::from_bytes(value).is_err() {
            return Err(ReplyError::Headers(format!("the value of `{}` is not a header value", shown())));
        }
        if RESERVED.iter().any(|r| name.eq_ignore_ascii_case(r)) {
            return Err(ReplyError::Headers(format!("`{}` is set by the host", shown())));
        }
    }
    Ok(())
}

/// Headers the host sets (framing and connection management).
const RESERVED: &[&str] = &["content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "trailer"];

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(offset: i64, status: u16) -> Reply {
        Reply { offset, status, headers: vec![("content-type".into(), b"application/json".to_vec())], body: vec![] }
    }

    #[test]
    fn one_bounded_answer_per_request_of_the_call() {
        let mut replies = Replies::default();
        replies.begin([4, 5, 7].into_iter());
        assert_eq!(replies.respond(reply(5, 204)), Ok(()));
        assert_eq!(replies.respond(reply(5, 204)), Err(ReplyError::Twice(5)));
        assert_eq!(replies.respond(reply(6, 204)), Err(ReplyError::UnknownRequest(6)));
        assert_eq!(replies.respond(reply(4, 199)), Err(ReplyError::Status(199)));
        assert_eq!(replies.respond(reply(4, 600)), Err(ReplyError::Status(600)));
        let big = Reply { body: vec![0; MAX_BODY + 1], ..reply(4, 200) };
        assert_eq!(replies.respond(big), Err(ReplyError::Body(MAX_BODY + 1)));
        let many = Reply { headers: (0..33).map(|i| (format!("x-{i}"), vec![b'a'])).collect(), ..reply(4, 200) };
        assert!(matches!(replies.respond(many), Err(ReplyError::Headers(_))));
        let forged = Reply { headers: vec![("x-a".into(), b"1\r\nx-b: 2".to_vec())], ..reply(4, 200) };
        assert!(matches!(replies.respond(forged), Err(ReplyError::Headers(_))));
        let framing = Reply { headers: vec![("Content-Length".into(), b"0".to_vec())], ..reply(4, 200) };
        assert!(matches!(replies.respond(framing), Err(ReplyError::Headers(_))));
        assert_eq!(replies.respond(reply(7, 422)), Ok(()));
        let taken = replies.take();
        assert_eq!(taken.iter().map(|r| (r.offset, r.status)).collect::<Vec<_>>(), vec![(5, 204), (7, 422)]);
        assert_eq!(replies.respond(reply(4, 200)), Err(ReplyError::UnknownRequest(4)), "the call ended");
    }
}
