//! HTTP notifiers: `webhook`, `pagerduty`, `slack` and plain `http`. One
//! request per notification (POST unless the `method` attribute says
//! otherwise), the body as the guest built it, its idempotency key in the
//! `Idempotency-Key` header. Attributes: `content-type` (default
//! `application/json`), `header.<Name>` for more headers, `expect-status`
//! (comma-separated codes; default any 2xx, PagerDuty's 200/201/204) and
//! `expect-body` = `slack-ok` (Slack: the answer must be `ok` or JSON with a
//! true `ok`, the default for `slack`) and `form-fallback` (a form-encoded
//! body posted when the JSON one fails, as monasca-notification's Slack
//! plugin does).

use super::allow::Allowlist;
use super::plain::PlainHttp;
use super::{attribute, Outcome};
use crate::config::NotifiersConfig;
use crate::engine::types::Notification;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The most of an answer's body read (for Slack's check and error messages).
const MAX_ANSWER: usize = 64 * 1024;

/// Slack URLs remembered as taking only forms (monasca-notification's
/// `MAX_CACHE_SIZE`).
const FORM_ONLY_URLS: usize = 100;

/// Destinations remembered as checked URLs (parsing one, with its host's
/// IDNA rules, costs more than the rest of a request's set-up).
const REMEMBERED_URLS: usize = 4096;

/// Sends notifications over HTTP(S): `http` URLs over [`PlainHttp`]'s
/// connections, unless a proxy is configured or the URL holds credentials;
/// the rest through `reqwest`.
pub struct Http {
    client: reqwest::Client,
    plain: Option<PlainHttp>,
    timeout: Duration,
    /// Destinations the allowlist let through, parsed.
    urls: Mutex<HashMap<String, reqwest::Url>>,
    /// Slack URLs that refused JSON and took the form fallback.
    form_only: Mutex<Vec<reqwest::Url>>,
}

impl Http {
    /// A client with the configured timeout, proxy and TLS trust.
    pub fn new(config: &NotifiersConfig) -> Result<Self, String> {
        let timeout = Duration::from_millis(config.timeout_ms);
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect could lead outside the allowlist: not followed.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("monasca-wasm/", env!("CARGO_PKG_VERSION")))
            .no_proxy();
        if let Some(proxy) = &config.proxy {
            let proxy = reqwest::Proxy::all(proxy).map_err(|e| format!("[notifiers] proxy: {e}"))?;
            builder = builder.proxy(proxy);
        }
        if let Some(file) = &config.ca_file {
            let pem = std::fs::read(file).map_err(|e| format!("[notifiers] ca_file {}: {e}", file.display()))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("[notifiers] ca_file {}: {e}", file.display()))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        if config.insecure {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let client = builder.build().map_err(|e| format!("HTTP client: {e}"))?;
        let plain = config.proxy.is_none().then(|| PlainHttp::new(config.max_in_flight));
        Ok(Http { client, plain, timeout, urls: Mutex::new(HashMap::new()), form_only: Mutex::new(Vec::new()) })
    }

    /// [`checked_url`], remembered for destinations that passed (the
    /// allowlist is the configuration's, fixed for this notifier's life).
    fn url(&self, destination: &str, allow: &Allowlist) -> Result<reqwest::Url, Outcome> {
        let mut urls = self.urls.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(url) = urls.get(destination) {
            return Ok(url.clone());
        }
        let url = checked_url(destination, allow)?;
        if urls.len() >= REMEMBERED_URLS {
            urls.clear();
        }
        urls.insert(destination.to_string(), url.clone());
        Ok(url)
    }

    /// Deliver one notification to its URL.
    pub async fn send(&self, n: &Notification, allow: &Allowlist) -> Outcome {
        let url = match self.url(&n.destination, allow) {
            Ok(url) => url,
            Err(refusal) => return refusal,
        };
        let method = attribute(n, "method").unwrap_or("POST");
        let Ok(method) = reqwest::Method::from_bytes(method.as_bytes()) else {
            return Outcome::Refused(format!("`method` attribute {method:?} is not an HTTP method"));
        };
        let headers = match headers(n) {
            Ok(headers) => headers,
            Err(refusal) => return refusal,
        };
        let json = bytes::Bytes::copy_from_slice(&n.body);
        let Some(form) = attribute(n, "form-fallback") else {
            return self.exchange(n, method, &url, headers, json).await;
        };
        // Slack: the original posts JSON, and when that fails the same
        // message as a form; URLs that took only the form are remembered (the
        // first ones: a flood of new URLs does not push them out).
        let form_only = self.lock_form_only().contains(&url);
        let mut first_failure = None;
        if !form_only {
            match self.exchange(n, method.clone(), &url, headers.clone(), json).await {
                Outcome::Failed(reason) => {
                    tracing::info!(channel = %n.channel, reason = %reason, "refused as JSON: trying again as a form");
                    first_failure = Some(reason);
                }
                other => return other,
            }
        }
        let mut headers = headers;
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        let body = bytes::Bytes::copy_from_slice(form.as_bytes());
        match (self.exchange(n, method, &url, headers, body).await, first_failure) {
            (Outcome::Sent, Some(_)) => {
                let mut remembered = self.lock_form_only();
                if remembered.len() < FORM_ONLY_URLS {
                    remembered.push(url);
                }
                Outcome::Sent
            }
            (Outcome::Failed(reason), Some(first)) => Outcome::Failed(format!("{first}; as a form: {reason}")),
            (outcome, _) => outcome,
        }
    }

