//! The subject and body of monasca-notification's email plugin: one of
//! three templates, chosen by the distinct `hostname` (and `target_host`)
//! dimensions of the alarm's metrics, with a Grafana drill-down link.

use crate::notice::Notice;
use crate::python::{asctime, str_of};
use monasca_guest_sdk::pyjson::Json;

/// A mail's subject and plain-text body.
#[derive(Debug, Clone, PartialEq)]
pub struct Mail {
    /// Subject line.
    pub subject: String,
    /// Body.
    pub body: String,
}

/// The mail for `n`.
pub fn compose(n: &Notice, grafana_url: Option<&str>) -> Mail {
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
    let state = str_of(n.alarm("newState"));
    let severity = str_of(n.alarm("severity"));
    let name = str_of(n.alarm("alarmName"));
    let message = str_of(n.alarm("stateChangeReason")).to_lowercase();
    let seconds = n.alarm_timestamp();
    let grafana = match (grafana_url, metrics.first()) {
        (Some(url), Some(metric)) => grafana_link(url, metric, seconds * 1000),
        _ => "None".to_string(),
    };
    let dimensions = format_dimensions(metrics);
    let hosts: Vec<String> = hosts.into_iter().map(str_of).collect();
    let targets: Vec<String> = targets.into_iter().map(str_of).collect();
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
        str_of(n.alarm("alarmId")),
        str_of(n.alarm("lifecycleState")),
        str_of(n.alarm("link")),
    );
    Mail { subject: one_line(&subject), body }
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
fn grafana_link(grafana_url: &str, metric: &Json, timestamp_ms: i64) -> String {
    let mut url = format!("{grafana_url}/dashboard/script/drilldown.js?metric={}", str_of(metric.member("name")));
    if let Some(dimensions) = metric.member("dimensions").as_object() {
        for (key, value) in dimensions {
            url.push_str(&format!("&{key}={}", str_of(value)));
        }
    }
    url.push_str(&format!("&from={}&to={}", timestamp_ms - 600_000, timestamp_ms + 600_000));
    url
}

/// The dimension sets of the metrics, as the original lays them out.
fn format_dimensions(metrics: &[Json]) -> String {
    let sets: Vec<String> = metrics
        .iter()
        .map(|metric| {
            let pairs: Vec<String> = metric
                .member("dimensions")
                .as_object()
                .map(|d| d.iter().map(|(k, v)| format!("    {k}: {}", str_of(v))).collect())
                .unwrap_or_default();
            format!("  {{\n{}\n  }}", pairs.join(",\n"))
        })
        .collect();
    format!("[\n{} \n]", sets.join(",\n"))
}
