//! Plain-HTTP requests (`http://`, no proxy, no credentials in the URL)
//! over hyper's HTTP/1.1 connections, kept open and reused per destination
//! host and port.
//!
//! This is the webhook path of a busy host: it skips the general client's
//! layers (redirect and retry policies, URL re-parsing, boxed futures), which
//! cost as much per request as the connection's own work. Nothing is
//! followed or retried here: an answer is what it is. A request is re-sent
//! on another connection only when the idle connection it was given turned
//! out to be closed before the request was written (the server timed it
//! out), which cannot deliver anything twice. Connections are opened by
//! hyper-util's connector (name resolution, IPv4/IPv6 fallback, no Nagle),
//! kept idle for at most [`IDLE_FOR`], and at most `keep_idle` of them in
//! all.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Body as _;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderMap, HeaderValue, ACCEPT, HOST, USER_AGENT};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tower_service::Service;

/// How long a connection may stay idle before it is closed (servers
/// commonly close theirs after a minute or two; DNS changes are seen too).
pub const IDLE_FOR: Duration = Duration::from_secs(60);

/// A destination's host (as the URL writes it, IPv6 in brackets) and port.
type Origin = (String, u16);

/// An idle connection and since when it is idle.
type Idle = (SendRequest<Full<Bytes>>, Instant);

/// An answer: its status and the start of its body.
pub struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

/// Idle connections by origin.
pub struct PlainHttp {
    idle: Mutex<IdlePool>,
    connector: HttpConnector,
    user_agent: HeaderValue,
}

/// Idle connections by origin, at most `keep` in all.
struct IdlePool {
    by_origin: HashMap<Origin, Vec<Idle>>,
    count: usize,
    keep: usize,
}

impl PlainHttp {
    /// Keep up to `keep_idle` idle connections (in all origins together).
    pub fn new(keep_idle: usize) -> Self {
        let mut connector = HttpConnector::new();
        // Requests are written whole: no reason to wait for more bytes.
        connector.set_nodelay(true);
        PlainHttp {
            idle: Mutex::new(IdlePool { by_origin: HashMap::new(), count: 0, keep: keep_idle.max(1) }),
            connector,
            user_agent: HeaderValue::from_static(concat!("monasca-wasm/", env!("CARGO_PKG_VERSION"))),
        }
    }

    /// Send one request to `url` (an `http` URL) and read up to `max_body`
    /// bytes of the answer. The error is for a person (no URL path in it).
    pub async fn send(
        &self,
        method: Method,
        url: &reqwest::Url,
        headers: HeaderMap,
        body: Bytes,
        max_body: usize,
    ) -> Result<Answer, String> {
        let host = url.host_str().ok_or("the URL has no host")?;
        let port = url.port_or_known_default().unwrap_or(80);
        let origin: Origin = (host.to_string(), port);
        let mut request = Request::builder()
            .method(method)
            .uri(path_and_query(url))
            .body(Full::new(body))
            .map_err(|e| format!("bad request: {e}"))?;
        // The URL leaves a default port out, and so does the Host header.
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        *request.headers_mut() = headers;
        let host_header = HeaderValue::from_str(&authority).map_err(|e| e.to_string())?;
        request.headers_mut().entry(HOST).or_insert(host_header);
        request.headers_mut().entry(USER_AGENT).or_insert_with(|| self.user_agent.clone());
        request.headers_mut().entry(ACCEPT).or_insert_with(|| HeaderValue::from_static("*/*"));

        // An idle connection, or a new one; a request an idle connection
        // could not take (closed meanwhile) comes back and goes on another.
        let mut pending = request;
        let (sender, answer) = loop {
            let (mut sender, reused) = match self.checkout(&origin) {
                Some(sender) => (sender, true),
                None => (self.connect(&origin).await?, false),
            };
            if sender.ready().await.is_err() {
                if reused {
                    continue;
                }
                return Err(format!("the connection to {}:{} closed before the request was sent", origin.0, origin.1));
            }
            match sender.try_send_request(pending).await {
                Ok(answer) => break (sender, answer),
                Err(mut e) => match e.take_message() {
                    Some(request) if reused => pending = request,
                    _ => return Err(with_cause(e.into_error())),
                },
            }
        };
        let status = answer.status();
        let mut incoming = answer.into_body();
        let mut body = Vec::new();
        // Read to the end, or to `max_body`; an answer broken off after its
        // status is judged by what arrived (as the general client's path).
        let mut complete = true;
        while let Some(frame) = incoming.frame().await {
            let Ok(frame) = frame else {
                complete = false;
                break;
            };
            if let Ok(chunk) = frame.into_data() {
                body.extend_from_slice(&chunk[..chunk.len().min(max_body - body.len())]);
                if body.len() >= max_body {
                    complete = incoming.is_end_stream();
                    break;
                }
            }
        }
        // A connection whose answer was not read to its end cannot carry
        // the next request. One that was is kept, ready or not yet: the
        // next request waits for it to be ready.
        if complete {
            self.check_in(origin, sender);
        }
        Ok(Answer { status, body })
    }

