//! How Python prints values into text (`str(x)`, `time.asctime`), for the
//! email templates monasca-notification fills with `str.format`.

use monasca_guest_sdk::pyjson::Json;

/// `str(value)` of a JSON value as Python would hold it: strings as they
/// are, `None`, `True`/`False`, integers as digits (of any size), floats as
/// `repr`, lists and dicts as their `repr` (`[1, 'two']`, `{'a': 1}`).
pub fn str_of(value: &Json) -> String {
    value.py_str()
}

/// Python's `==` between two values `json.loads` made: numbers and
/// booleans by value (`1 == 1.0 == True`), strings by text, lists in order,
/// dicts whatever their order.
pub fn equal(a: &Json, b: &Json) -> bool {
    let number = |v: &Json| match v {
        Json::Bool(b) => Some(f64::from(u8::from(*b))),
        Json::Int(_) | Json::UInt(_) | Json::Float(_) => v.as_f64(),
        _ => None,
    };
    match (a, b) {
        (Json::Null, Json::Null) => true,
        (Json::Str(x), Json::Str(y)) => x == y,
        (Json::BigInt(x), Json::BigInt(y)) => x == y,
        (Json::Int(x), Json::Int(y)) => x == y,
        (Json::UInt(x), Json::UInt(y)) => x == y,
        (Json::Array(x), Json::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| equal(p, q)),
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.iter().any(|(l, w)| k == l && equal(v, w)))
        }
        _ => matches!((number(a), number(b)), (Some(x), Some(y)) if x == y),
    }
}

/// `time.asctime(time.gmtime(seconds))`: `Tue Nov 14 22:13:20 2023`, the
/// day of the month padded with a space.
pub fn asctime(seconds: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = seconds.div_euclid(86_400);
    let rest = seconds.rem_euclid(86_400);
    let (year, month, day) = monasca_guest_sdk::clock::civil_from_days(days);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        year
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asctime_matches_python() {
        assert_eq!(asctime(1_700_000_000), "Tue Nov 14 22:13:20 2023");
        assert_eq!(asctime(1_698_796_800), "Wed Nov  1 00:00:00 2023");
        assert_eq!(asctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(asctime(951_782_400), "Tue Feb 29 00:00:00 2000");
    }

    #[test]
    fn python_str() {
        let json = |text: &'static str| monasca_guest_sdk::pyjson::loads(text).expect("json");
        assert_eq!(str_of(&json("1")), "1");
        assert_eq!(str_of(&json("2.0")), "2.0");
        assert_eq!(str_of(&json("18446744073709551616")), "18446744073709551616");
        assert_eq!(str_of(&json(r#"[1, "two", {"a": null}]"#)), "[1, 'two', {'a': None}]");
        assert_eq!(str_of(&Json::Null), "None");
    }
}
