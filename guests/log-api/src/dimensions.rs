//! monasca-log-api 2.11.0's dimension rules (`app/base/validation.py`),
//! with its messages: names at most 255 characters, not empty, not starting
//! with `_`, none of `> < = { } ( ) , ' " ; &` or a space (a backslash is
//! allowed); values not empty and at most 255 long, otherwise unchecked
//! (a non-empty list passes). Lengths are code points, as Python's `len`.

use monasca_guest_sdk::pyjson::Json;

/// Characters no dimension name may hold.
const NAME_BANNED: &[char] = &['>', '<', '=', '{', '}', '(', ')', ',', ' ', '\'', '"', ';', '&'];

/// Why dimensions are refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Invalid {
    /// The original's 422 description.
    Message(String),
    /// A value the original cannot even read (an object: `value[0]` raises
    /// a `KeyError` it does not catch, and the request fails with 500).
    Crash,
}

/// Check `dimensions` as `validate_dimensions` does.
pub fn validate(dimensions: &Json) -> Result<(), Invalid> {
    let Json::Object(members) = dimensions else {
        return Err(Invalid::Message(format!("Dimensions {} must be a dictionary (map)", dimensions.py_str())));
    };
    for (name, value) in members {
        validate_name(name)?;
        validate_value(value)?;
    }
    Ok(())
}

fn validate_name(name: &str) -> Result<(), Invalid> {
    let message = |text: String| Err(Invalid::Message(text));
    if name.chars().count() > 255 {
        return message(format!("Dimension name {name} must be 255 characters or less"));
    }
    if name.is_empty() {
        return message("Dimension name cannot be empty".to_string());
    }
    if name.starts_with('_') {
        return message(format!("Dimension name {name} cannot start with underscore (_)"));
    }
    if name.contains(NAME_BANNED) {
        return message(format!("Dimension name {name} may not contain: > < = {{ }} ( ) ' \" , ; &"));
    }
    Ok(())
}

fn validate_value(value: &Json) -> Result<(), Invalid> {
    let length = match value {
        Json::Str(text) => text.chars().count(),
        Json::Array(items) => items.len(),
        Json::Object(_) => return Err(Invalid::Crash),
        _ => 0,
    };
    if length == 0 {
        return Err(Invalid::Message("Dimension value cannot be empty".to_string()));
    }
    if length > 255 {
        return Err(Invalid::Message(format!("Dimension value {} must be 255 characters or less", value.py_str())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<(), Invalid> {
        validate(&monasca_guest_sdk::pyjson::loads(text).unwrap())
    }

    fn says(text: &str) -> String {
        match check(text) {
            Err(Invalid::Message(m)) => m,
            other => panic!("{text}: {other:?}"),
        }
    }

    /// The cases of the original's `DimensionsValidations` tests.
    #[test]
    fn the_originals_dimension_cases() {
        assert_eq!(says("null"), "Dimensions None must be a dictionary (map)");
        assert_eq!(says("\"\""), "Dimensions  must be a dictionary (map)");
        assert_eq!(says("1"), "Dimensions 1 must be a dictionary (map)");
        assert_eq!(check("{}"), Ok(()));
        assert_eq!(says(r#"{"": 1}"#), "Dimension name cannot be empty");
        let long = "a".repeat(256);
        assert_eq!(
            says(&format!(r#"{{"{long}": "1"}}"#)),
            format!("Dimension name {long} must be 255 characters or less")
        );
        assert_eq!(says(r#"{"_aDim": "1"}"#), "Dimension name _aDim cannot start with underscore (_)");
        assert_eq!(says(r#"{"<>": "1"}"#), "Dimension name <> may not contain: > < = { } ( ) ' \" , ; &");
        assert_eq!(says(r#"{"monasca": ""}"#), "Dimension value cannot be empty");
        assert_eq!(
            says(&format!(r#"{{"monasca": "{long}"}}"#)),
            format!("Dimension value {long} must be 255 characters or less")
        );
        assert_eq!(check(r#"{"monasca": "1", "some_name": "1", "a\\b": "<=>"}"#), Ok(()));
        assert_eq!(check(r#"{"a": {}}"#), Err(Invalid::Crash));
    }
}
