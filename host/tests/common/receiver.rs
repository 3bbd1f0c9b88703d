//! The tests' own HTTP receivers: record every request (path, query,
//! headers, body) and answer as the test asks: succeed, fail the first N
//! attempts of each `Idempotency-Key`, or always fail. Under `/rest/api/2/`
//! they play a minimal Jira (search finds nothing, create answers `MON-1`,
//! comments are accepted). Answers are `{"ok": true}` so that Slack's check
//! passes.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Path.
    pub path: String,
    /// Query string, if any.
    pub query: Option<String>,
    /// Headers, names lower case.
    pub headers: HashMap<String, String>,
    /// Body.
    pub body: Vec<u8>,
    /// The answer's status.
    pub status: u16,
}

impl Received {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `Idempotency-Key` header.
    pub fn key(&self) -> Option<&str> {
        self.headers.get("idempotency-key").map(String::as_str)
    }
}

/// How a receiver answers.
#[derive(Debug, Clone, Copy, Default)]
pub enum Behaviour {
    /// 200 every time.
    #[default]
    Succeed,
    /// 503 for the first N attempts of each idempotency key, then 200.
    FailFirst(usize),
    /// 500 every time.
    AlwaysFail,
}

#[derive(Default)]
struct Shared {
    behaviour: Behaviour,
    received: Mutex<Vec<Received>>,
    attempts: Mutex<HashMap<String, usize>>,
}

/// A running receiver.
pub struct Receiver {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    shared: Arc<Shared>,
}

impl Receiver {
    /// Start one on a free loopback port (on the current tokio runtime).
    pub async fn start(behaviour: Behaviour) -> Self {
        let shared = Arc::new(Shared { behaviour, ..Shared::default() });
        let app = axum::Router::new().fallback(answer).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("receiver binds");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, shared }
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The requests answered with success.
    pub fn delivered(&self) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.status < 300).collect()
    }
}

async fn answer(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 16 * 1024 * 1024).await.unwrap_or_default();
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect::<HashMap<_, _>>();
    let path = parts.uri.path().to_string();
    let key = headers.get("idempotency-key").cloned().unwrap_or_default();
    let attempt = {
        let mut attempts = shared.attempts.lock().unwrap_or_else(|p| p.into_inner());
        let n = attempts.entry(format!("{path} {key}")).or_default();
        *n += 1;
        *n
    };
    let (status, reply) = if path.starts_with("/rest/api/2/") {
        jira(&path)
    } else {
        match shared.behaviour {
            Behaviour::Succeed => (StatusCode::OK, r#"{"ok": true}"#.to_string()),
            Behaviour::FailFirst(n) if attempt <= n => (StatusCode::SERVICE_UNAVAILABLE, "try later".to_string()),
            Behaviour::FailFirst(_) => (StatusCode::OK, r#"{"ok": true}"#.to_string()),
            Behaviour::AlwaysFail => (StatusCode::INTERNAL_SERVER_ERROR, "broken".to_string()),
        }
    };
    shared.received.lock().unwrap_or_else(|p| p.into_inner()).push(Received {
        path,
        query: parts.uri.query().map(str::to_string),
        headers,
        body: body.to_vec(),
        status: status.as_u16(),
    });
    (status, [("content-type", "application/json")], reply).into_response()
}

/// A minimal Jira: no issue exists, creating one gives `MON-1`.
fn jira(path: &str) -> (StatusCode, String) {
    if path.ends_with("/search") {
        (StatusCode::OK, r#"{"issues": []}"#.to_string())
    } else if path.ends_with("/comment") {
        (StatusCode::CREATED, r#"{"id": "1"}"#.to_string())
    } else if path.ends_with("/issue") {
        (StatusCode::CREATED, r#"{"key": "MON-1"}"#.to_string())
    } else {
        (StatusCode::NOT_FOUND, "{}".to_string())
    }
}
