//! The log-api guest: monasca-log-api 2.11.0's `POST /v3.0/logs` on a
//! pipeline with an HTTP source, check for check in the original's order and
//! with its answers:
//!
//! 1. a role allowed to post (`post_roles`, default `monasca-user` and
//!    `admin`, compared without case), else 401;
//! 2. `Content-Type` present (400) and exactly `application/json` (415);
//! 3. `Content-Length` present (411) and below `max_log_size` (413);
//! 4. `?tenant_id=` only for a caller with a delegate role (`delegate_roles`,
//!    default `admin`, compared exactly, as the original does), else 403;
//! 5. the body as Python reads it (400), not empty (400), with `logs` (422)
//!    and valid global `dimensions` (422, [`dimensions`]);
//! 6. each log on its own: one without `message`, with bad local dimensions,
//!    or that cannot be enveloped is left out (the original drops it too);
//! 7. `{"log", "creation_time", "meta": {"region", "tenantId"}}` per log,
//!    its message cut to fit `max_message_size` as the original cuts it
//!    (default 999,000 bytes, where the original's is 1,048,576: a record
//!    must fit the producer's `message.max.bytes`, 1,000,000 by default, and
//!    Kafka refused the original's largest ones anyway),
//!    to every topic of `topics` (default `logs`), all of a request's
//!    records under one key (the request time in milliseconds); then 204.
//!
//! Where the original silently drops a valid log, this guest does the same
//! only when `keep_logs_without_dimensions = false`: by default a log with no
//! `dimensions` key whose request has global dimensions is kept, with the
//! global dimensions as its own (the original loses it to a `KeyError`).

mod dimensions;
mod envelope;
mod versions;

use monasca_guest_sdk::http::{self, Request};
use monasca_guest_sdk::pyjson::{self, Json};
use monasca_guest_sdk::{clock, Config, Effect, Effects, Message, OutputRecord, ProcessError, Processor};

/// The guest.
pub struct LogApi {
    region: Option<String>,
    topics: Vec<String>,
    post_roles: Vec<String>,
    delegate_roles: Vec<String>,
    max_log_size: u64,
    max_message_size: usize,
    keep_logs_without_dimensions: bool,
}

impl Processor for LogApi {
    fn init(config: &Config) -> Result<Self, String> {
        let api = LogApi {
            region: config.get("region").map(str::to_string),
            topics: config.list_or("topics", "logs"),
            post_roles: config.list_or("post_roles", "monasca-user,admin").iter().map(|r| r.to_lowercase()).collect(),
            delegate_roles: config.list_or("delegate_roles", "admin"),
            max_log_size: config.parse_or("max_log_size", 1_048_576)?,
            max_message_size: config.parse_or("max_message_size", 999_000)?,
            keep_logs_without_dimensions: config.get("keep_logs_without_dimensions") != Some("false"),
        };
        if api.topics.is_empty() {
            return Err("option `topics` must name at least one topic".to_string());
        }
        Ok(api)
    }

    fn process(&mut self, batch: Vec<Message>, out: &mut Effects) -> Result<(), ProcessError> {
        for message in &batch {
            let request = Request::of(message);
            match (request.method(), request.path()) {
                ("POST", "/v3.0/logs") => self.post(request, out),
                ("GET", "/v3.0/logs") => http::respond_empty(message, 501),
                (_, "/v3.0/logs") => http::respond(message, 405, &[("allow", "GET, POST, OPTIONS")], &[]),
                ("GET", path) if versions::serves(path) => versions::answer(request),
                _ => http::respond_empty(message, 404),
            }
        }
        Ok(())
    }
}

