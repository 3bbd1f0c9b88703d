//! The subject and body of monasca-notification's email plugin: one of
//! three templates, chosen by the distinct `hostname` (and `target_host`)
//! dimensions of the alarm's metrics, with a Grafana drill-down link.
//!
//! Where the original's plugin raises instead of writing a mail, the
//! notification fails and goes to the retry topic; [`compose`] says why
//! instead of writing one:
//! - `metrics` not a non-empty list of objects each with a `dimensions`
//!   object (its loops and `metrics[0]`), or with a Grafana URL a first
//!   metric without `name`;
//! - a transition time `time.gmtime` and `time.asctime` cannot print;
//! - a `stateChangeReason` that is not a string (the mail shows it lower-cased);
//! - a lone surrogate (`"\ud800"`) in any text the mail shows: the mail is
//!   written as UTF-8 (`UnicodeEncodeError`).

use crate::alarm::PRINTABLE_SECONDS;
use crate::notice::Notice;
use crate::python::asctime;
use monasca_guest_sdk::pyjson::{Json, PyStr};

/// A mail's subject and plain-text body.
#[derive(Debug, Clone, PartialEq)]
pub struct Mail {
    /// Subject line.
    pub subject: String,
    /// Body.
    pub body: String,
}

/// `str()` of the values a mail shows, remembering the first that cannot be
/// encoded as UTF-8.
#[derive(Default)]
struct Texts {
    unencodable: Option<String>,
}

impl Texts {
    fn of(&mut self, value: &Json) -> String {
        match value.py_utf8() {
            Ok(text) => text.into_owned(),
            Err(e) => {
                self.unencodable.get_or_insert_with(|| e.to_string());
                value.py_str()
            }
        }
    }

    fn key<'k>(&mut self, key: &'k PyStr) -> &'k str {
        if let Err(e) = key.to_utf8() {
            self.unencodable.get_or_insert_with(|| e.to_string());
        }
        key
    }
}

/// Why the original's plugin raises on `n`'s metrics and time, before it
/// would encode the mail; the seconds it prints otherwise.
fn unwritable(n: &Notice, grafana_url: Option<&str>) -> Result<i64, String> {
    let metrics = n.alarm("metrics");
    let Some(list) = metrics.as_array() else {
        return Err(format!("TypeError: `metrics` is a {}, not a list of metrics", metrics.py_type_name()));
    };
    for metric in list {
        match metric.get("dimensions") {
            Some(Json::Object(_)) => {}
            Some(other) => {
                return Err(format!("AttributeError: '{}' object has no attribute 'items'", other.py_type_name()))
            }
            None if metric.as_object().is_some() => return Err("KeyError: 'dimensions'".to_string()),
            None => return Err(format!("TypeError: a metric is a {}", metric.py_type_name())),
        }
    }
    // The templates show `message.lower()`.
    let reason = n.alarm("stateChangeReason");
    if !reason.is_string() {
        return Err(format!("AttributeError: '{}' object has no attribute 'lower'", reason.py_type_name()));
    }
    let seconds = n.alarm_timestamp().as_i64().filter(|s| PRINTABLE_SECONDS.contains(s));
    let Some(seconds) = seconds else {
        return Err("OverflowError: the transition time is out of the range time.asctime prints".to_string());
    };
    match list.first() {
        None => Err("IndexError: list index out of range (`metrics` is empty)".to_string()),
        Some(first) if grafana_url.is_some() && first.get("name").is_none() => Err("KeyError: 'name'".to_string()),
        Some(_) => Ok(seconds),
    }
}

