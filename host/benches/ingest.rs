//! Ingest throughput: logs and events posted over HTTP until they are in
//! Kafka, side by side in one run on the same broker, with `wrk` (Debian's;
//! installed when missing) as the load generator:
//!
//! 1. monasca-log-api 2.11.0 and monasca-events-api 8.0.0 from PyPI, each
//!    under gunicorn with 4 sync workers (`scripts/peers/ingest_peers.sh`,
//!    their legacy producer replaced by a synchronous confluent-kafka one);
//! 2. this host with the log-api and events-api guests;
//! 3. a raw Rust client producing the same records straight to Kafka
//!    (`rdkafka` with the host's producer settings: idempotent, `acks=all`,
//!    5 ms linger, LZ4), a request's records
//!    awaited together, as many requests in flight as `wrk` has
//!    connections: what the broker and librdkafka allow here.
//!
//! For 1, 10 and 100 logs (or events) per request. Figures: requests/s,
//! logs/s, p50 and p99 latency (wrk's), the host's logs/s as a multiple of
//! the original's and as a share of the raw client's.
//!
//! Run: `cargo bench -p monasca-wasm --bench ingest` (env `SECONDS`, per run,
//! default 10; `CONNECTIONS`, default 64; `SIZES`, default `1,10,100`;
//! `VARIANTS`, a subset of `original,host,raw`; `LINGER_MS`, the producer's
//! `linger.ms` for the host and the raw client alike, default the host's
//! own, 5). Needs Java 17 + Maven (the
//! broker) and Python 3 with pip. Prints the table and writes
//! `target/bench-reports/ingest.md`.

mod common;

use common::env_number;
use monasca_test_programs::{kafka, unique, EVENTS_API, LOG_API};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-token-0123456789";

/// What the raw client produces per log: a record the size of the host's
/// log envelopes for these requests.
const RAW_RECORD: &str = r#"{"log": {"message": "2026-12-06 01:00:00.000 1234 INFO nova.compute.manager [req-00000001] instance spawned in 4.2 seconds", "dimensions": {"component": "nova-compute", "path": "/var/log/nova/nova-compute.log", "hostname": "compute-1", "service": "compute"}}, "creation_time": 1796518800, "meta": {"region": null, "tenantId": "bench"}}"#;

/// One log request body of `n` logs (about 200 bytes each) and one event body of `n` events.
fn bodies(n: usize) -> (String, String) {
    let logs: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"message": "2026-12-06 01:00:00.000 1234 INFO nova.compute.manager [req-{i:08}] instance spawned in 4.2 seconds", "dimensions": {{"component": "nova-compute", "path": "/var/log/nova/nova-compute.log"}}}}"#
            )
        })
        .collect();
    let log = format!(
        r#"{{"dimensions": {{"hostname": "compute-1", "service": "compute"}}, "logs": [{}]}}"#,
        logs.join(", ")
    );
    let events: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"dimensions": {{"service": "compute", "topic": "notification.sample", "hostname": "compute-1"}}, "event": {{"event_type": "compute.instance.create.end", "payload": {{"instance_id": "i-{i:08}", "state": "active", "memory_mb": 2048}}}}}}"#
            )
        })
        .collect();
    let event = format!(r#"{{"timestamp": "2026-12-06T01:00:00Z", "events": [{}]}}"#, events.join(", "));
    (log, event)
}

/// What wrk measured.
#[derive(Debug, Clone, Copy, Default)]
struct Figures {
    requests_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
}

fn ensure_wrk() {
    if Command::new("wrk").arg("--version").output().is_ok() {
        return;
    }
    eprintln!("installing wrk (Debian package)");
    let _ = Command::new("apt-get").arg("update").status();
    let ok = Command::new("apt-get").args(["install", "-y", "wrk"]).status().is_ok_and(|s| s.success());
    assert!(ok, "wrk is needed: apt-get install wrk");
}

/// Milliseconds of a wrk latency text (`812.00us`, `3.45ms`, `1.20s`).
fn millis(text: &str) -> f64 {
    let number = |suffix: &str| text.strip_suffix(suffix).and_then(|n| n.parse::<f64>().ok());
    number("us")
        .map(|n| n / 1000.0)
        .or_else(|| number("ms"))
        .or_else(|| number("s").map(|n| n * 1000.0))
        .unwrap_or(f64::NAN)
}

