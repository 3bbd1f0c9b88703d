//! The admin API's mutating calls: deploy a module to a pipeline, roll it
//! back. Both need the bearer token; errors come back as JSON
//! `{"error": "..."}` with a status that says whose fault it is (400 a bad
//! module, 422 a module that does not start or fails its canary, 409 nothing
//! to roll back to, 401/403 no or wrong token, 404 no such pipeline).

use super::Registry;
use crate::deploy::{DeployError, Deployed};
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use std::sync::Arc;

/// `?name=` of a raw module upload.
#[derive(Debug, serde::Deserialize)]
pub struct ModuleQuery {
    name: Option<String>,
}

/// The JSON form of a deployment.
#[derive(Debug, serde::Deserialize)]
struct JsonDeployment {
    /// Module name (default `module`).
    name: Option<String>,
    /// The component, base64.
    module: String,
    /// A canary fixture: one message value per line.
    canary: Option<String>,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    Refusal(status, message.into()).into_response()
}

/// A refused call: its status and why.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The answer to an unknown route, as JSON like every admin error.
pub fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such endpoint")
}

/// The token of an `Authorization: Bearer <token>` header (the scheme's
/// case does not matter, RFC 9110).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Check the bearer token (compared in constant time).
fn authorize(registry: &Registry, headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(token) = registry.token.as_deref() else {
        return Err(Refusal(
            StatusCode::FORBIDDEN,
            "deployment is disabled: no admin token is configured ([admin] token or MONASCA_WASM_ADMIN_TOKEN)".into(),
        ));
    };
    let given = bearer(headers);
    let matches = given.is_some_and(|given| {
        given.len() == token.len() && given.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    });
    if matches {
        Ok(())
    } else {
        Err(Refusal(StatusCode::UNAUTHORIZED, "a valid `Authorization: Bearer <token>` header is required".into()))
    }
}

fn deployer(registry: &Registry, name: &str) -> Result<Arc<crate::deploy::Deployer>, Refusal> {
    let view =
        registry.pipeline(name).ok_or_else(|| Refusal(StatusCode::NOT_FOUND, format!("no pipeline named `{name}`")))?;
    view.deployer
        .clone()
        .ok_or_else(|| Refusal(StatusCode::CONFLICT, format!("pipeline `{name}` does not take deployments")))
}

fn status_of(e: &DeployError) -> StatusCode {
    match e {
        DeployError::Invalid(_) => StatusCode::BAD_REQUEST,
        DeployError::Init(_) | DeployError::Canary(_) | DeployError::Restore(_) | DeployError::KeyedMismatch { .. } => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        DeployError::NoPrevious(_) | DeployError::PreviousFailed { .. } => StatusCode::CONFLICT,
        DeployError::Store(_) | DeployError::Task(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn outcome(pipeline: &str, result: Result<Deployed, DeployError>) -> Response {
    match result {
        Ok(d) => Json(serde_json::json!({
            "pipeline": pipeline,
            "module": { "name": d.current.name, "digest": format!("sha256:{}", d.current.digest) },
            "previous_module": d.previous.map(|m| serde_json::json!({ "name": m.name, "digest": format!("sha256:{}", m.digest) })),
        }))
        .into_response(),
        Err(e) => error(status_of(&e), e.to_string()),
    }
}

/// `PUT /v1/pipelines/{name}/module`. The token is checked before a byte
/// of the body is read; the body is then read up to the upload limit.
pub async fn put_module(
    State(registry): State<Arc<Registry>>,
    Path(pipeline): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(refused) = authorize(&registry, &headers) {
        discard_small(body, &headers, upload_limit(&registry)).await;
        return refused.into_response();
    }
    let deployer = match deployer(&registry, &pipeline) {
        Ok(d) => d,
        Err(refused) => return refused.into_response(),
    };
    let limit = upload_limit(&registry);
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(limit);
    }
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(body) => body,
        Err(_) => return too_large(limit),
    };
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let (name, bytes, canary) = if json {
        let request: JsonDeployment = match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("not a deployment request: {e}")),
        };
        let bytes = match base64::engine::general_purpose::STANDARD.decode(request.module.trim()) {
            Ok(b) => b,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("`module` is not base64: {e}")),
        };
        (request.name, bytes, request.canary.map(String::into_bytes))
    } else {
        (query_name(query.as_deref()), body.to_vec(), None)
    };
    let name = name.filter(|n| !n.is_empty()).unwrap_or_else(|| "module".to_string());
    outcome(&pipeline, deployer.deploy(&name, bytes, canary).await)
}

/// The upload limit in force.
fn upload_limit(registry: &Registry) -> usize {
    match registry.max_upload_bytes {
        0 => super::DEFAULT_MAX_UPLOAD_BYTES,
        n => n,
    }
}

/// Read and drop a refused request's body, never holding it, when its
/// declared length is within the upload limit and it comes within 5 s: an
/// ordinary client that sent its upload with the wrong token then reads the
/// 401 instead of a broken pipe. A larger, unannounced or slower body is not
/// waited for: the answer goes at once and the connection closes.
async fn discard_small(body: Body, headers: &HeaderMap, limit: usize) {
    use http_body_util::BodyExt;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_none_or(|n| n > limit as u64) {
        return;
    }
    let mut body = body;
    let mut seen = 0u64;
    let drain = async {
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |d| d.len() as u64);
            if seen > limit as u64 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), drain).await;
}

fn too_large(limit: usize) -> Response {
    error(StatusCode::PAYLOAD_TOO_LARGE, format!("the upload is larger than {limit} bytes ([admin] max_upload_mib)"))
}

/// `name` of a raw upload's query string (`?name=...`), percent-decoded.
fn query_name(query: Option<&str>) -> Option<String> {
    let query: ModuleQuery = serde_urlencoded::from_str(query.unwrap_or_default()).ok()?;
    query.name
}

/// `POST /v1/pipelines/{name}/rollback`.
pub async fn rollback(
    State(registry): State<Arc<Registry>>,
    Path(pipeline): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = authorize(&registry, &headers) {
        return refused.into_response();
    }
    match deployer(&registry, &pipeline) {
        Ok(deployer) => outcome(&pipeline, deployer.rollback("requested through the admin API").await),
        Err(refused) => refused.into_response(),
    }
}
