//! monasca-common 3.8.0's metric validation (`validation/metrics.py`,
//! `validate(metric_or_list)`), rule for rule and with its messages as
//! Python prints them: monasca-api answers 422 with `str(exception)` as the
//! description, so clients see these texts.
//!
//! Order: for each metric, the name (its errors carry no suffix), then
//! inside a block whose errors get `": for metric <name>"`: value,
//! timestamp, dimensions (in order, key before value) and value_meta.
//! Lengths are counted in code points, as Python's `len`.

use monasca_guest_sdk::pyjson::{write_str_repr, Json};

/// Characters no metric name may hold.
const NAME_BANNED: &[char] = &['<', '>', '=', '{', '}', '(', ')', ',', '"', '\\', ';', '&', ' '];
/// Characters no dimension key or value may hold.
const DIMENSION_BANNED: &[char] = &['<', '>', '=', '{', '}', ',', '"', '\\', ';', '&'];
/// The most value_meta entries.
const VALUE_META_ENTRIES: usize = 16;
/// The longest value_meta as JSON (`json.dumps`, ASCII-escaped).
const VALUE_META_JSON: usize = 2048;

/// `validate(body)`: `Err` holds `str(exception)`.
pub fn validate(body: &Json) -> Result<(), String> {
    match body {
        Json::Array(metrics) => metrics.iter().try_for_each(validate_metric),
        metric => validate_metric(metric),
    }
}

/// What `value['name']` raises when `value` is not a dict.
fn subscript_error(value: &Json) -> Option<String> {
    Some(match value {
        Json::Object(_) => return None,
        Json::Str(_) => "string indices must be integers, not 'str'".to_string(),
        Json::Array(_) => "list indices must be integers or slices, not str".to_string(),
        other => format!("'{}' object is not subscriptable", other.py_type_name()),
    })
}

/// `str(KeyError(text))`: the repr of the text.
fn key_error(text: &str) -> String {
    let mut out = String::new();
    write_str_repr(&mut out, text);
    out
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

fn validate_metric(metric: &Json) -> Result<(), String> {
    if let Some(error) = subscript_error(metric) {
        return Err(error);
    }
    let name = metric.get("name").ok_or_else(|| key_error("name"))?;
    validate_name(name)?;
    let name = name.py_str();
    match checked_fields(metric) {
        Ok(()) => Ok(()),
        Err(Failure::Key(key)) => Err(key_error(&format!("'{key}': for metric {name}"))),
        Err(Failure::Message(message)) => Err(format!("{message}: for metric {name}")),
    }
}

/// A failure inside the suffixed block.
enum Failure {
    /// A required key is missing (`KeyError`).
    Key(&'static str),
    /// Any other exception's text.
    Message(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::Message(message)
    }
}

fn checked_fields(metric: &Json) -> Result<(), Failure> {
    validate_value(metric.get("value").ok_or(Failure::Key("value"))?)?;
    validate_timestamp(metric.get("timestamp").ok_or(Failure::Key("timestamp"))?)?;
    if let Some(dimensions) = metric.get("dimensions") {
        validate_dimensions(dimensions)?;
    }
    if let Some(value_meta) = metric.get("value_meta") {
        validate_value_meta(value_meta)?;
    }
    Ok(())
}

fn validate_name(name: &Json) -> Result<(), String> {
    let Json::Str(text) = name else {
        return Err(format!("invalid metric name type: {} is not a string type ", name.py_str()));
    };
    if !(1..=255).contains(&chars(text)) {
        return Err(format!("invalid length for metric name: {text}"));
    }
    if text.contains(NAME_BANNED) {
        return Err(format!("invalid characters in metric name: {text}"));
    }
    Ok(())
}

fn validate_value(value: &Json) -> Result<(), String> {
    let number = match value {
        Json::Bool(_) | Json::Int(_) | Json::UInt(_) => return Ok(()),
        // `math.isnan(int)` converts it to a float first.
        Json::BigInt(_) => match value.as_f64() {
            Some(f) if f.is_finite() => return Ok(()),
            _ => return Err("int too large to convert to float".to_string()),
        },
        Json::Float(f) => *f,
        other => return Err(format!("invalid value type: {} is not a number type for metric", other.py_str())),
    };
    if number.is_finite() {
        Ok(())
    } else {
        Err(format!("invalid value: {} is not a valid value for metric", value.py_str()))
    }
}

fn validate_timestamp(timestamp: &Json) -> Result<(), String> {
    match timestamp {
        Json::Bool(_) | Json::Int(_) | Json::UInt(_) | Json::BigInt(_) | Json::Float(_) => Ok(()),
        other => Err(format!("invalid timestamp type: {} is not a number type for metric", other.py_str())),
    }
}

fn no_items(value: &Json) -> String {
    format!("'{}' object has no attribute 'items'", value.py_type_name())
}

fn validate_dimensions(dimensions: &Json) -> Result<(), String> {
    let Json::Object(members) = dimensions else { return Err(no_items(dimensions)) };
    for (key, value) in members {
        let length = chars(key);
        if !(1..=255).contains(&length) {
            return Err(format!("invalid length ({length}) for dimension key {key}"));
        }
        if key.contains(DIMENSION_BANNED) || key.starts_with('_') {
            return Err(format!("invalid characters in dimension key {key}"));
        }
        let Json::Str(text) = value else {
            return Err(format!("invalid dimension value type: {} must be a string (from key {key})", value.py_str()));
        };
        let length = chars(text);
        if !(1..=255).contains(&length) {
            return Err(format!("invalid length ({length}) for dimension value {text} from key {key}"));
        }
        if text.contains(DIMENSION_BANNED) {
            return Err(format!("invalid characters in dimension value {text} from key {key}"));
        }
    }
    Ok(())
}

/// Whether `json.dumps` (simplejson 3.19, `allow_nan=False`) refuses it: a
/// NaN or an infinity somewhere in it.
pub(crate) fn has_non_finite(value: &Json) -> bool {
    match value {
        Json::Float(f) => !f.is_finite(),
        Json::Array(items) => items.iter().any(has_non_finite),
        Json::Object(members) => members.iter().any(|(_, v)| has_non_finite(v)),
        _ => false,
    }
}

fn validate_value_meta(value_meta: &Json) -> Result<(), String> {
    let entries = match value_meta {
        Json::Null => return Ok(()),
        Json::Object(members) => members.len(),
        Json::Array(items) => items.len(),
        Json::Str(text) => chars(text),
        other => return Err(format!("object of type '{}' has no len()", other.py_type_name())),
    };
    if entries > VALUE_META_ENTRIES {
        return Err(format!(
            "Too many valueMeta entries {entries}, limit is {VALUE_META_ENTRIES}: valueMeta {}",
            value_meta.py_str()
        ));
    }
    let Json::Object(members) = value_meta else { return Err(no_items(value_meta)) };
    for (key, value) in members {
        if key.is_empty() {
            return Err(format!("valueMeta name cannot be empty: key={key}, value={}", value.py_str()));
        }
        if chars(key) > 255 {
            return Err(format!("valueMeta name too long: {key} must be 255 characters or less"));
        }
    }
    if has_non_finite(value_meta) {
        return Err("Unable to serialize valueMeta into JSON".to_string());
    }
    if value_meta.dumps_ascii().len() > VALUE_META_JSON {
        return Err(format!(
            "valueMeta name value combinations must be {VALUE_META_JSON} characters or less: valueMeta {}",
            value_meta.py_str()
        ));
    }
    Ok(())
}