    /// A new connection to `origin`, its I/O driven by a task of its own.
    async fn connect(&self, origin: &Origin) -> Result<SendRequest<Full<Bytes>>, String> {
        let unreachable = |e: &dyn std::fmt::Display| format!("cannot connect to {}:{}: {e}", origin.0, origin.1);
        let uri = connect_uri(origin).map_err(|e| unreachable(&e))?;
        let io = self.connector.clone().call(uri).await.map_err(|e| unreachable(&e))?;
        let (sender, connection) = http1::handshake(io)
            .await
            .map_err(|e| format!("HTTP handshake with {}:{}: {}", origin.0, origin.1, with_cause(e)))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %with_cause(e), "webhook connection closed");
            }
        });
        Ok(sender)
    }

    fn checkout(&self, origin: &Origin) -> Option<SendRequest<Full<Bytes>>> {
        let mut pool = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let IdlePool { by_origin, count, .. } = &mut *pool;
        let senders = by_origin.get_mut(origin)?;
        let mut found = None;
        while let Some((sender, since)) = senders.pop() {
            *count -= 1;
            if !sender.is_closed() && since.elapsed() < IDLE_FOR {
                found = Some(sender);
                break;
            }
        }
        if senders.is_empty() {
            by_origin.remove(origin);
        }
        found
    }

    fn check_in(&self, origin: Origin, sender: SendRequest<Full<Bytes>>) {
        let mut pool = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let IdlePool { by_origin, count, keep } = &mut *pool;
        if *count >= *keep {
            // Full: make room by closing connections idle too long, else drop this one.
            by_origin.retain(|_, senders| {
                let before = senders.len();
                senders.retain(|(sender, since)| !sender.is_closed() && since.elapsed() < IDLE_FOR);
                *count -= before - senders.len();
                !senders.is_empty()
            });
            if *count >= *keep {
                return;
            }
        }
        by_origin.entry(origin).or_default().push((sender, Instant::now()));
        *count += 1;
    }

    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).count
    }
}

/// The address the connector resolves and connects to.
fn connect_uri(origin: &Origin) -> Result<Uri, hyper::http::uri::InvalidUri> {
    format!("http://{}:{}/", origin.0, origin.1).parse()
}