/// The mail for `n`, or why the original's plugin fails to write it (the
/// error Python raises).
pub fn compose(n: &Notice, grafana_url: Option<&str>) -> Result<Mail, String> {
    let seconds = unwritable(n, grafana_url)?;
    let mut texts = Texts::default();
    let metrics = n.alarm("metrics").as_array().unwrap_or_default();
    let mut hosts: Vec<&Json> = Vec::new();
    let mut targets: Vec<&Json> = Vec::new();
    for metric in metrics {
        let dimensions = metric.member("dimensions");
        for (key, seen) in [("hostname", &mut hosts), ("target_host", &mut targets)] {
            if let Some(value) = dimensions.get(key) {
                // A set in the original: `1`, `1.0` and `true` are one host.
                if !seen.iter().any(|s| crate::python::equal(s, value)) {
                    seen.push(value);
                }
            }
        }
    }
    let state = texts.of(n.alarm("newState"));
    let severity = texts.of(n.alarm("severity"));
    let name = texts.of(n.alarm("alarmName"));
    let message = texts.of(n.alarm("stateChangeReason")).to_lowercase();
    let grafana = match (grafana_url, metrics.first()) {
        (Some(url), Some(metric)) => grafana_link(&mut texts, url, metric, i128::from(seconds) * 1000),
        _ => "None".to_string(),
    };
    let dimensions = format_dimensions(&mut texts, metrics);
    let hosts: Vec<String> = hosts.into_iter().map(|h| texts.of(h)).collect();
    let targets: Vec<String> = targets.into_iter().map(|t| texts.of(t)).collect();
    let (first_line, id_label, dims_label, subject) = match (hosts.as_slice(), targets.first()) {
        ([host], Some(target)) => (
            format!("On host \"{host}\" for target \"{target}\" {message}"),
            "alarm_id",
            "With dimensions:",
            format!("{state} {severity} \"{name}\" for Host: {host} Target: {target}"),
        ),
        ([host], None) => (
            format!("On host \"{host}\" {message}"),
            "alarm_id",
            "With dimensions:",
            format!("{state} {severity} \"{name}\" for Host: {host}"),
        ),
        _ => (
            format!("On multiple hosts {message}"),
            "Alarm_id",
            "With dimensions",
            format!("{state} {severity} \"{name}\" "),
        ),
    };
    let body = format!(
        "{first_line}\n\nAlarm \"{name}\" transitioned to the {state} state at {} UTC\n{id_label}: {}\n\n\
         Lifecycle state: {}\nLink: {}\nLink to Grafana: {grafana}\n\n{dims_label}\n{dimensions}",
        asctime(seconds),
        texts.of(n.alarm("alarmId")),
        texts.of(n.alarm("lifecycleState")),
        texts.of(n.alarm("link")),
    );
    match texts.unencodable {
        Some(error) => Err(error),
        None => Ok(Mail { subject: one_line(&subject), body }),
    }
}

/// A subject on one line, as a receiver reads the original's: split where
/// Python's `str.splitlines` splits, later pieces without their leading
/// whitespace, joined by a space (no line break reaches the header).
fn one_line(subject: &str) -> String {
    let breaks =
        |c: char| matches!(c, '\n' | '\r' | '\x0b' | '\x0c' | '\x1c'..='\x1e' | '\u{85}' | '\u{2028}' | '\u{2029}');
    let normalised = subject.replace("\r\n", "\n");
    let mut pieces: Vec<&str> = normalised.split(breaks).collect();
    // A break at the end leaves nothing after it: no piece, no space.
    while pieces.len() > 1 && pieces.last().is_some_and(|p| p.trim_start().is_empty()) {
        pieces.pop();
    }
    let mut line = pieces.first().copied().unwrap_or_default().to_string();
    for piece in &pieces[1..] {
        line.push(' ');
        line.push_str(piece.trim_start());
    }
    line
}

/// `{grafana}/dashboard/script/drilldown.js?metric=NAME&k=v...&from=..&to=..`
/// (ten minutes either side, nothing escaped, as the original).
fn grafana_link(texts: &mut Texts, grafana_url: &str, metric: &Json, timestamp_ms: i128) -> String {
    let mut url = format!("{grafana_url}/dashboard/script/drilldown.js?metric={}", texts.of(metric.member("name")));
    if let Some(dimensions) = metric.member("dimensions").as_object() {
        for (key, value) in dimensions {
            url.push_str(&format!("&{}={}", texts.key(key), texts.of(value)));
        }
    }
    url.push_str(&format!("&from={}&to={}", timestamp_ms - 600_000, timestamp_ms + 600_000));
    url
}

/// The dimension sets of the metrics, as the original lays them out.
fn format_dimensions(texts: &mut Texts, metrics: &[Json]) -> String {
    let sets: Vec<String> = metrics
        .iter()
        .map(|metric| {
            let pairs: Vec<String> = metric
                .member("dimensions")
                .as_object()
                .map(|d| d.iter().map(|(k, v)| format!("    {}: {}", texts.key(k), texts.of(v))).collect())
                .unwrap_or_default();
            format!("  {{\n{}\n  }}", pairs.join(",\n"))
        })
        .collect();
    format!("[\n{} \n]", sets.join(",\n"))
}
