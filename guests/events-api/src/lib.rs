//! The events-api guest: monasca-events-api 8.0.0's `POST /v1.0/events` on
//! a pipeline with an HTTP source, with the original's checks, order and
//! answers (falcon 3.1.1's error bodies):
//!
//! 1. the body at most `max_request_body_size` (114,688) bytes, else 413;
//! 2. `Content-Type` present (400) and exactly `application/json` (415);
//! 3. the body as Python reads it: empty or invalid is 400;
//! 4. a role allowed to post (`post_roles`, default `monasca-user` and
//!    `admin`, compared without case), else 400 (as the original answers);
//! 5. the original's schema ([`schema`]): 422 with voluptuous's message;
//! 6. each item an object with an object `event`, else 400;
//! 7. per event `{"event": <event + timestamp + dimensions>, "creation_time",
//!    "meta": {"project_id"}}` to every topic of `topics` (default
//!    `monevents`), one key per request; an event holding NaN or an
//!    infinity is left out as the original leaves it out; then 200.

mod schema;

use monasca_guest_sdk::http::{self, Request};
use monasca_guest_sdk::monasca::versions::{self, Version};
use monasca_guest_sdk::pyjson::{self, Json, PyStr};
use monasca_guest_sdk::{clock, Config, Effect, Effects, Message, OutputRecord, ProcessError, Processor};

const VERSIONS: &[Version] =
    &[Version { id: "v1.0", path: "/v1.0/events", rel: "event", status: "CURRENT", updated: "2017-09-01T00:00:00Z" }];

/// The guest.
pub struct EventsApi {
    topics: Vec<String>,
    post_roles: Vec<String>,
    max_request_body_size: u64,
}

impl Processor for EventsApi {
    fn init(config: &Config) -> Result<Self, String> {
        let api = EventsApi {
            topics: config.list_or("topics", "monevents"),
            post_roles: config.list_or("post_roles", "monasca-user,admin").iter().map(|r| r.to_lowercase()).collect(),
            max_request_body_size: config.parse_or("max_request_body_size", 114_688)?,
        };
        if api.topics.is_empty() {
            return Err("option `topics` must name at least one topic".to_string());
        }
        Ok(api)
    }

    fn process(&mut self, batch: Vec<Message>, out: &mut Effects) -> Result<(), ProcessError> {
        for message in &batch {
            let request = Request::of(message);
            let path = request.path();
            match (request.method(), path) {
                ("POST", "/v1.0/events") => self.post(request, out),
                (_, "/v1.0/events") => {
                    let body = http::falcon_error("405 Method Not Allowed", None);
                    let headers = [("content-type", "application/json"), ("allow", "POST, OPTIONS")];
                    http::respond(message, 405, &headers, body.as_bytes());
                }
                ("GET", "/") | ("GET", "/version") => versions::answer(request, path, VERSIONS),
                ("GET", p) if p.starts_with("/version/") => versions::answer(request, path, VERSIONS),
                _ => http::respond_error(message, 404, "404 Not Found", None),
            }
        }
        Ok(())
    }
}

