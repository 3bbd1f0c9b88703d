//! One log of a request as monasca-log-api 2.11.0 publishes it (or leaves
//! it out): its dimensions merged with the request's global ones, the
//! envelope `{"log", "creation_time", "meta": {"region", "tenantId"}}`
//! written as simplejson writes it, and the message cut when the envelope
//! would be over `max_message_size` (`app/base/log_publisher.py`).

use monasca_guest_sdk::pyjson::{Json, PyStr};

/// `{}`, for a request without global dimensions.
pub static EMPTY_OBJECT: Json<'static> = Json::Object(Vec::new());

/// What every log of a request shares.
pub struct Context<'a> {
    /// The request's (validated) global dimensions.
    pub global: &'a Json<'a>,
    /// The tenant: the cross tenant, else the caller's project.
    pub tenant: Option<&'a str>,
    /// `meta.region`.
    pub region: Option<&'a str>,
    /// Seconds since the epoch.
    pub creation_time: i64,
    /// The largest envelope, bytes (with the original's allowance for the
    /// Kafka key and metadata).
    pub max_message_size: usize,
    /// Keep a log that has no `dimensions` key when there are global ones.
    pub keep_logs_without_dimensions: bool,
}

/// The original adds these to an envelope's size: the key (a timestamp in
/// milliseconds, 13 digits) and 32 bytes of Kafka metadata.
const KEY_AND_METADATA: usize = 13 + 32;
/// And takes one more, and 17 for the `"truncated": true` it adds.
const SAFE_OFFSET: usize = 1;
const TRUNCATED_PROPERTY: usize = 17;

fn truthy(value: &Json) -> bool {
    match value {
        Json::Null | Json::Bool(false) => false,
        Json::Int(i) => *i != 0,
        Json::Float(f) => *f != 0.0,
        Json::Str(s) => !s.is_empty(),
        Json::Array(items) => !items.is_empty(),
        Json::Object(members) => !members.is_empty(),
        _ => true,
    }
}

/// Set `key` in an object: in its place if present, else at the end.
fn set<'a>(members: &mut Vec<(PyStr<'a>, Json<'a>)>, key: &str, value: Json<'a>) {
    match members.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v = value,
        None => members.push((PyStr::from(key.to_string()), value)),
    }
}

/// The log's envelope as published, or `None` when the original leaves the
/// log out. Strings stay borrowed from the request's body throughout.
pub fn build<'a>(item: &Json<'a>, context: &Context<'a>) -> Option<String> {
    let Json::Object(members) = item else { return None };
    if !members.iter().any(|(k, _)| k == "message") {
        return None;
    }
    let local = item.get("dimensions").unwrap_or(&EMPTY_OBJECT);
    if truthy(local) && super::dimensions::validate(local).is_err() {
        return None;
    }
    // `global.copy().update(local)`: a falsy local that is no mapping and
    // no sequence (null, false, 0) cannot update anything.
    let mut merged: Vec<(PyStr<'a>, Json<'a>)> = match context.global {
        Json::Object(global) => global.clone(),
        _ => Vec::new(),
    };
    match local {
        Json::Object(local) => {
            for (k, v) in local {
                set(&mut merged, k, v.clone());
            }
        }
        Json::Str(_) | Json::Array(_) => {}
        _ => return None,
    }
    let mut log = members.clone();
    if !merged.is_empty() {
        match log.iter_mut().find(|(k, _)| k == "dimensions") {
            Some((_, Json::Object(own))) => {
                for (k, v) in merged {
                    set(own, &k, v);
                }
            }
            Some(_) => return None,
            None if context.keep_logs_without_dimensions => {
                log.push((PyStr::from("dimensions"), Json::Object(merged)));
            }
            None => return None,
        }
    }
    let tenant = context.tenant?;
    let mut log = Json::Object(log);
    let mut text = write(&log, tenant, context);
    let size = text.len() + KEY_AND_METADATA;
    let over = (size + SAFE_OFFSET).saturating_sub(context.max_message_size);
    if over > 1 {
        let cut = over + TRUNCATED_PROPERTY;
        let Json::Object(members) = &mut log else { return None };
        let shortened = match members.iter().find(|(k, _)| k == "message").map(|(_, v)| v) {
            Some(Json::Str(message)) => {
                let keep = message.chars().count().saturating_sub(cut);
                Json::Str(PyStr::from(message.chars().take(keep).collect::<String>()))
            }
            Some(Json::Array(items)) => Json::Array(items[..items.len().saturating_sub(cut)].to_vec()),
            // `message[:-n]` fails on anything else: the log is left out.
            _ => return None,
        };
        set(members, "message", shortened);
        set(members, "truncated", Json::Bool(true));
        text = write(&log, tenant, context);
    }
    Some(text)
}

fn write(log: &Json<'_>, tenant: &str, context: &Context<'_>) -> String {
    let mut out = String::with_capacity(512);
    out.push_str("{\"log\": ");
    log.write_to(&mut out);
    out.push_str(", \"creation_time\": ");
    out.push_str(&context.creation_time.to_string());
    out.push_str(", \"meta\": {\"region\": ");
    match context.region {
        Some(region) => monasca_guest_sdk::pyjson::write_string(&mut out, region),
        None => out.push_str("null"),
    }
    out.push_str(", \"tenantId\": ");
    monasca_guest_sdk::pyjson::write_string(&mut out, tenant);
    out.push_str("}}");
    out
}
