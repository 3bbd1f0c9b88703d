//! The metrics-api guest: monasca-api 11.0.0's `POST /v2.0/metrics` on a
//! pipeline with an HTTP source. It checks each request as monasca-api does,
//! in its order, with its statuses and error bodies, and produces one
//! envelope per metric to the `metrics` topic, which the persister stores:
//!
//! 1. `Content-Type` exactly `application/json`, else 400;
//! 2. a role allowed to post (`post_roles`, default `monasca-user` and
//!    `monasca-agent`, compared without case), else 401;
//! 3. the body as Python's `json.loads` reads it, else 400;
//! 4. monasca-common's validation ([`validate`]), else 422 with its message;
//! 5. the tenant: `?tenant_id=` for a caller with a delegate role
//!    (`delegate_roles`, default `admin`), else the caller's project;
//! 6. `{"metric": <as posted>, "meta": {"tenantId", "region"},
//!    "creation_time": <seconds>}` per metric, then 204.
//!
//! `GET /` and `GET /v2.0` answer the versions documents. Options: `region`
//! (default none: `null` in the envelope, as monasca-api without one),
//! `topic` (default `metrics`), `post_roles`, `delegate_roles` (comma-separated).

mod validate;

use monasca_guest_sdk::http::{self, Request};
use monasca_guest_sdk::pyjson::{self, Json};
use monasca_guest_sdk::{clock, Config, Effect, Effects, Message, OutputRecord, ProcessError, Processor};

use validate::has_non_finite;
pub use validate::validate;

/// When monasca-api's versions document says v2.0 was updated.
const UPDATED: &str = "2013-03-06T00:00:00.000Z";

/// The guest.
pub struct MetricsApi {
    region: Option<String>,
    topic: String,
    post_roles: Vec<String>,
    delegate_roles: Vec<String>,
}

impl Processor for MetricsApi {
    fn init(config: &Config) -> Result<Self, String> {
        let api = MetricsApi {
            region: config.get("region").map(str::to_string),
            topic: config.get("topic").unwrap_or("metrics").to_string(),
            post_roles: config
                .list_or("post_roles", "monasca-user,monasca-agent")
                .iter()
                .map(|r| r.to_lowercase())
                .collect(),
            delegate_roles: config.list_or("delegate_roles", "admin").iter().map(|r| r.to_lowercase()).collect(),
        };
        if api.topic.is_empty() {
            return Err("option `topic` must not be empty".to_string());
        }
        Ok(api)
    }

    fn process(&mut self, batch: Vec<Message>, out: &mut Effects) -> Result<(), ProcessError> {
        for message in &batch {
            self.answer(Request::of(message), out);
        }
        Ok(())
    }
}

impl MetricsApi {
    fn answer(&self, request: Request<'_>, out: &mut Effects) {
        let message = request.message();
        let path = request.path();
        let path = if path.len() > 1 { path.trim_end_matches('/') } else { path };
        match (request.method(), path) {
            ("POST", "/v2.0/metrics") => self.post(request, out),
            (_, "/v2.0/metrics") => http::respond(
                message,
                405,
                &[("content-type", "application/json"), ("allow", "POST")],
                http::falcon_error("405 Method Not Allowed", None).as_bytes(),
            ),
            ("GET", "/") | ("GET", "/v2.0") => versions(request, path == "/"),
            ("GET", one) if one.len() > 1 && !one[1..].contains('/') => {
                let description = format!("No versions found matching {}", &one[1..]);
                http::respond_json(message, 422, &http::falcon_error("Invalid version", Some(&description)));
            }
            _ => http::respond_json(message, 404, &http::falcon_error("404 Not Found", None)),
        }
    }