impl EventsApi {
    fn post(&self, request: Request<'_>, out: &mut Effects) {
        let message = request.message();
        let fail = |status: u16, title: &str, description: Option<&str>| {
            http::respond_error(message, status, title, description);
        };
        let length = request.header("content-length").and_then(|n| n.trim().parse::<u64>().ok());
        if length.is_some_and(|n| n > self.max_request_body_size) {
            return too_large(&request, self.max_request_body_size);
        }
        match request.header("content-type") {
            None | Some("") => {
                return fail(400, "Missing header value", Some("The \"Content-Type\" header is required."))
            }
            Some("application/json") => {}
            Some(_) => {
                let description = "Only [application/json] are accepted as logs representations";
                return fail(415, "415 Unsupported Media Type", Some(description));
            }
        }
        // falcon reads no body without a Content-Length (a chunked one).
        let body = if length.is_some() { request.body() } else { &[] };
        if body.is_empty() {
            return fail(400, "Invalid JSON", Some("Could not parse an empty JSON body"));
        }
        let document = match std::str::from_utf8(body) {
            Err(_) => Err(pyjson::utf8_error_message(body).unwrap_or_default()),
            Ok(text) => pyjson::loads(text).map_err(|e| e.python_message(text)),
        };
        let document = match document {
            Ok(document) => document,
            Err(error) => return fail(400, "Invalid JSON", Some(&format!("Could not parse JSON body - {error}"))),
        };
        if !request.roles().any(|r| self.post_roles.contains(&r.to_lowercase())) {
            return fail(400, "400 Bad Request", None);
        }
        if let Err(error) = schema::check(&document) {
            return fail(422, "422 Unprocessable Entity", Some(error));
        }
        let (Some(Json::Str(timestamp)), Some(events)) = (document.get("timestamp"), document.get("events")) else {
            return fail(422, "422 Unprocessable Entity", Some("required key not provided"));
        };
        // An object given as `events` iterates as its keys: none is an item.
        let Json::Array(items) = events else { return fail(400, "400 Bad Request", None) };
        let mut prepared = Vec::with_capacity(items.len());
        for item in items {
            match (item, item.get("event")) {
                (Json::Object(_), Some(Json::Object(event))) => prepared.push((event, item.get("dimensions"))),
                _ => return fail(400, "400 Bad Request", None),
            }
        }
        // One key per request, its arrival time in milliseconds, as the
        // original's producer keys a request's records.
        let key = message.timestamp_ms.unwrap_or_else(clock::now_ms).to_string().into_bytes();
        let creation_time = clock::now_ms().div_euclid(1000);
        if let Some(project) = request.project_id() {
            for (event, dimensions) in prepared {
                let mut event: Vec<(PyStr<'_>, Json<'_>)> = event.clone();
                set(&mut event, "timestamp", Json::Str(timestamp.clone()));
                set(&mut event, "dimensions", dimensions.cloned().unwrap_or(Json::Null));
                let event = Json::Object(event);
                if has_non_finite(&event) {
                    continue;
                }
                let mut value = String::with_capacity(512);
                value.push_str("{\"event\": ");
                event.write_to(&mut value);
                value.push_str(&format!(", \"creation_time\": {creation_time}, \"meta\": {{\"project_id\": "));
                pyjson::write_string(&mut value, project);
                value.push_str("}}");
                let mut value = Some(value.into_bytes());
                for (i, topic) in self.topics.iter().enumerate() {
                    let value = if i + 1 == self.topics.len() { value.take() } else { value.clone() };
                    out.push(Effect::Produce(OutputRecord {
                        topic: Some(topic.clone()),
                        key: Some(key.clone()),
                        value: value.unwrap_or_default(),
                        headers: Vec::new(),
                        origin: message.origin(),
                    }));
                }
            }
        }
        http::respond(message, 200, &[("content-type", "application/json")], &[]);
    }
}

/// Set `key`: in its place if present, else at the end (`dict.update`).
fn set<'a>(members: &mut Vec<(PyStr<'a>, Json<'a>)>, key: &'static str, value: Json<'a>) {
    match members.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v = value,
        None => members.push((PyStr::from(key), value)),
    }
}

/// Whether simplejson 3.19 (`allow_nan=False`) refuses to write it.
fn has_non_finite(value: &Json) -> bool {
    match value {
        Json::Float(f) => !f.is_finite(),
        Json::Array(items) => items.iter().any(has_non_finite),
        Json::Object(members) => members.iter().any(|(_, v)| has_non_finite(v)),
        _ => false,
    }
}

/// oslo.middleware's 413, worded by the `Accept` header as webob words it.
fn too_large(request: &Request<'_>, limit: u64) {
    let message = request.message();
    let accept = request.header("accept").unwrap_or("");
    if accept.contains("application/json") {
        let mut body = String::from("{\"message\": ");
        let text = format!("Request is too large. Larger than max_request_body_size ({limit}).<br /><br />\n\n\n");
        pyjson::write_string(&mut body, &text);
        body.push_str(", \"code\": \"413 Request Entity Too Large\", \"title\": \"Request Entity Too Large\"}");
        http::respond_json(message, 413, &body);
    } else {
        let body = format!(
            "413 Request Entity Too Large\n\nRequest is too large. Larger than max_request_body_size ({limit}).\n\n   "
        );
        http::respond(message, 413, &[("content-type", "text/plain; charset=UTF-8")], body.as_bytes());
    }
}

monasca_guest_sdk::export!(EventsApi);
