//! How Python prints values into text (`str(x)`, `time.asctime`), for the
//! email templates monasca-notification fills with `str.format`.

use monasca_guest_sdk::pyjson::Json;

/// `str(value)` of a JSON value as Python would hold it: strings as they
/// are, `None`, `True`/`False`, integers as digits (of any size), floats as
/// `repr`, lists and dicts as their `repr` (`[1, 'two']`, `{'a': 1}`).
pub fn str_of(value: &Json) -> String {
    value.py_str()
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
