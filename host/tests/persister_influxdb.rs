//! The persister end to end on a real Kafka broker and a real InfluxDB 1.x,
//! through the `monasca-wasm` binary: the shared fixtures and our edge cases
//! land as monasca-persister stores them; an upstream producer that loses
//! acknowledgements and retries leaves each measurement once; `kill -9`
//! between the InfluxDB write and the commit leaves each measurement once;
//! an InfluxDB outage loses nothing and holds the offsets back.

mod common;

use common::kafka::{
    committed_offsets, config_head, consume_on, create_topics_on, produce_tombstone, produce_values, spawn_host,
    spawn_host_logging, terminate,
};
use monasca_test_programs::influx::{self, OwnInflux, StoredPoint};
use monasca_test_programs::{fixture_lines, influxdb, kafka, unique, METRICS_API, PERSISTER};
use monasca_wasm::sinks::lines;
use rdkafka::message::{Headers, Message};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A database name of this test run.
fn database(prefix: &str) -> String {
    unique(prefix).replace('-', "_")
}

/// A host configuration: the persister guest on `topics`, storing into
/// `database` at `url`.
fn write_config(dir: &Path, url: &str, database: &str, topics: &[&str], group: &str, dlq: &str) -> PathBuf {
    let path = dir.join("host.toml");
    let topics: Vec<String> = topics.iter().map(|t| format!("\"{t}\"")).collect();
    std::fs::write(
        &path,
        format!(
            r#"{head}
[sinks.tsdb]
type = "influxdb"
url = "{url}"
database = "{database}"
batch_points = 1000
timeout_ms = 2000
max_backoff_ms = 1000
[[pipeline]]
name = "persister"
module = "{module}"
topics = [{topics}]
group_id = "{group}"
dead_letter_topic = "{dlq}"
[pipeline.batch]
max_messages = 1000
"#,
            head = config_head("persister-cache"),
            module = PERSISTER,
            topics = topics.join(", "),
        ),
    )
    .expect("config written");
    path
}

/// Wait until `database` holds `n` points (or `seconds` pass); the count.
async fn wait_for_points(url: &str, database: &str, n: usize, seconds: u64) -> usize {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let count = influx::count(url, database).await;
        if count >= n || Instant::now() > deadline {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A point's identity in InfluxDB.
type Identity = (String, BTreeMap<String, String>, i64);

fn by_identity(points: Vec<StoredPoint>) -> BTreeMap<Identity, BTreeMap<String, Value>> {
    points.into_iter().map(|p| ((p.measurement, p.tags, p.time_ms), p.fields)).collect()
}

/// Undo line-protocol escapes the way InfluxDB 1.x reads names and tags: `\,`,
/// `\ ` and `\=` lose their backslash; any other backslash stays.
fn influx_name(escaped: &str) -> String {
    let mut out = String::new();
    let mut chars = escaped.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(',' | ' ' | '=')) => out.push(chars.next().unwrap_or_default()),
            _ => out.push(c),
        }
    }
    out
}

/// What InfluxDB 1.x stores for a name or tag written with monasca-persister's
/// escaping: everything as given, except that backslashes come back doubled.
fn stored_name(given: &str) -> String {
    given.replace('\\', "\\\\")
}

/// The point InfluxDB holds for one line of an `.expected.lp` file.
fn expected_point(line: &str) -> (Identity, BTreeMap<String, Value>) {
    let parsed = lines::parse(line.as_bytes()).expect("expected line parses");
    let mut series = split_unescaped(parsed.series, ',').into_iter();
    let measurement = influx_name(series.next().unwrap_or_default());
    let tags = series
        .map(|pair| {
            let (k, v) = split_unescaped(pair, '=').into_iter().fold((String::new(), None), |(k, v), part| match v {
                None if k.is_empty() => (part.to_string(), None),
                None => (k, Some(part.to_string())),
                Some(v) => (k, Some(format!("{v}={part}"))),
            });
            (influx_name(&k), influx_name(&v.unwrap_or_default()))
        })
        .collect();
    let fields = split_fields(parsed.fields)
        .into_iter()
        .map(|(k, v)| {
            let value = if let Some(text) = v.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
                Value::String(text.replace("\\\"", "\"").replace("\\\\", "\\"))
            } else if let Some(int) = v.strip_suffix('i') {
                Value::from(int.parse::<i64>().expect("integer field"))
            } else {
                Value::from(v.parse::<f64>().expect("float field"))
            };
            (influx_name(&k), value)
        })
        .collect();
    ((measurement, tags, parsed.timestamp_ms), fields)
}

