//! A real InfluxDB 1.x for the tests (`scripts/influxdb.sh`) and a small
//! client that reads stored points back.
//!
//! [`influxdb`] is the suite's shared server (`MONASCA_WASM_INFLUXDB`, which
//! `scripts/test.sh` sets, or one started on first use); [`OwnInflux`] is a
//! server of a test's own that it may stop and resume. A server that cannot
//! be started fails the test with the script's output; nothing is skipped.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The URL of the suite's InfluxDB.
pub fn influxdb() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| match std::env::var("MONASCA_WASM_INFLUXDB") {
        Ok(url) if !url.is_empty() => url,
        _ => script("start", &dir(&std::process::id().to_string())),
    })
}

/// A server of one test's own.
pub struct OwnInflux {
    /// Its base URL.
    pub url: String,
    dir: PathBuf,
}

impl OwnInflux {
    /// Start a fresh server (stopped when the test process exits).
    pub fn start(name: &str) -> Self {
        let dir = dir(&format!("{}-{name}", std::process::id()));
        let url = script("start", &dir);
        OwnInflux { url, dir }
    }

    /// Stop it (its data stays).
    pub fn stop(&self) {
        script("stop", &self.dir);
    }

    /// Start it again on the same port and data.
    pub fn resume(&self) {
        script("resume", &self.dir);
    }
}

fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/influxdb-tests").join(name)
}

fn script(command: &str, dir: &std::path::Path) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = std::process::Command::new(root.join("scripts/influxdb.sh"))
        .arg(command)
        .arg(dir)
        .env("INFLUXDB_OWNER_PID", std::process::id().to_string())
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/influxdb.sh {command}: {e}"));
    assert!(
        output.status.success(),
        "scripts/influxdb.sh {command} failed (InfluxDB is needed for this test):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// One stored point as InfluxDB gives it back.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPoint {
    /// Measurement name.
    pub measurement: String,
    /// Tags, unescaped.
    pub tags: BTreeMap<String, String>,
    /// Time, ms since the epoch.
    pub time_ms: i64,
    /// Fields as JSON values (numbers, strings, booleans).
    pub fields: BTreeMap<String, Value>,
}

/// Run an InfluxQL query (times in ms); the JSON answer.
pub async fn query(url: &str, database: &str, q: &str) -> Value {
    let response = reqwest::Client::new()
        .get(format!("{url}/query"))
        .query(&[("db", database), ("q", q), ("epoch", "ms")])
        .send()
        .await
        .unwrap_or_else(|e| panic!("InfluxDB query {q:?}: {e}"));
    let text = response.text().await.unwrap_or_else(|e| panic!("InfluxDB query {q:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("InfluxDB query {q:?}: bad answer {text:?}: {e}"))
}

/// Every point of `database` (empty when it does not exist).
pub async fn points(url: &str, database: &str) -> Vec<StoredPoint> {
    let answer = query(url, database, "SELECT * FROM /.*/ GROUP BY *").await;
    let mut out = Vec::new();
    let series = answer.pointer("/results/0/series").and_then(Value::as_array).cloned().unwrap_or_default();
    for s in series {
        let measurement = s["name"].as_str().unwrap_or_default().to_string();
        let tags: BTreeMap<String, String> = s["tags"]
            .as_object()
            // `GROUP BY *` over several measurements lists every tag key, empty
            // where a series lacks it (InfluxDB has no empty tag values).
            .map(|t| {
                t.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .filter(|(_, v)| !v.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let columns: Vec<String> =
            s["columns"].as_array().into_iter().flatten().filter_map(|c| c.as_str().map(str::to_string)).collect();
        for row in s["values"].as_array().into_iter().flatten() {
            let row = row.as_array().cloned().unwrap_or_default();
            let mut fields = BTreeMap::new();
            let mut time_ms = 0;
            for (column, value) in columns.iter().zip(row) {
                if column == "time" {
                    time_ms = value.as_i64().unwrap_or_default();
                } else if !value.is_null() {
                    fields.insert(column.clone(), value);
                }
            }
            out.push(StoredPoint { measurement: measurement.clone(), tags: tags.clone(), time_ms, fields });
        }
    }
    out
}

/// Number of points in `database`. `count(*)` counts each field; the
/// columns of all measurements come together (null where a measurement lacks
/// the field), so a measurement's points are its largest field count.
pub async fn count(url: &str, database: &str) -> usize {
    let answer = query(url, database, "SELECT count(*) FROM /.*/").await;
    let series = answer.pointer("/results/0/series").and_then(Value::as_array).cloned().unwrap_or_default();
    series
        .iter()
        .filter_map(|s| {
            let row = s.pointer("/values/0")?.as_array()?;
            row.iter().skip(1).filter_map(Value::as_u64).max()
        })
        .map(|n| n as usize)
        .sum()
}
