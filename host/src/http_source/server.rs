//! The HTTP side of an HTTP pipeline: connections (at most
//! `max_connections`, headers within `header_timeout_ms`), authentication,
//! the body (at most `max_body_bytes`, within `body_timeout_ms`), the queue
//! to the lanes, and the answer. `GET /healthcheck` is answered by the host
//! without authentication; every other request goes to the guest.

use super::auth::Checked;
use super::{Answer, Pending, Shared, TOPIC};
use crate::engine::types::{Header, Message};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http_body_util::{BodyExt, Limited};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use monasca_guest_sdk::http as names;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinSet;

#[derive(Clone)]
struct AppState {
    shared: Arc<Shared>,
    queue: mpsc::Sender<Pending>,
    topic: Arc<str>,
}

/// Request headers never handed to the guest: credentials, and the identity
/// headers of keystonemiddleware, which only the host may set (it passes the
/// identity as `:project-id`, `:roles`, `:user-id`).
const STRIPPED: &[&str] = &[
    "x-auth-token",
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-subject-token",
    "x-service-token",
    "x-roles",
    "x-project-id",
    "x-tenant-id",
    "x-tenant",
    "x-user-id",
    "x-identity-status",
    "x-service-roles",
];

/// Serve until `shutdown`; then stop accepting and give open connections
/// time to finish their requests.
pub(super) async fn serve(
    shared: Arc<Shared>,
    listener: TcpListener,
    queue: mpsc::Sender<Pending>,
    mut shutdown: watch::Receiver<bool>,
) {
    let state = AppState { shared: shared.clone(), queue, topic: Arc::from(TOPIC) };
    let router =
        Router::new().route("/healthcheck", get(healthcheck).head(healthcheck_head)).fallback(handle).with_state(state);
    let limit = Arc::new(Semaphore::new(shared.config.max_connections));
    let header_timeout = Duration::from_millis(shared.config.header_timeout_ms);
    let mut connections = JoinSet::new();
    while !*shutdown.borrow() {
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => permit,
            _ = shutdown.changed() => break,
        };
        let Ok(permit) = permit else { break };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(pipeline = %shared.name, error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let mut stop = shutdown.clone();
        connections.spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(permit);
        });
        while connections.try_join_next().is_some() {}
    }
    drop(router);
    let grace = Duration::from_millis(shared.config.ack_timeout_ms + shared.config.body_timeout_ms);
    let _ = tokio::time::timeout(grace, async { while connections.join_next().await.is_some() {} }).await;
    connections.abort_all();
}

/// How the originals' healthchecks tell caches not to keep the answer.
const NO_CACHE: (&str, &[u8]) = ("cache-control", b"must-revalidate, no-cache, no-store");

/// `HEAD /healthcheck`: 204, as the originals answer it.
async fn healthcheck_head() -> Response {
    response(Answer { status: 204, headers: vec![(NO_CACHE.0.into(), NO_CACHE.1.to_vec())], body: Default::default() })
}

/// `GET /healthcheck`: 200 `{"kafka": "OK"}` when the broker answers a
/// metadata request within two seconds, 503 with the error otherwise.
async fn healthcheck(State(state): State<AppState>) -> Response {
    let producer = state.shared.executor.producer.clone();
    let checked = tokio::task::spawn_blocking(move || {
        rdkafka::producer::Producer::client(&producer)
            .fetch_metadata(None, Duration::from_secs(2))
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await;
    let (status, kafka) = match checked {
        Ok(Ok(())) => (200, "OK".to_string()),
        Ok(Err(e)) => (503, e),
        Err(e) => (503, e.to_string()),
    };
    let mut body = String::from("{\"kafka\": ");
    monasca_guest_sdk::pyjson::write_string(&mut body, &kafka);
    body.push('}');
    let headers =
        vec![("content-type".to_string(), b"application/json".to_vec()), (NO_CACHE.0.into(), NO_CACHE.1.to_vec())];
    response(Answer { status, headers, body: body.into() })
}

/// Every other request: authenticate, read the body, queue, await the answer.
async fn handle(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let arrived = Instant::now();
    let shared = &state.shared;
    let answered = |answer: Answer| {
        shared.stats.http_answered(answer.status, arrived.elapsed());
        response(answer)
    };
    let (parts, body) = request.into_parts();
    let token = parts.headers.get("x-auth-token").map(HeaderValue::as_bytes);
    let identity = match shared.auth.check(token).await {
        Checked::Known(identity) => identity,
        Checked::Refused => return answered(Answer::unauthorized()),
        Checked::Unavailable(reason) => {
            tracing::warn!(pipeline = %shared.name, %reason, "cannot authenticate a request now");
            return answered(Answer::unavailable(shared.config.retry_after_s, "authentication is unavailable"));
        }
    };
    let max = shared.config.max_body_bytes;
    let too_large = || Answer::error(413, "Request Entity Too Large", &format!("the body is over {max} bytes"));
    if content_length(&parts.headers).is_some_and(|n| n > max as u64) {
        return answered(too_large());
    }
    let timeout = Duration::from_millis(shared.config.body_timeout_ms);
    let body = match tokio::time::timeout(timeout, Limited::new(body, max).collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return answered(too_large()),
        Ok(Err(_)) => return answered(Answer::error(400, "Bad Request", "the body could not be read")),
        Err(_) => return answered(Answer::error(408, "Request Timeout", "the body took too long to arrive")),
    };
    let mut headers =
        vec![header(names::METHOD, parts.method.as_str().as_bytes()), header(names::PATH, parts.uri.path().as_bytes())];
    if let Some(query) = parts.uri.query() {
        headers.push(header(names::QUERY, query.as_bytes()));
    }
    headers.push(header(names::PROJECT_ID, identity.project_id.as_bytes()));
    headers.push(header(names::ROLES, identity.roles.join(",").as_bytes()));
    if let Some(user) = &identity.user_id {
        headers.push(header(names::USER_ID, user.as_bytes()));
    }
    for (name, value) in &parts.headers {
        if !STRIPPED.contains(&name.as_str()) {
            headers.push(header(name.as_str(), value.as_bytes()));
        }
    }
    let message = Message {
        topic: state.topic.clone(),
        partition: 0,
        offset: 0,
        timestamp_ms: Some(crate::engine::types::now_ms()),
        key: None,
        value: body,
        headers,
        tombstone: false,
    };
    let (tx, rx) = oneshot::channel();
    if state.queue.try_send(Pending { message, answer: tx, arrived }).is_err() {
        let retry = shared.config.retry_after_s;
        return answered(Answer::unavailable(retry, "too many requests are waiting; try again later"));
    }
    match rx.await {
        // Counted where it was made.
        Ok(answer) => response(answer),
        Err(_) => answered(Answer::error(500, "Internal Server Error", "the request was not answered")),
    }
}

fn header(key: &str, value: &[u8]) -> Header {
    Header { key: key.to_string(), value: value.to_vec() }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get("content-length")?.to_str().ok()?.trim().parse().ok()
}

/// `answer` as an HTTP response (its headers were checked when the guest
/// gave them; one that does not convert is left out).
fn response(answer: Answer) -> Response {
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) =
            (axum::http::HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(&value))
        {
            headers.append(name, value);
        }
    }
    response
}