/// Split at `sep` where it is not escaped with a backslash.
fn split_unescaped(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            c if c == sep => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// The `key=value` pairs of a field set (commas inside quoted strings kept).
fn split_fields(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    let mut push = |part: &str| {
        let eq = split_unescaped(part, '=')[0].len();
        out.push((part[..eq].to_string(), part[eq + 1..].to_string()));
    };
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    push(&text[start..]);
    out
}

/// The point InfluxDB holds for one of our edge-case envelopes.
fn edge_point(envelope: &Value) -> (Identity, BTreeMap<String, Value>) {
    let metric = &envelope["metric"];
    let mut tags: BTreeMap<String, String> = metric["dimensions"]
        .as_object()
        .map(|d| d.iter().map(|(k, v)| (stored_name(k), stored_name(v.as_str().unwrap_or_default()))).collect())
        .unwrap_or_default();
    tags.insert("_tenant_id".into(), stored_name(envelope["meta"]["tenantId"].as_str().unwrap_or_default()));
    tags.insert("_region".into(), stored_name(envelope["meta"]["region"].as_str().unwrap_or_default()));
    let identity = (
        stored_name(metric["name"].as_str().unwrap_or_default()),
        tags,
        metric["timestamp"].as_i64().unwrap_or_default(),
    );
    let mut fields = BTreeMap::new();
    fields.insert("value".to_string(), metric["value"].clone());
    fields.insert(
        "value_meta".to_string(),
        metric.get("value_meta").cloned().unwrap_or(Value::Object(Default::default())),
    );
    (identity, fields)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fixtures_and_edge_cases_land_as_monasca_persister_stores_them() {
    let url = influxdb();
    let db = database("fixtures");
    let (metrics, alarms, dlq) = (unique("p-metrics"), unique("p-alarms"), unique("p-dlq"));
    create_topics_on(kafka(), &[&metrics, &alarms, &dlq], 3).await;
    let edge = fixture_lines("metrics-edge.jsonl");
    let mut metric_values = fixture_lines("metrics.jsonl");
    metric_values.extend(edge.iter().cloned());
    metric_values.extend(fixture_lines("metrics-invalid.jsonl"));
    produce_values(kafka(), &metrics, &metric_values).await;
    produce_tombstone(kafka(), &metrics, "deleted").await;
    produce_values(kafka(), &alarms, &fixture_lines("alarm-transitions.jsonl")).await;

    // What InfluxDB must end up holding: the original's lines (a later line
    // with the same identity replaces an earlier one, as in InfluxDB), and
    // the edge cases that can be stored (lines 1-4).
    let mut expected = BTreeMap::new();
    for file in ["metrics.expected.lp", "alarm-transitions.expected.lp"] {
        for line in fixture_lines(file) {
            let (identity, fields) = expected_point(std::str::from_utf8(&line).expect("UTF-8 fixture"));
            expected.insert(identity, fields);
        }
    }
    let edge_json: Vec<Value> = edge.iter().map(|l| serde_json::from_slice(l).expect("edge case is JSON")).collect();
    let mut edge_expected = BTreeMap::new();
    for envelope in &edge_json[..4] {
        let (identity, fields) = edge_point(envelope);
        edge_expected.insert(identity, fields);
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), url, &db, &[&metrics, &alarms], &unique("persister"), &dlq);
    let host = spawn_host(&config);
    let total = expected.len() + edge_expected.len();
    let stored = wait_for_points(url, &db, total, 60).await;
    // 13 invalid envelopes, the newline and the tombstone (guest) and the
    // trailing backslash (InfluxDB).
    let dead = consume_on(kafka(), &dlq, 16).await;
    let (status, stderr) = terminate(host);
    assert!(status.success(), "the host did not stop cleanly: {status}\n{stderr}");
    let mut got = by_identity(influx::points(url, &db).await);
    let missing: Vec<&Identity> =
        expected.keys().chain(edge_expected.keys()).filter(|identity| !got.contains_key(*identity)).collect();
    assert_eq!(stored, total, "points stored in InfluxDB; missing: {missing:?}\n{stderr}");

    for (identity, fields) in &edge_expected {
        let stored = got.remove(identity).unwrap_or_else(|| {
            let same_time: Vec<&Identity> = got.keys().filter(|k| k.2 == identity.2).collect();
            panic!("edge case {identity:?} not stored as expected; stored at that time: {same_time:?}")
        });
        assert_eq!(stored["value"].as_f64(), fields["value"].as_f64(), "{identity:?}");
        let meta: Value = serde_json::from_str(stored["value_meta"].as_str().expect("value_meta is a string"))
            .expect("value_meta is JSON");
        assert_eq!(meta, fields["value_meta"], "{identity:?}");
    }
    let got_keys: Vec<&Identity> = got.keys().collect();
    let expected_keys: Vec<&Identity> = expected.keys().collect();
    assert_eq!(got_keys, expected_keys, "series and times");
    for (identity, fields) in &expected {
        let stored = &got[identity];
        assert_eq!(stored.keys().collect::<Vec<_>>(), fields.keys().collect::<Vec<_>>(), "fields of {identity:?}");
        for (key, want) in fields {
            match (want, &stored[key]) {
                (Value::Number(w), Value::Number(s)) => assert_eq!(w.as_f64(), s.as_f64(), "{key} of {identity:?}"),
                (w, s) => assert_eq!(w, s, "{key} of {identity:?}"),
            }
        }
    }

    assert_eq!(dead.len(), 16, "dead-lettered messages");
    // The tombstone's dead letter is a tombstone too; the others carry their value.
    let tombstones: Vec<_> = dead.iter().filter(|m| m.payload().is_none()).collect();
    assert_eq!(tombstones.len(), 1, "one dead letter without a value");
    assert_eq!(tombstones[0].key(), Some(&b"deleted"[..]), "with the tombstone's key");
    let reasons: Vec<String> = dead
        .iter()
        .map(|m| {
            let headers = m.headers().expect("dead letters carry headers");
            let reason = headers.iter().find(|h| h.key == "dlq.reason").and_then(|h| h.value).unwrap_or_default();
            String::from_utf8_lossy(reason).into_owned()
        })
        .collect();
    assert!(reasons.iter().any(|r| r.contains("line break")), "the newline case names the line break: {reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("refused the point") && r.contains("invalid tag format")),
        "the trailing-backslash case carries InfluxDB's reason: {reasons:?}"
    );
    // Each dead letter is logged with where it came from and why.
    let logged = |what: &str| {
        stderr
            .lines()
            .filter(|l| l.contains(what) && l.contains("partition=") && l.contains("offset=") && l.contains("reason="))
            .count()
    };
    assert_eq!(logged("message rejected by the guest; dead-lettered"), 15, "{stderr}");
    assert_eq!(logged("point refused; message dead-lettered"), 1, "{stderr}");
}

/// Envelopes `from..to` of the generator, all on one tenant's database.
fn envelopes(range: std::ops::Range<u64>) -> Vec<Vec<u8>> {
    range.map(monasca_wasm::generate::metric_envelope).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upstream_producer_losing_acknowledgements_leaves_each_measurement_once() {
    use monasca_test_programs::proxy::KafkaProxy;
    use monasca_test_programs::{free_port, kafka_behind_proxy};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    use rdkafka::ClientConfig;

    // The Monasca spec's test: the API's producer loses the acknowledgements
    // of part of a bulk and retries, so the topic holds some metrics twice.
    let broker_port = free_port();
    let proxy = KafkaProxy::start(broker_port).await.expect("proxy");
    let proxy_port = proxy.port();
    tokio::task::spawn_blocking(move || kafka_behind_proxy(broker_port, proxy_port)).await.expect("broker");
    let bootstrap = format!("127.0.0.1:{proxy_port}");
    let (metrics, dlq) = ("spec-metrics", "spec-dlq");
    create_topics_on(&bootstrap, &[metrics, dlq], 3).await;

    const N: u64 = 20_000;
    let values = envelopes(0..N);
    let upstream: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("enable.idempotence", "false")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("request.timeout.ms", "2000")
        .set("message.timeout.ms", "60000")
        .create()
        .expect("upstream producer");
    proxy.arm(3, 5);
    let sends = values
        .iter()
        .map(|v| upstream.send(FutureRecord::<(), [u8]>::to(metrics).payload(v.as_slice()), Duration::from_secs(60)));
    for r in futures::future::join_all(sends).await {
        r.expect("delivered upstream, perhaps more than once");
    }
    assert!(proxy.cuts_made() > 0, "the proxy lost no acknowledgement: the test proved nothing");
    let in_topic = consume_on(&bootstrap, metrics, N as usize).await.len();
    assert!(in_topic > N as usize, "the lost acknowledgements left no duplicate in the topic ({in_topic})");

    let url = influxdb();
    let db = database("spec");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), url, &db, &[metrics], &unique("spec"), dlq);
    // This host reads through the proxy too (now quiet).
    let text = std::fs::read_to_string(&path).expect("config").replace(kafka(), &bootstrap);
    std::fs::write(&path, text).expect("config");
    let host = spawn_host(&path);
    let stored = wait_for_points(url, &db, N as usize, 120).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stored_after = influx::count(url, &db).await;
    let (status, stderr) = terminate(host);
    assert!(status.success(), "the host did not stop cleanly: {status}\n{stderr}");
    assert_eq!(stored, N as usize, "{in_topic} messages in the topic for {N} measurements\n{stderr}");
    assert_eq!(stored_after, N as usize, "InfluxDB holds each measurement once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_between_write_and_commit_leaves_each_measurement_once() {
    const N: u64 = 200_000;
    let url = influxdb();
    let db = database("crash");
    let (metrics, dlq) = (unique("crash-metrics"), unique("crash-dlq"));
    create_topics_on(kafka(), &[&metrics, &dlq], 6).await;
    produce_values(kafka(), &metrics, &envelopes(0..N)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), url, &db, &[&metrics], &unique("crash"), &dlq);

    // Three runs killed once they have stored some more; points written but
    // not yet committed are written again by the next run.
    for kill in 1..=3 {
        let before = influx::count(url, &db).await;
        let mut host = spawn_host(&config);
        let stored = wait_for_points(url, &db, before + N as usize / 8, 120).await;
        assert!(
            stored > before,
            "run {kill} stored nothing in 120 s ({stored} points, {before} before):\n{}",
            host.stderr()
        );
        assert!(host.running(), "run {kill} exited on its own:\n{}", host.stderr());
        host.kill();
    }
    let host = spawn_host(&config);
    let stored = wait_for_points(url, &db, N as usize, 180).await;
    let (status, stderr) = terminate(host);
    assert!(status.success(), "the last run did not stop cleanly: {status}\n{stderr}");
    assert_eq!(stored, N as usize, "distinct measurements in InfluxDB after three kills\n{stderr}");
    assert_eq!(influx::count(url, &db).await, N as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_influxdb_outage_loses_nothing_and_holds_the_offsets_back() {
    const N: u64 = 60_000;
    let server = OwnInflux::start("outage");
    let db = database("outage");
    let (metrics, dlq, group) = (unique("outage-metrics"), unique("outage-dlq"), unique("outage"));
    create_topics_on(kafka(), &[&metrics, &dlq], 3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &server.url, &db, &[&metrics], &group, &dlq);
    let host = spawn_host(&config);

    // A first part goes through; InfluxDB stops; the rest arrives meanwhile.
    produce_values(kafka(), &metrics, &envelopes(0..N / 3)).await;
    assert_eq!(wait_for_points(&server.url, &db, N as usize / 3, 60).await, N as usize / 3);
    server.stop();
    let stopped = Instant::now();
    produce_values(kafka(), &metrics, &envelopes(N / 3..N)).await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    let committed: i64 = committed_offsets(kafka(), &group, &metrics, 3).values().sum();
    assert!(
        committed <= (N / 3) as i64,
        "offsets committed past what InfluxDB stored: {committed} > {} while it was down",
        N / 3
    );
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(stopped.elapsed())).await;
    server.resume();

    let stored = wait_for_points(&server.url, &db, N as usize, 120).await;
    let (status, stderr) = terminate(host);
    assert!(status.success(), "the host did not stop cleanly: {status}\n{stderr}");
    assert_eq!(stored, N as usize, "the backlog drained after the outage\n{stderr}");
    // The recovery is said once for the whole outage, with its count.
    let recovered: Vec<&str> = stderr.lines().filter(|l| l.contains("InfluxDB writes go through again")).collect();
    assert_eq!(recovered.len(), 1, "{stderr}");
    assert!(recovered[0].contains("failed_attempts="), "{}", recovered[0]);
    let committed: i64 = committed_offsets(kafka(), &group, &metrics, 3).values().sum();
    assert_eq!(committed, N as i64, "every offset committed once stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_database_per_tenant_with_the_default_retention_policy() {
    let url = influxdb();
    let prefix = database("tenants");
    let (metrics, alarms, dlq) = (unique("t-metrics"), unique("t-alarms"), unique("t-dlq"));
    create_topics_on(kafka(), &[&metrics, &alarms, &dlq], 3).await;
    let metric_values = fixture_lines("metrics.jsonl");
    let alarm_values = fixture_lines("alarm-transitions.jsonl");
    produce_values(kafka(), &metrics, &metric_values).await;
    produce_values(kafka(), &alarms, &alarm_values).await;

    // Points expected per tenant database, from the inputs themselves.
    let mut expected: BTreeMap<String, HashSet<Identity>> = BTreeMap::new();
    for (value, expected_file) in metric_values.iter().zip(fixture_lines("metrics.expected.lp")) {
        let envelope: Value = serde_json::from_slice(value).expect("JSON");
        let tenant = envelope["meta"]["tenantId"].as_str().expect("tenant").to_string();
        let (identity, _) = expected_point(std::str::from_utf8(&expected_file).expect("UTF-8"));
        expected.entry(format!("{prefix}_{tenant}")).or_default().insert(identity);
    }
    for (value, expected_file) in alarm_values.iter().zip(fixture_lines("alarm-transitions.expected.lp")) {
        let alarm: Value = serde_json::from_slice(value).expect("JSON");
        let tenant = alarm["alarm-transitioned"]["tenantId"].as_str().expect("tenant").to_string();
        let (identity, _) = expected_point(std::str::from_utf8(&expected_file).expect("UTF-8"));
        expected.entry(format!("{prefix}_{tenant}")).or_default().insert(identity);
    }
    assert!(expected.len() > 1, "the fixtures hold several tenants");

    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), url, &prefix, &[&metrics, &alarms], &unique("tenants"), &dlq);
    let text = std::fs::read_to_string(&path)
        .expect("config")
        .replace("batch_points = 1000", "batch_points = 1000\ndb_per_tenant = true\ndefault_retention_hours = 87600");
    std::fs::write(&path, text).expect("config");
    let host = spawn_host_logging(&path, "warn,monasca_wasm::sinks=info");
    for (db, identities) in &expected {
        let stored = wait_for_points(url, db, identities.len(), 60).await;
        assert_eq!(stored, identities.len(), "points in {db}\n{}", host.stderr());
        let got: HashSet<Identity> =
            influx::points(url, db).await.into_iter().map(|p| (p.measurement, p.tags, p.time_ms)).collect();
        assert_eq!(&got, identities, "points of {db}");
        let policies = influx::query(url, db, &format!("SHOW RETENTION POLICIES ON \"{db}\"")).await;
        let rows =
            policies.pointer("/results/0/series/0/values").and_then(Value::as_array).cloned().unwrap_or_default();
        // Columns: name, duration, shardGroupDuration, replicaN, default.
        let default: Vec<&Value> = rows.iter().filter(|r| r[4] == Value::Bool(true)).collect();
        assert_eq!(default.len(), 1, "one default policy on {db}: {rows:?}");
        // Ten years: the fixtures' points are from 2023 and must be kept.
        assert_eq!(default[0][0], "87600h", "the default policy of {db}");
        assert_eq!(default[0][1], "87600h0m0s", "its duration");
    }
    let (status, stderr) = terminate(host);
    assert!(status.success(), "the host did not stop cleanly: {status}\n{stderr}");
    for db in expected.keys() {
        let said = stderr
            .lines()
            .filter(|l| l.contains("created InfluxDB database") && l.contains(&format!("database={db} ")))
            .count();
        assert_eq!(said, 1, "\"created\" said once for {db}:\n{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_an_influxdb_outage_stops_the_host_without_storing_offsets() {
    // Nothing listens there: every write is retried.
    let url = format!("http://127.0.0.1:{}", monasca_test_programs::free_port());
    let (metrics, dlq, group) = (unique("down-metrics"), unique("down-dlq"), unique("down"));
    create_topics_on(kafka(), &[&metrics, &dlq], 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &url, &database("down"), &[&metrics], &group, &dlq);
    let mut host = spawn_host(&config);
    produce_values(kafka(), &metrics, &envelopes(0..100)).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !host.stderr().contains("InfluxDB write failed; retrying") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(host.stderr().contains("retrying"), "the sink should be retrying:\n{}", host.stderr());
    let pid = host.child.id().to_string();
    let signalled = Instant::now();
    std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
    while host.running() && signalled.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = signalled.elapsed();
    assert!(!host.running(), "the host still runs {took:?} after SIGTERM:\n{}", host.stderr());
    assert!(took < Duration::from_secs(15), "it took {took:?} to stop");
    let said = host.stderr();
    assert!(said.contains("the host is stopping while InfluxDB does not answer"), "{said}");
    let committed: i64 = committed_offsets(kafka(), &group, &metrics, 1).values().sum();
    assert_eq!(committed, 0, "no offset stored for what InfluxDB never took");
}

/// The whole stack: metrics posted to the metrics API (monasca-api's `POST
/// /v2.0/metrics`, a pipeline with an HTTP source) reach `metrics` and the
/// persister pipeline stores each in InfluxDB once; a refused one nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_posted_to_the_api_are_stored_once_in_influxdb() {
    const REQUESTS: usize = 200;
    const PER_REQUEST: usize = 10;
    let url = influxdb();
    let db = database("api");
    let (metrics, dlq) = (unique("api-metrics"), unique("api-dlq"));
    create_topics_on(kafka(), &[&metrics, &dlq], 3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), url, &db, &[&metrics], &unique("api"), &dlq);
    let api = format!(
        "\n[[pipeline]]\nname = \"metrics-api\"\nmodule = \"{METRICS_API}\"\ndead_letter_topic = \"{dlq}\"\n\
         [pipeline.config]\ntopic = \"{metrics}\"\nregion = \"RegionOne\"\n[pipeline.http]\nlisten = \"127.0.0.1:0\"\n\
         [[pipeline.http.tokens]]\ntoken = \"agent-token-0123456789\"\nproject_id = \"p1\"\nroles = [\"monasca-agent\"]\n"
    );
    let text = std::fs::read_to_string(&config).expect("config") + &api;
    std::fs::write(&config, text).expect("config");
    let mut host = spawn_host(&config);
    let started = Instant::now();
    let api_url = loop {
        let stderr = host.stderr();
        let marker = "pipeline `metrics-api`: serving HTTP on ";
        if let Some(at) = stderr.find(marker) {
            break stderr[at + marker.len()..].split_whitespace().next().unwrap_or_default().to_string();
        }
        assert!(host.running() && started.elapsed() < Duration::from_secs(60), "no API:\n{stderr}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let client = reqwest::Client::new();
    let mut posts = Vec::new();
    for r in 0..REQUESTS {
        let metrics: Vec<String> = (0..PER_REQUEST)
            .map(|m| {
                format!(
                    r#"{{"name": "api.test", "value": {m}, "timestamp": 1700000000000, "dimensions": {{"hostname": "h{r}-{m}"}}}}"#
                )
            })
            .collect();
        let (client, url) = (client.clone(), format!("{api_url}/v2.0/metrics"));
        posts.push(tokio::spawn(async move {
            let body = format!("[{}]", metrics.join(", "));
            let sent = client
                .post(url)
                .header("X-Auth-Token", "agent-token-0123456789")
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await;
            sent.map(|r| r.status().as_u16()).unwrap_or(0)
        }));
    }
    for p in posts {
        assert_eq!(p.await.expect("post"), 204);
    }
    let refused = client
        .post(format!("{api_url}/v2.0/metrics"))
        .header("X-Auth-Token", "agent-token-0123456789")
        .header("Content-Type", "application/json")
        .body(r#"{"name": "api test", "value": 1, "timestamp": 1700000000000}"#)
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status().as_u16(), 422);
    let n = REQUESTS * PER_REQUEST;
    let stored = wait_for_points(url, &db, n, 120).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, stderr) = terminate(host);
    assert!(status.success(), "{stderr}");
    assert_eq!(stored, n, "every posted metric stored\n{stderr}");
    assert_eq!(influx::count(url, &db).await, n, "and each once");
}