/// hyper's error with its cause (its own text leaves the cause out).
fn with_cause(e: hyper::Error) -> String {
    match std::error::Error::source(&e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// The request target: the URL's path and query.
fn path_and_query(url: &reqwest::Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::AsyncWriteExt;

    /// What the test server saw: connections opened, requests (head and body).
    #[derive(Default)]
    struct Seen {
        connections: AtomicUsize,
        requests: Mutex<Vec<String>>,
    }

    /// A minimal HTTP/1.1 server answering `answer` to each request; with
    /// `close_after_each`, it closes every connection after its answer
    /// without saying so (as a server's idle timeout does).
    async fn server(answer: &'static str, close_after_each: bool) -> (reqwest::Url, Arc<Seen>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url =
            reqwest::Url::parse(&format!("http://{}/hook?x=1", listener.local_addr().expect("addr"))).expect("url");
        let seen = Arc::new(Seen::default());
        let shared = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let seen = shared.clone();
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    while let Some(request) = crate::notify::test_http::read_request(&mut stream, &mut buffer).await {
                        seen.requests.lock().expect("lock").push(request);
                        let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{answer}", answer.len());
                        if stream.write_all(reply.as_bytes()).await.is_err() || close_after_each {
                            return;
                        }
                    }
                });
            }
        });
        (url, seen)
    }

    fn headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("Idempotency-Key", HeaderValue::from_static("k1"));
        headers
    }

    #[tokio::test]
    async fn requests_reuse_one_connection_and_carry_host_and_agent() {
        let (url, seen) = server("ok", false).await;
        let http = PlainHttp::new(8);
        for i in 0..5 {
            let answer = http
                .send(Method::POST, &url, headers(), Bytes::from(format!("body {i}")), 1024)
                .await
                .expect("answered");
            assert_eq!((answer.status, answer.body.as_slice()), (StatusCode::OK, &b"ok"[..]));
        }
        assert_eq!(seen.connections.load(Ordering::SeqCst), 1, "one connection for requests in turn");
        let requests = seen.requests.lock().expect("lock");
        assert_eq!(requests.len(), 5);
        let first = requests[0].to_ascii_lowercase();
        assert!(first.starts_with("post /hook?x=1 http/1.1"), "{first}");
        let port = url.port().expect("port");
        assert!(first.contains(&format!("host: 127.0.0.1:{port}")), "{first}");
        assert!(first.contains("user-agent: monasca-wasm/"), "{first}");
        assert!(first.contains("idempotency-key: k1"), "{first}");
        assert!(requests[4].ends_with("body 4"), "{}", requests[4]);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_replaced_and_nothing_is_sent_twice() {
        let (url, seen) = server("ok", true).await;
        let http = PlainHttp::new(8);
        for i in 0..4 {
            let answer = http.send(Method::POST, &url, headers(), Bytes::from(format!("n{i}")), 1024).await;
            assert_eq!(answer.expect("answered despite the closed connection").status, StatusCode::OK);
            // Give the server's close time to arrive, as an idle timeout would.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let requests = seen.requests.lock().expect("lock");
        let bodies: Vec<&str> = requests.iter().map(|r| r.rsplit("\n\n").next().unwrap_or_default()).collect();
        assert_eq!(bodies, ["n0", "n1", "n2", "n3"], "each request arrived once");
        assert_eq!(seen.connections.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn an_answer_of_exactly_the_limit_keeps_its_connection_and_headers_given_win() {
        let (url, seen) = server("ok", false).await;
        let http = PlainHttp::new(8);
        let mut given = headers();
        given.insert(HOST, HeaderValue::from_static("receiver.example.org"));
        for _ in 0..2 {
            let answer = http.send(Method::POST, &url, given.clone(), Bytes::new(), 2).await.expect("answered");
            assert_eq!(answer.body, b"ok");
        }
        assert_eq!(seen.connections.load(Ordering::SeqCst), 1, "read to its end: reused");
        let first = seen.requests.lock().expect("lock")[0].to_ascii_lowercase();
        assert!(first.contains("host: receiver.example.org") && first.contains("accept: */*"), "{first}");
    }

    #[test]
    fn ipv6_hosts_are_connected_to_as_addresses() {
        let uri = connect_uri(&("[::1]".to_string(), 8080)).expect("uri");
        assert_eq!((uri.host(), uri.port_u16()), (Some("[::1]"), Some(8080)));
        let url = reqwest::Url::parse("http://[::1]:8080/hook").expect("url");
        assert_eq!(url.host_str(), Some("[::1]"), "the origin keeps the brackets the connector needs");
    }

    #[tokio::test]
    async fn idle_connections_are_capped_in_all() {
        let (first, _) = server("ok", false).await;
        let (second, _) = server("ok", false).await;
        let http = PlainHttp::new(1);
        http.send(Method::POST, &first, headers(), Bytes::new(), 16).await.expect("answered");
        http.send(Method::POST, &second, headers(), Bytes::new(), 16).await.expect("answered");
        assert_eq!(http.idle_count(), 1, "one idle connection kept, across origins");
    }

    #[tokio::test]
    async fn a_long_answer_is_cut_and_its_connection_not_reused() {
        // Longer than what arrives at once: the rest is left unread.
        let long: &'static str = Box::leak("0123456789abcdef".repeat(64 * 1024).into_boxed_str());
        let (url, seen) = server(long, false).await;
        let http = PlainHttp::new(8);
        let answer = http.send(Method::POST, &url, headers(), Bytes::new(), 4).await.expect("answered");
        assert_eq!(answer.body, b"0123");
        http.send(Method::POST, &url, headers(), Bytes::new(), 1024).await.expect("answered");
        assert_eq!(seen.connections.load(Ordering::SeqCst), 2, "the cut answer's connection was dropped");
    }

    #[tokio::test]
    async fn a_closed_port_is_an_error_naming_host_and_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let url = reqwest::Url::parse(&format!("http://127.0.0.1:{port}/secret-path")).expect("url");
        let error =
            PlainHttp::new(1).send(Method::POST, &url, headers(), Bytes::new(), 16).await.err().expect("refused");
        assert!(error.contains(&format!("127.0.0.1:{port}")) && !error.contains("secret"), "{error}");
    }
}