    fn lock_form_only(&self) -> std::sync::MutexGuard<'_, Vec<reqwest::Url>> {
        self.form_only.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One request and the judgement of its answer.
    async fn exchange(
        &self,
        n: &Notification,
        method: reqwest::Method,
        url: &reqwest::Url,
        headers: HeaderMap,
        body: bytes::Bytes,
    ) -> Outcome {
        // Credentials in the URL (Basic authentication) are the general client's to send.
        let plain = self.plain.as_ref().filter(|_| url.username().is_empty() && url.password().is_none());
        let (status, answer_body) = match (plain, url.scheme()) {
            (Some(plain), "http") => {
                match tokio::time::timeout(self.timeout, plain.send(method, url, headers, body, MAX_ANSWER)).await {
                    Ok(Ok(answer)) => (answer.status, answer.body),
                    Ok(Err(e)) => return Outcome::Failed(format!("{} request failed: {e}", n.channel)),
                    Err(_) => {
                        return Outcome::Failed(format!(
                            "{} request timed out after {} ms",
                            n.channel,
                            self.timeout.as_millis()
                        ))
                    }
                }
            }
            _ => {
                let request = self.client.request(method, url.clone()).headers(headers).body(body);
                match request.send().await {
                    Ok(answer) => (answer.status(), read_capped(answer).await),
                    // Without the URL: webhook URLs often hold a secret (Slack's do).
                    Err(e) => return Outcome::Failed(format!("{} request failed: {}", n.channel, e.without_url())),
                }
            }
        };
        let expected = match attribute(n, "expect-status") {
            Some(list) => list.split(',').any(|c| c.trim() == status.as_str()),
            None if n.channel == "pagerduty" => matches!(status.as_u16(), 200 | 201 | 204),
            None => status.is_success(),
        };
        if !expected {
            return Outcome::Failed(format!("{} answered {status}: {}", n.channel, snippet(&answer_body)));
        }
        let slack_check = attribute(n, "expect-body").or((n.channel == "slack").then_some("slack-ok"));
        if slack_check == Some("slack-ok") && !slack_ok(&answer_body) {
            return Outcome::Failed(format!("{} answered {status} but not ok: {}", n.channel, snippet(&answer_body)));
        }
        Outcome::Sent
    }

    /// The client, for notifiers that make several requests (Jira).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

/// A notification's request headers: its content type (default JSON), its
/// idempotency key, and its `header.<Name>` attributes.
fn headers(n: &Notification) -> Result<HeaderMap, Outcome> {
    let mut headers = HeaderMap::with_capacity(2 + n.attributes.len());
    let content_type = attribute(n, "content-type").unwrap_or("application/json");
    match HeaderValue::from_str(content_type) {
        Ok(value) => headers.insert(CONTENT_TYPE, value),
        Err(_) => return Err(Outcome::Refused(format!("content-type {content_type:?} is not a header value"))),
    };
    if let Ok(key) = HeaderValue::from_str(&n.idempotency_key) {
        headers.insert("Idempotency-Key", key);
    }
    for (key, value) in &n.attributes {
        let Some(name) = key.strip_prefix("header.") else { continue };
        match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            (Ok(name), Ok(value)) => headers.append(name, value),
            _ => return Err(Outcome::Refused(format!("attribute `{key}` is not a valid header"))),
        };
    }
    Ok(headers)
}