    fn post(&self, request: Request<'_>, out: &mut Effects) {
        let message = request.message();
        let fail = |status: u16, title: &str, description: &str| {
            http::respond_json(message, status, &http::falcon_error(title, Some(description)));
        };
        if request.header("content-type") != Some("application/json") {
            return fail(400, "Bad request", "Bad content type. Must be application/json");
        }
        let has_role = |allowed: &[String]| request.roles().any(|r| allowed.contains(&r.to_lowercase()));
        if !has_role(&self.post_roles) {
            let body = http::falcon_error("Forbidden", Some("The request does not have access to this service"));
            return http::respond(
                message,
                401,
                &[("content-type", "application/json"), ("www-authenticate", "Token")],
                body.as_bytes(),
            );
        }
        let Some(body) = std::str::from_utf8(request.body()).ok().and_then(|text| pyjson::loads(text).ok()) else {
            return fail(400, "Bad request", "Request body is not valid JSON");
        };
        if let Err(description) = validate(&body) {
            return fail(422, "Unprocessable Entity", &description);
        }
        let tenant = match tenant_param(&request).filter(|_| has_role(&self.delegate_roles)) {
            Some(tenant) => tenant,
            None => request.project_id().map_or(Json::Null, |p| Json::Str(p.to_string().into())),
        };
        let metrics = match body {
            Json::Array(metrics) => metrics,
            metric => vec![metric],
        };
        if metrics.iter().any(has_non_finite) {
            return fail(500, "Service unavailable", "Out of range float values are not JSON compliant");
        }
        let creation_time = clock::now_ms().div_euclid(1000);
        for metric in &metrics {
            let mut value = String::with_capacity(256);
            value.push_str("{\"metric\": ");
            value.push_str(&metric.dumps());
            value.push_str(", \"meta\": {\"tenantId\": ");
            value.push_str(&tenant.dumps());
            value.push_str(", \"region\": ");
            match &self.region {
                Some(region) => pyjson::write_string(&mut value, region),
                None => value.push_str("null"),
            }
            value.push_str(&format!("}}, \"creation_time\": {creation_time}}}"));
            out.push(Effect::Produce(OutputRecord {
                topic: Some(self.topic.clone()),
                key: None,
                value: value.into_bytes(),
                headers: Vec::new(),
                origin: message.origin(),
            }));
        }
        http::respond_empty(message, 204);
    }
}

/// `?tenant_id=` as falcon reads it (`csv=True`, blanks dropped): one value
/// as a string, several (repeated or comma-separated) as a list.
fn tenant_param(request: &Request<'_>) -> Option<Json<'static>> {
    let query = request.query()?;
    let mut values: Vec<String> = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if http::decode_component(key) != "tenant_id" {
            continue;
        }
        let value = http::decode_component(value);
        values.extend(value.split(',').filter(|v| !v.is_empty()).map(str::to_string));
    }
    match values.len() {
        0 => None,
        1 => values.pop().map(|v| Json::Str(v.into())),
        _ => Some(Json::Array(values.into_iter().map(|v| Json::Str(v.into())).collect())),
    }
}

/// `GET /` (all versions) or `GET /v2.0`, with links made from the
/// request's own URL as monasca-api makes them.
fn versions(request: Request<'_>, all: bool) {
    let host = request.header("host").unwrap_or("localhost");
    let mut uri = format!("http://{host}{}", request.path());
    if let Some(query) = request.query() {
        uri.push('?');
        uri.push_str(query);
    }
    let link = |href: &str| {
        let mut out = String::from("[{\"rel\": \"self\", \"href\": ");
        pyjson::write_string(&mut out, href);
        out.push_str("}]");
        out
    };
    let version = |href: &str| {
        format!("{{\"id\": \"v2.0\", \"links\": {}, \"status\": \"CURRENT\", \"updated\": \"{UPDATED}\"}}", link(href))
    };
    let body = if all {
        format!("{{\"links\": {}, \"elements\": [{}]}}", link(&uri), version(&format!("{uri}v2.0")))
    } else {
        version(&uri)
    };
    http::respond_json(request.message(), 200, &body);
}

monasca_guest_sdk::export!(MetricsApi);
