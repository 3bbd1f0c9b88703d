//! monasca-events-api 8.0.0's body schema, as voluptuous checks it:
//! `{Required("events"): All(Any(list, dict), Length(min=1)),
//! Required("timestamp"): str}` with no other key. Errors come in
//! voluptuous's order: the body's keys in their order, then the required
//! keys missing; the first one is the answer.

use monasca_guest_sdk::pyjson::Json;

/// The first schema error of `body`, as voluptuous words it.
pub fn check(body: &Json) -> Result<(), &'static str> {
    let Json::Object(members) = body else { return Err("expected a dictionary") };
    for (key, value) in members {
        match (key.as_ref(), value) {
            ("events", Json::Array(items)) if items.is_empty() => return Err("length of value must be at least 1"),
            ("events", Json::Object(members)) if members.is_empty() => {
                return Err("length of value must be at least 1")
            }
            ("events", Json::Array(_) | Json::Object(_)) => {}
            ("events", _) => return Err("expected list"),
            ("timestamp", Json::Str(_)) => {}
            ("timestamp", _) => return Err("expected str"),
            _ => return Err("extra keys not allowed"),
        }
    }
    if body.get("events").is_none() || body.get("timestamp").is_none() {
        return Err("required key not provided");
    }
    Ok(())
}