/// Run wrk against `url` posting `body`.
fn wrk(url: &str, body: &str, dir: &Path, seconds: u64, connections: usize) -> Figures {
    let script = dir.join("post.lua");
    let lua = format!(
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.headers[\"X-Auth-Token\"] = \"{TOKEN}\"\nwrk.body = [==[{body}]==]\n"
    );
    std::fs::write(&script, lua).expect("wrk script");
    let output = Command::new("wrk")
        .args(["-t", "2", "-c", &connections.to_string(), "-d", &format!("{seconds}s"), "--latency", "-s"])
        .arg(&script)
        .arg(url)
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut figures = Figures::default();
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", n] => figures.requests_per_s = n.parse().unwrap_or(0.0),
            ["50%", v] => figures.p50_ms = millis(v),
            ["99%", v] => figures.p99_ms = millis(v),
            ["Non-2xx", "or", "3xx", "responses:", n] => figures.non_2xx = n.parse().unwrap_or(0),
            _ => {}
        }
    }
    assert!(
        figures.requests_per_s > 0.0,
        "wrk measured nothing at {url}:\n{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    figures
}

/// The raw client: `records` per request, `in_flight` requests at once,
/// for `seconds`; requests per second and the latency of a request.
async fn raw(topic: &str, records: usize, record: &str, seconds: u64, in_flight: usize) -> Figures {
    // The host's own producer settings (idempotent, acks=all, linger 5 ms, LZ4).
    let settings = monasca_wasm::config::KafkaConfig {
        bootstrap: kafka().to_string(),
        properties: linger().map(|ms| [("linger.ms".to_string(), ms)].into_iter().collect()).unwrap_or_default(),
        embedded_partitions: 1,
        instance_id: None,
    };
    let producer: FutureProducer = monasca_wasm::kafka::producer_config(&settings, kafka()).create().expect("producer");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..in_flight)
        .map(|_| {
            let (producer, topic, record) = (producer.clone(), topic.to_string(), record.to_string());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let started = Instant::now();
                    let key = started.elapsed().as_nanos().to_string();
                    let sends = (0..records).map(|_| {
                        producer.send(FutureRecord::to(&topic).payload(&record).key(&key), Duration::from_secs(30))
                    });
                    for r in futures::future::join_all(sends).await {
                        r.expect("acknowledged");
                    }
                    latencies.push(started.elapsed().as_secs_f64() * 1000.0);
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await.expect("worker"));
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    Figures { requests_per_s: latencies.len() as f64 / seconds as f64, p50_ms: at(0.5), p99_ms: at(0.99), non_2xx: 0 }
}

/// `LINGER_MS`, when set.
fn linger() -> Option<String> {
    std::env::var("LINGER_MS").ok().filter(|v| !v.is_empty())
}