/// The destination as a URL the allowlist lets through, or the refusal.
pub fn checked_url(destination: &str, allow: &Allowlist) -> Result<reqwest::Url, Outcome> {
    let url =
        reqwest::Url::parse(destination).map_err(|e| Outcome::Refused(format!("destination is not a URL ({e})")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(Outcome::Refused(format!("destination scheme `{}` is not http or https", url.scheme())));
    }
    let host = url.host_str().unwrap_or_default();
    if !allow.allows(host, url.port_or_known_default()) {
        let port = url.port_or_known_default().map(|p| format!(":{p}")).unwrap_or_default();
        return Err(Outcome::Refused(format!("destination {host}{port} is not in [notifiers] allow")));
    }
    Ok(url)
}

/// Up to [`MAX_ANSWER`] bytes of the answer's body.
pub async fn read_capped(mut answer: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = answer.chunk().await {
        body.extend_from_slice(&chunk[..chunk.len().min(MAX_ANSWER - body.len())]);
        if body.len() >= MAX_ANSWER {
            break;
        }
    }
    body
}

/// The start of an answer, for an error message.
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    text.trim().replace('\n', " ")
}

/// Slack's success: `ok` as text, or a JSON object whose `ok` is true.
fn slack_ok(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    if text.trim() == "ok" {
        return true;
    }
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("ok").map(|ok| ok.as_bool().unwrap_or(!ok.is_null())))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::types::Origin;
    use std::sync::Arc;
    use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

    /// Test-only TLS material (see tests/fixtures/tls/README.md).
    const CA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/tls/ca.pem");
    const SERVER_CERT: &[u8] = include_bytes!("../../../tests/fixtures/tls/server.pem");
    const SERVER_KEY: &[u8] = include_bytes!("../../../tests/fixtures/tls/server.key");

    fn webhook(url: &str) -> Notification {
        Notification {
            channel: "webhook".to_string(),
            destination: url.to_string(),
            attributes: vec![],
            body: br#"{"alarm_id": "a1"}"#.to_vec(),
            idempotency_key: "a1:1:m1".to_string(),
            origin: Origin { partition: 0, offset: 0 },
            on_sent: vec![],
            on_failed: vec![],
        }
    }

    /// Read one HTTP/1.1 request and answer 200 with `ok`; the request
    /// (`head\n\nbody`, empty when none came).
    async fn answer_one<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> String {
        let request = crate::notify::test_http::read_request(stream, &mut Vec::new()).await.unwrap_or_default();
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").await;
        let _ = stream.flush().await;
        request
    }

    /// An HTTPS server with the test certificate for `localhost`, answering
    /// every request 200; the requests it saw.
    async fn https_server() -> (u16, Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(SERVER_CERT).collect::<Result<_, _>>().expect("certificate");
        let key = PrivateKeyDer::from_pem_slice(SERVER_KEY).expect("key");
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocols")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let requests = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, requests) = (acceptor.clone(), requests.clone());
                tokio::spawn(async move {
                    // A client that refuses the certificate ends the handshake: nothing to answer.
                    if let Ok(mut tls) = acceptor.accept(stream).await {
                        let request = answer_one(&mut tls).await;
                        requests.lock().expect("lock").push(request);
                    }
                });
            }
        });
        (port, seen)
    }

    fn config(change: impl FnOnce(&mut NotifiersConfig)) -> NotifiersConfig {
        let mut config = NotifiersConfig { timeout_ms: 3_000, ..NotifiersConfig::default() };
        change(&mut config);
        config
    }

    #[tokio::test]
    async fn https_destinations_are_verified_against_the_trusted_authorities() {
        let (port, seen) = https_server().await;
        let url = format!("https://localhost:{port}/hook");
        let allow = Allowlist::new(None).expect("allow");

        // Not trusted by default: refused by the client, nothing delivered.
        let untrusted = Http::new(&config(|_| {})).expect("client");
        match untrusted.send(&webhook(&url), &allow).await {
            Outcome::Failed(reason) => assert!(reason.contains("webhook request failed"), "{reason}"),
            other => panic!("an unknown authority must fail the delivery: {other:?}"),
        }
        // Trusted through `ca_file`: delivered, with its headers.
        let trusting = Http::new(&config(|c| c.ca_file = Some(CA.into()))).expect("client");
        assert_eq!(trusting.send(&webhook(&url), &allow).await, Outcome::Sent);
        // `insecure`: any certificate.
        let insecure = Http::new(&config(|c| c.insecure = true)).expect("client");
        assert_eq!(insecure.send(&webhook(&url), &allow).await, Outcome::Sent);

        let requests = seen.lock().expect("lock").clone();
        assert_eq!(requests.len(), 2, "only the trusting clients' requests arrived: {requests:?}");
        let first = requests[0].to_ascii_lowercase();
        assert!(first.starts_with("post /hook http/1.1"), "{first}");
        assert!(first.contains("idempotency-key: a1:1:m1") && first.ends_with(r#"{"alarm_id": "a1"}"#), "{first}");
    }

    #[tokio::test]
    async fn with_a_proxy_every_request_goes_through_it() {
        // The proxy answers itself: the request line shows where it was going.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let proxy = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let requests = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let request = answer_one(&mut stream).await;
                requests.lock().expect("lock").push(request);
            }
        });
        let http = Http::new(&config(|c| c.proxy = Some(proxy))).expect("client");
        let allow = Allowlist::new(Some(&["receiver.example.org".to_string()])).expect("allow");
        let outcome = http.send(&webhook("http://receiver.example.org:8080/hook?x=1"), &allow).await;
        assert_eq!(outcome, Outcome::Sent);
        let requests = seen.lock().expect("lock").clone();
        assert_eq!(requests.len(), 1);
        let line = requests[0].lines().next().unwrap_or_default().to_string();
        assert_eq!(line, "POST http://receiver.example.org:8080/hook?x=1 HTTP/1.1", "absolute form to the proxy");
    }

    /// A Slack-like receiver: `{"ok": false}` to JSON, `ok` to a form (or
    /// to nothing when `forms` is false); the requests it saw.
    async fn slack_receiver(forms: bool) -> (u16, Arc<std::sync::Mutex<Vec<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let requests = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let requests = requests.clone();
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    while let Some(request) = crate::notify::test_http::read_request(&mut stream, &mut buffer).await {
                        let form = request.to_ascii_lowercase().contains("application/x-www-form-urlencoded");
                        let body = if form && forms { "ok" } else { r#"{"ok": false, "error": "invalid_payload"}"# };
                        requests.lock().expect("lock").push(request);
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if stream.write_all(answer.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        (port, seen)
    }

    fn slack(url: &str) -> Notification {
        Notification {
            channel: "slack".to_string(),
            attributes: vec![("form-fallback".to_string(), "text=hello+there".to_string())],
            body: br#"{"text": "hello there"}"#.to_vec(),
            ..webhook(url)
        }
    }

    #[tokio::test]
    async fn slack_refusing_json_gets_the_form_and_its_url_is_remembered() {
        let (port, seen) = slack_receiver(true).await;
        let http = Http::new(&config(|_| {})).expect("client");
        let allow = Allowlist::new(None).expect("allow");
        let url = format!("http://127.0.0.1:{port}/services/x");
        assert_eq!(http.send(&slack(&url), &allow).await, Outcome::Sent);
        assert_eq!(http.send(&slack(&url), &allow).await, Outcome::Sent);
        let requests = seen.lock().expect("lock").clone();
        assert_eq!(requests.len(), 3, "JSON, form, then the form alone: {requests:?}");
        assert!(requests[0].ends_with(r#"{"text": "hello there"}"#), "{}", requests[0]);
        for form in &requests[1..] {
            assert!(form.to_ascii_lowercase().contains("content-type: application/x-www-form-urlencoded"), "{form}");
            assert!(form.ends_with("text=hello+there"), "{form}");
        }
    }

    #[tokio::test]
    async fn slack_refusing_both_fails_with_both_reasons() {
        let (port, seen) = slack_receiver(false).await;
        let http = Http::new(&config(|_| {})).expect("client");
        let allow = Allowlist::new(None).expect("allow");
        let url = format!("http://127.0.0.1:{port}/services/x");
        match http.send(&slack(&url), &allow).await {
            Outcome::Failed(reason) => {
                assert!(reason.contains("not ok") && reason.contains("; as a form: "), "{reason}")
            }
            other => panic!("both refused: {other:?}"),
        }
        assert_eq!(seen.lock().expect("lock").len(), 2);
        // A webhook has no fallback: one request.
        let (port, seen) = slack_receiver(true).await;
        let hook = Notification { channel: "slack".into(), ..webhook(&format!("http://127.0.0.1:{port}/h")) };
        assert!(matches!(http.send(&hook, &allow).await, Outcome::Failed(_)));
        assert_eq!(seen.lock().expect("lock").len(), 1);
    }

    #[test]
    fn slack_answers() {
        assert!(slack_ok(b"ok"));
        assert!(slack_ok(br#"{"ok": true}"#));
        assert!(!slack_ok(br#"{"ok": false, "error": "invalid_token"}"#));
        assert!(!slack_ok(b"invalid_payload"));
    }

    #[test]
    fn urls_are_checked_against_the_allowlist() {
        let allow = Allowlist::new(Some(&["127.0.0.1".to_string()])).expect("allow");
        assert!(checked_url("http://127.0.0.1:9/x", &allow).is_ok());
        let refused = |d: &str| match checked_url(d, &allow) {
            Err(Outcome::Refused(reason)) => reason,
            other => panic!("{d}: {other:?}"),
        };
        assert!(refused("http://10.0.0.1/x").contains("10.0.0.1:80 is not in [notifiers] allow"));
        assert!(refused("ftp://127.0.0.1/x").contains("scheme"));
        assert!(refused("not a url").contains("not a URL"));
    }
}