impl LogApi {
    fn post(&self, request: Request<'_>, out: &mut Effects) {
        let message = request.message();
        let fail = |status: u16, title: &str, description: &str| {
            http::respond_error(message, status, title, Some(description));
        };
        if !request.roles().any(|r| self.post_roles.contains(&r.to_lowercase())) {
            let body = http::falcon_error("Forbidden", Some("The request does not have access to this service"));
            let headers = [("content-type", "application/json"), ("www-authenticate", "Token")];
            return http::respond(message, 401, &headers, body.as_bytes());
        }
        match request.header("content-type") {
            None | Some("") => return fail(400, "Missing header value", "The Content-Type header is required."),
            Some("application/json") => {}
            Some(_) => {
                let description = "Only [application/json] are accepted as logs representations";
                return fail(415, "Unsupported media type", description);
            }
        }
        let Some(length) = request.header("content-length").and_then(|n| n.trim().parse::<u64>().ok()) else {
            let description = "Content length is required to estimate if payload can be processed";
            return fail(411, "Content length header is missing", description);
        };
        if length >= self.max_log_size {
            let description = format!("Maximum allowed size is {} bytes", self.max_log_size);
            return fail(413, "Log payload size exceeded", &description);
        }
        let project = request.project_id();
        let cross_tenant = tenant_param(&request);
        if cross_tenant.is_some() && !request.roles().any(|r| self.delegate_roles.iter().any(|d| d == r)) {
            let description = format!("Projects {} cannot POST cross tenant logs", project.unwrap_or("None"));
            return fail(403, "Permission denied", &description);
        }
        let body = request.body();
        let text = match std::str::from_utf8(body) {
            Ok(text) => text,
            Err(_) => {
                let error = pyjson::utf8_error_message(body).unwrap_or_default();
                return fail(400, "Invalid JSON", &format!("Could not parse JSON body - {error}"));
            }
        };
        if text.is_empty() {
            return fail(400, "Bad request", "Request body is Empty");
        }
        let document = match pyjson::loads(text) {
            Ok(Json::Null) => return fail(400, "Bad request", "Request body is Empty"),
            Ok(document) => document,
            Err(e) => {
                return fail(400, "Invalid JSON", &format!("Could not parse JSON body - {}", e.python_message(text)))
            }
        };
        let unprocessable = |description: &str| fail(422, "unprocessable_entity", description);
        let logs = match &document {
            Json::Object(_) => match document.get("logs") {
                Some(logs) => logs,
                None => return unprocessable("Unprocessable Entity Logs not found"),
            },
            // `'logs' in body` holds for a list holding "logs" or a text
            // containing it; the original then crashes (500) reading
            // `body['logs']`, as it does for a number.
            Json::Array(items) if !items.iter().any(|i| i.as_str() == Some("logs")) => {
                return unprocessable("Unprocessable Entity Logs not found")
            }
            Json::Str(s) if !s.contains("logs") => return unprocessable("Unprocessable Entity Logs not found"),
            _ => return fail(500, "Internal Server Error", "The request body cannot be read as logs"),
        };
        let global = document.get("dimensions").unwrap_or(&envelope::EMPTY_OBJECT);
        if let Err(reason) = dimensions::validate(global) {
            return match reason {
                dimensions::Invalid::Message(description) => unprocessable(&description),
                dimensions::Invalid::Crash => fail(500, "Internal Server Error", "A dimension value cannot be read"),
            };
        }
        let items: Vec<&Json> = match logs {
            Json::Array(items) => items.iter().collect(),
            // Iterating an object gives its keys, a text its characters:
            // none of them a log; the request is still accepted.
            Json::Object(_) | Json::Str(_) => Vec::new(),
            // The original fails iterating it and answers 500 with no body.
            _ => return http::respond_empty(message, 500),
        };
        let tenant = cross_tenant.as_deref().or(project).filter(|t| !t.is_empty());
        let context = envelope::Context {
            global,
            tenant,
            region: self.region.as_deref(),
            creation_time: clock::now_ms().div_euclid(1000),
            max_message_size: self.max_message_size,
            keep_logs_without_dimensions: self.keep_logs_without_dimensions,
        };
        // One key per request, its arrival time in milliseconds, as the
        // original's producer keys a request's records.
        let key = message.timestamp_ms.unwrap_or_else(clock::now_ms).to_string().into_bytes();
        for item in items {
            let Some(record) = envelope::build(item, &context) else { continue };
            let mut record = Some(record.into_bytes());
            for (i, topic) in self.topics.iter().enumerate() {
                let value = if i + 1 == self.topics.len() { record.take() } else { record.clone() };
                out.push(Effect::Produce(OutputRecord {
                    topic: Some(topic.clone()),
                    key: Some(key.clone()),
                    value: value.unwrap_or_default(),
                    headers: Vec::new(),
                    origin: message.origin(),
                }));
            }
        }
        http::respond_empty(message, 204);
    }
}

/// `?tenant_id=` as falcon 2 reads it: the last non-blank value, taken as
/// it is (`a,b` stays one tenant).
fn tenant_param(request: &Request<'_>) -> Option<String> {
    request
        .query()?
        .rsplit('&')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (http::decode_component(key) == "tenant_id").then(|| http::decode_component(value))
        })
        .find(|v| !v.is_empty())
}

monasca_guest_sdk::export!(LogApi);