fn start_host(dir: &Path, logs: &str, events: &str) -> (Child, String, String) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let pipeline = |name: &str, module: &str, config: &str| {
        format!(
            "[[pipeline]]\nname = \"{name}\"\nmodule = \"{module}\"\nconcurrency = 2\n[pipeline.config]\n{config}\n\
             [pipeline.http]\nlisten = \"127.0.0.1:0\"\n[[pipeline.http.tokens]]\ntoken = \"{TOKEN}\"\n\
             project_id = \"bench\"\nroles = [\"monasca-user\"]\n"
        )
    };
    let properties = linger().map(|ms| format!("[kafka.properties]\n\"linger.ms\" = \"{ms}\"\n")).unwrap_or_default();
    let config = format!(
        "[kafka]\nbootstrap = \"{}\"\n{properties}[engine]\ncache_dir = \"{}\"\n{}{}",
        kafka(),
        root.join("target/bench-cache").display(),
        pipeline("log-api", LOG_API, &format!("topics = \"{logs}\"")),
        pipeline("events-api", EVENTS_API, &format!("topics = \"{events}\""))
    );
    let path = dir.join("host.toml");
    std::fs::write(&path, config).expect("config");
    let log = std::fs::File::create(dir.join("host.log")).expect("log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_monasca-wasm"))
        .args(["run", "--summary-every", "0", "--config"])
        .arg(&path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("host starts");
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(dir.join("host.log")).unwrap_or_default();
        let url = |name: &str| {
            let marker = format!("pipeline `{name}`: serving HTTP on ");
            text.find(&marker)
                .map(|at| text[at + marker.len()..].split_whitespace().next().unwrap_or_default().to_string())
        };
        if let (Some(l), Some(e)) = (url("log-api"), url("events-api")) {
            return (child, format!("{l}/v3.0/logs"), format!("{e}/v1.0/events"));
        }
        if started.elapsed() > Duration::from_secs(120) || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the host did not start:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start_originals(dir: &Path, logs: &str, events: &str) -> (String, String) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let tokens = dir.join("tokens.json");
    let json = format!(r#"[{{"token": "{TOKEN}", "project_id": "bench", "roles": ["monasca-user"], "user_id": "u"}}]"#);
    std::fs::write(&tokens, json).expect("tokens");
    let output = Command::new(root.join("scripts/peers/ingest_peers.sh"))
        .arg("start")
        .arg(dir.join("peers"))
        .arg(kafka())
        .arg(&tokens)
        .env("LOG_API_TOPIC", logs)
        .env("EVENTS_API_TOPIC", events)
        .env("INGEST_PEERS_VENVS", root.join("target/tmp/ingest-peers/venvs"))
        .env("INGEST_PEERS_OWNER_PID", std::process::id().to_string())
        .output()
        .expect("scripts/peers/ingest_peers.sh runs");
    assert!(output.status.success(), "the originals did not start:\n{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let url =
        |name: &str| text.lines().find_map(|l| l.strip_prefix(&format!("{name} "))).expect("a peer URL").to_string();
    (format!("{}/v3.0/logs", url("log-api")), format!("{}/v1.0/events", url("events-api")))
}

#[tokio::main]
async fn main() {
    ensure_wrk();
    let seconds: u64 = env_number("SECONDS", 10);
    let connections: usize = env_number("CONNECTIONS", 64);
    let sizes: Vec<usize> = std::env::var("SIZES")
        .unwrap_or_else(|_| "1,10,100".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let variants = std::env::var("VARIANTS").unwrap_or_else(|_| "original,host,raw".into());
    let dir = tempfile::tempdir().expect("tempdir");
    let topics: Vec<String> =
        ["orig-logs", "orig-events", "host-logs", "host-events", "raw"].iter().map(|t| unique(t)).collect();
    for t in &topics {
        common::create_topic(t, 6).await;
    }
    let originals = variants.contains("original").then(|| start_originals(dir.path(), &topics[0], &topics[1]));
    let host = variants.contains("host").then(|| start_host(dir.path(), &topics[2], &topics[3]));

    let mut rows = Vec::new();
    for &n in &sizes {
        let (log_body, event_body) = bodies(n);
        let mut row = vec![format!("{n}")];
        let logs_per_s = |f: Figures| f.requests_per_s * n as f64;
        let cell = |name: &str, f: Figures| {
            eprintln!(
                "{n:>3} per request, {name:<18} {:>9.0} req/s {:>9.0} items/s p50 {:>7.1} ms p99 {:>7.1} ms non-2xx {}",
                f.requests_per_s,
                f.requests_per_s * n as f64,
                f.p50_ms,
                f.p99_ms,
                f.non_2xx
            );
            format!(
                "{:.0} ({:.0}/s; p50 {:.1} ms, p99 {:.1} ms)",
                f.requests_per_s * n as f64,
                f.requests_per_s,
                f.p50_ms,
                f.p99_ms
            )
        };
        let orig = originals.as_ref().map(|(l, e)| {
            (wrk(l, &log_body, dir.path(), seconds, connections), wrk(e, &event_body, dir.path(), seconds, connections))
        });
        let ours = host.as_ref().map(|(_, l, e)| {
            (wrk(l, &log_body, dir.path(), seconds, connections), wrk(e, &event_body, dir.path(), seconds, connections))
        });
        let rawf = match variants.contains("raw") {
            true => Some(raw(&topics[4], n, RAW_RECORD, seconds, connections).await),
            false => None,
        };
        for (label, f) in [
            ("original log-api", orig.map(|o| o.0)),
            ("host log-api", ours.map(|o| o.0)),
            ("original events-api", orig.map(|o| o.1)),
            ("host events-api", ours.map(|o| o.1)),
            ("raw client", rawf),
        ] {
            row.push(f.map(|f| cell(label, f)).unwrap_or_else(|| "–".into()));
        }
        let ratio = |a: Option<Figures>, b: Option<Figures>| match (a, b) {
            (Some(a), Some(b)) if b.requests_per_s > 0.0 => format!("{:.1}×", logs_per_s(a) / logs_per_s(b)),
            _ => "–".into(),
        };
        row.push(ratio(ours.map(|o| o.0), orig.map(|o| o.0)));
        row.push(ratio(ours.map(|o| o.1), orig.map(|o| o.1)));
        row.push(ratio(ours.map(|o| o.0), rawf));
        rows.push(row);
    }
    if let Some((child, _, _)) = host {
        common::stop(child);
    }
    let mut table = String::from(
        "| per request | original log-api | host log-api | original events-api | host events-api | raw client | host/original logs | host/original events | host/raw logs |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        table.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    let linger = linger().unwrap_or_else(|| "5".into());
    table.push_str(&format!(
        "\nItems per second (requests per second; wrk's p50 and p99), {seconds} s per run, {connections} connections, 2 wrk threads, linger.ms {linger}.\n"
    ));
    println!("{table}");
    let reports = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-reports");
    std::fs::create_dir_all(&reports).expect("reports");
    std::fs::write(reports.join("ingest.md"), &table).expect("report");
    eprintln!("written to {}", reports.join("ingest.md").display());
}
