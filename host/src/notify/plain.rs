//! Plain-HTTP requests (`http://`, no proxy) over hyper's HTTP/1.1
//! connections, kept open and reused per destination host and port.
//!
//! This is the webhook path of a busy host: it skips the general client's
//! layers (redirect and retry policies, URL re-parsing, boxed futures), which
//! cost as much per request as the connection's own work. Nothing is
//! followed or retried here: an answer is what it is. A request is re-sent
//! on a fresh connection only when an idle connection turned out to be
//! closed before the request was written (the server timed it out), which
//! cannot deliver anything twice.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderMap, HeaderValue, HOST, USER_AGENT};
use hyper::{Method, Request, StatusCode};
use std::collections::HashMap;
use std::sync::Mutex;

/// A destination's host and port: connections are kept per origin.
type Origin = (String, u16);

/// An answer: its status and the start of its body.
pub struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

/// Idle connections by origin.
pub struct PlainHttp {
    idle: Mutex<HashMap<Origin, Vec<SendRequest<Full<Bytes>>>>>,
    /// Idle connections kept per origin (the host's deliveries in flight).
    keep_idle: usize,
    user_agent: HeaderValue,
}

impl PlainHttp {
    /// Keep up to `keep_idle` idle connections per origin.
    pub fn new(keep_idle: usize) -> Self {
        PlainHttp {
            idle: Mutex::new(HashMap::new()),
            keep_idle: keep_idle.max(1),
            user_agent: HeaderValue::from_static(concat!("monasca-wasm/", env!("CARGO_PKG_VERSION"))),
        }
    }

    /// Send one request to `url` (an `http` URL) and read up to `max_body`
    /// bytes of the answer. The error is for a person (no URL in it).
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
        let host_header = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        *request.headers_mut() = headers;
        request.headers_mut().insert(HOST, HeaderValue::from_str(&host_header).map_err(|e| e.to_string())?);
        request.headers_mut().entry(USER_AGENT).or_insert_with(|| self.user_agent.clone());

        // An idle connection, or a new one; a request an idle connection
        // could not take (closed meanwhile) comes back and goes on a new one.
        let mut pending = request;
        let (sender, answer) = loop {
            let (mut sender, reused) = match self.checkout(&origin) {
                Some(sender) => (sender, true),
                None => (connect(&origin).await?, false),
            };
            if sender.ready().await.is_err() {
                if reused {
                    continue;
                }
                return Err("the connection closed before the request was sent".to_string());
            }
            match sender.try_send_request(pending).await {
                Ok(answer) => break (sender, answer),
                Err(mut e) => match e.take_message() {
                    Some(request) if reused => pending = request,
                    _ => return Err(e.into_error().to_string()),
                },
            }
        };
        let status = answer.status();
        let mut incoming = answer.into_body();
        let mut body = Vec::new();
        let mut complete = true;
        while let Some(frame) = incoming.frame().await {
            let frame = frame.map_err(|e| format!("reading the answer: {e}"))?;
            if let Ok(chunk) = frame.into_data() {
                body.extend_from_slice(&chunk[..chunk.len().min(max_body - body.len())]);
                if body.len() >= max_body {
                    complete = false;
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

    fn checkout(&self, origin: &Origin) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let senders = idle.get_mut(origin)?;
        while let Some(sender) = senders.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    fn check_in(&self, origin: Origin, sender: SendRequest<Full<Bytes>>) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let senders = idle.entry(origin).or_default();
        if senders.len() < self.keep_idle {
            senders.push(sender);
        }
    }
}

/// A new connection to `origin`, its I/O driven by a task of its own.
async fn connect(origin: &Origin) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect((origin.0.as_str(), origin.1))
        .await
        .map_err(|e| format!("cannot connect to {}:{}: {e}", origin.0, origin.1))?;
    // Requests are written whole: no reason to wait for more bytes.
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {}:{}: {e}", origin.0, origin.1))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "webhook connection closed");
        }
    });
    Ok(sender)
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
                    loop {
                        let mut chunk = [0u8; 4096];
                        let Ok(n) = stream.read(&mut chunk).await else { return };
                        if n == 0 {
                            return;
                        }
                        buffer.extend_from_slice(&chunk[..n]);
                        let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                        let head = String::from_utf8_lossy(&buffer[..end]).to_string();
                        let length = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                            })
                            .and_then(|v| v.parse::<usize>().ok())
                            .unwrap_or(0);
                        if buffer.len() < end + 4 + length {
                            continue;
                        }
                        let body = String::from_utf8_lossy(&buffer[end + 4..end + 4 + length]).to_string();
                        buffer.drain(..end + 4 + length);
                        seen.requests.lock().expect("lock").push(format!("{head}\n\n{body}"));
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
    async fn a_long_answer_is_cut_and_its_connection_not_reused() {
        let (url, seen) = server("0123456789abcdef", false).await;
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
