//! The InfluxDB 1.x HTTP API as the sink uses it: `POST /write` (line
//! protocol, `precision=ms`, optionally gzip) and `POST /query` for
//! `CREATE DATABASE` / `CREATE RETENTION POLICY`, with each answer sorted into
//! what the sink should do next.

use crate::config::InfluxDbConfig;
use std::io::Write as _;
use std::time::Duration;

/// What a `/write` answer means for the sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 204: every point is stored.
    Stored,
    /// 404 "database not found": create it, then write again.
    NoDatabase,
    /// 400 (and other 4xx about the data, e.g. 413): at least one point is
    /// refused; InfluxDB stored the others of a "partial write".
    Refused(String),
    /// 5xx, timeout, connection error: try again later.
    Retry(String),
    /// 401/403: retrying will not help.
    Fatal(String),
}

/// An HTTP client for one InfluxDB server.
pub struct Client {
    http: reqwest::Client,
    base: String,
    user: Option<String>,
    password: Option<String>,
    gzip: bool,
}

impl Client {
    /// A client for the configured server (credentials from the environment
    /// win over the file).
    pub fn new(config: &InfluxDbConfig) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .connect_timeout(Duration::from_millis(config.timeout_ms.min(5_000)))
            .pool_max_idle_per_host(config.max_in_flight.max(1));
        if let Some(file) = &config.ca_file {
            let pem = std::fs::read(file).map_err(|e| format!("ca_file {}: {e}", file.display()))?;
            let certificates =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| format!("ca_file {}: {e}", file.display()))?;
            if certificates.is_empty() {
                return Err(format!("ca_file {}: no PEM certificate in it", file.display()));
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        if config.tls_insecure {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder.build().map_err(|e| format!("HTTP client: {e}"))?;
        let user = std::env::var("MONASCA_WASM_INFLUXDB_USER").ok().or_else(|| config.user.clone());
        let password =
            std::env::var("MONASCA_WASM_INFLUXDB_PASSWORD").ok().or_else(|| config.password.clone().map(|s| s.0));
        Ok(Client { http, base: config.url.trim_end_matches('/').to_string(), user, password, gzip: config.gzip })
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn credentials(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.user {
            Some(user) => request.basic_auth(user, self.password.as_deref()),
            None => request,
        }
    }

    /// Write `body` (line protocol, `\n`-separated) to `database`.
    pub async fn write(&self, database: &str, body: &[u8]) -> Answer {
        let mut request = self
            .http
            .post(format!("{}/write", self.base))
            .query(&[("db", database), ("precision", "ms")])
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8");
        let body = if self.gzip {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::fast());
            match encoder.write_all(body).and_then(|()| encoder.finish()) {
                Ok(compressed) => {
                    request = request.header(reqwest::header::CONTENT_ENCODING, "gzip");
                    compressed
                }
                Err(e) => return Answer::Retry(format!("cannot compress the request: {e}")),
            }
        } else {
            body.to_vec()
        };
        let response = match self.credentials(request).body(body).send().await {
            Ok(response) => response,
            Err(e) => return Answer::Retry(describe(&e)),
        };
        let status = response.status();
        if status.is_success() {
            return Answer::Stored;
        }
        let text = response.text().await.unwrap_or_default();
        let error = error_text(&text);
        match status.as_u16() {
            404 if error.contains("database not found") => Answer::NoDatabase,
            401 | 403 => Answer::Fatal(format!("InfluxDB refused the credentials ({status}): {error}")),
            400..=499 => Answer::Refused(format!("InfluxDB {status}: {error}")),
            _ => Answer::Retry(format!("InfluxDB {status}: {error}")),
        }
    }

    /// Run one InfluxQL statement that changes the schema.
    pub async fn query(&self, statement: &str) -> Result<(), String> {
        let request = self.http.post(format!("{}/query", self.base)).form(&[("q", statement)]);
        let response = self.credentials(request).send().await.map_err(|e| describe(&e))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        // /query answers 200 with {"results":[{"error": ...}]} for a bad statement.
        let error = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.pointer("/results/0/error").or_else(|| v.get("error")).cloned());
        match (status.is_success(), error) {
            (true, None) => Ok(()),
            (_, Some(error)) => Err(format!("{statement}: {error}")),
            (false, None) => Err(format!("{statement}: InfluxDB {status}")),
        }
    }
}

/// The `error` of InfluxDB's JSON error body, else the body itself.
fn error_text(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| body.trim().chars().take(500).collect())
}

/// A transport error in a few words (no URL with credentials in it).
pub(crate) fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

/// An InfluxQL identifier in double quotes.
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_and_escaped() {
        assert_eq!(quote_identifier("mon_t1"), "\"mon_t1\"");
        assert_eq!(quote_identifier("a\"; DROP DATABASE x; \"\\"), "\"a\\\"; DROP DATABASE x; \\\"\\\\\"");
    }

    /// A sink configuration for `url`, as a `[sinks.x]` table would give it.
    fn config(url: &str, extra: &str) -> InfluxDbConfig {
        toml::from_str(&format!("url = \"{url}\"\n{extra}")).expect("sink config")
    }

    /// An HTTPS server with the test certificate for `localhost` that
    /// answers every request 204; its port.
    async fn https_influx() -> u16 {
        use tokio::io::AsyncWriteExt;
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(include_bytes!("../../../../tests/fixtures/tls/server.pem"))
                .collect::<Result<_, _>>()
                .expect("certificate");
        let key =
            PrivateKeyDer::from_pem_slice(include_bytes!("../../../../tests/fixtures/tls/server.key")).expect("key");
        let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let server = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocols")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(server));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(stream).await {
                        let _ = crate::notify::test_http::read_request(&mut tls, &mut Vec::new()).await;
                        let _ = tls.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n").await;
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn https_is_checked_against_ca_file_or_not_at_all_with_tls_insecure() {
        let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/tls/ca.pem");
        let url = format!("https://localhost:{}", https_influx().await);
        let stored = |config: InfluxDbConfig| async move {
            matches!(Client::new(&config).expect("client").write("mon", b"m v=1 1").await, Answer::Stored)
        };
        assert!(!stored(config(&url, "")).await, "an unknown authority is refused");
        assert!(stored(config(&url, &format!("ca_file = \"{ca}\""))).await, "trusted through ca_file");
        assert!(stored(config(&url, "tls_insecure = true")).await, "any certificate with tls_insecure");
    }

    #[test]
    fn a_ca_file_that_cannot_be_read_or_holds_no_certificate_is_an_error() {
        let missing = Client::new(&config("https://h", "ca_file = \"/nonexistent/ca.pem\"")).err().expect("error");
        assert!(missing.contains("/nonexistent/ca.pem"), "{missing}");
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let config = config("https://h", &format!("ca_file = \"{}\"", empty.display()));
        let error = Client::new(&config).err().expect("error");
        assert!(error.contains("no PEM certificate"), "{error}");
    }

    #[test]
    fn error_bodies_are_read() {
        assert_eq!(error_text("{\"error\":\"database not found: \\\"x\\\"\"}"), "database not found: \"x\"");
        assert_eq!(error_text("  plain  "), "plain");
    }
}
