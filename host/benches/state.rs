//! Partition state and exactly-once on a real broker, side by side in one
//! run: the passthrough guest and the keyed counter guest (per-key totals in
//! the partition state), each at-least-once and exactly-once.
//!
//! Run: `cargo bench -p monasca-wasm --bench state` (env `MESSAGES`, default
//! 300000; `KEYS`, distinct counter keys, default 10000; `ROUNDS`, default
//! 3; `STATE_KEYS`, keys of the memory and restore run, default 600000).
//! Prints the tables and writes `target/bench-reports/state.md`.
//!
//! Method:
//! - Throughput: the input topic (6 partitions) is filled first; each
//!   variant, as its own `monasca-wasm run` process, drains it into its own
//!   output topic, the variants interleaved over the rounds, the median
//!   round reported with the ratio of exactly-once to at-least-once of the
//!   same guest in the same round. Rate = messages over the span between the
//!   first and last output timestamps, the output read `read_committed`
//!   (what a reader of an exactly-once pipeline can see).
//! - Commit interval: the exactly-once passthrough at 25/100/500/1000 ms:
//!   throughput as above (one round), and end-to-end p99 latency at a steady
//!   `LATENCY_RATE` messages/s (default 5000) for 5 s, read committed.
//! - Memory and restore: the counter, exactly-once, over `STATE_KEYS`
//!   distinct keys (one message each); its peak RSS against the passthrough
//!   on the same input gives the host memory per 100,000 keys; then every
//!   partition's state is restored from its changelog (the library's restore,
//!   in this process) and timed.

mod common;

use common::{env_number, median};

use monasca_test_programs::{kafka, unique, KEYED_COUNTER, PASSTHROUGH};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::ClientConfig;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 6;

#[derive(Clone, Copy)]
struct Variant {
    label: &'static str,
    module: &'static str,
    exactly_once: bool,
}

const VARIANTS: [Variant; 4] = [
    Variant { label: "passthrough, at-least-once", module: PASSTHROUGH, exactly_once: false },
    Variant { label: "passthrough, exactly-once", module: PASSTHROUGH, exactly_once: true },
    Variant { label: "keyed counter, at-least-once", module: KEYED_COUNTER, exactly_once: false },
    Variant { label: "keyed counter, exactly-once", module: KEYED_COUNTER, exactly_once: true },
];

/// Fill `topic` with `n` records: key `k<i % keys>`, value the amount.
async fn fill(topic: &str, n: usize, keys: usize) {
    let producer = common::producer();
    for start in (0..n).step_by(10_000) {
        let records: Vec<(String, String)> =
            (start..(start + 10_000).min(n)).map(|i| (format!("k{:08}", i % keys), (i % 7 + 1).to_string())).collect();
        let sends = records
            .iter()
            .map(|(k, v)| producer.send(FutureRecord::to(topic).key(k).payload(v), Duration::from_secs(60)));
        for r in futures::future::join_all(sends).await {
            r.expect("filled");
        }
    }
}

fn config(dir: &Path, variant: Variant, input: &str, output: &str, commit_ms: u64) -> PathBuf {
    let name = unique("state-bench");
    let path = dir.join(format!("{name}.toml"));
    let delivery = if variant.exactly_once { "exactly-once" } else { "at-least-once" };
    std::fs::write(
        &path,
        format!(
            "[kafka]\nbootstrap = \"{}\"\n[[pipeline]]\nname = \"{name}\"\nmodule = \"{}\"\ntopics = [\"{input}\"]\n\
             group_id = \"{name}\"\noutput_topic = \"{output}\"\ndelivery = \"{delivery}\"\n\
             [pipeline.transaction]\ncommit_interval_ms = {commit_ms}\n",
            kafka(),
            variant.module,
        ),
    )
    .expect("config");
    path
}

fn spawn(host: &Path, config: &Path) -> Child {
    Command::new(host)
        .args(["run", "--summary-every", "0", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("host starts")
}

fn committed_reader(topic: &str) -> StreamConsumer {
    let reader: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka())
        .set("group.id", unique("state-reader"))
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "10")
        .create()
        .expect("reader");
    reader.subscribe(&[topic]).expect("subscribe");
    reader
}

/// Wait for `n` committed records on `topic`: the span between the first and
/// last record timestamps, and the process's CPU seconds and peak RSS (MB).
async fn observe(topic: &str, n: usize, child: &Child) -> (Duration, f64, f64) {
    let reader = committed_reader(topic);
    let (mut first, mut last, mut seen) = (i64::MAX, i64::MIN, 0usize);
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut usage = (0.0, 0.0);
    let mut sampled = Instant::now();
    while seen < n && Instant::now() < deadline {
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(200), reader.recv()).await {
            if let Some(ts) = m.timestamp().to_millis() {
                first = first.min(ts);
                last = last.max(ts);
            }
            seen += 1;
        }
        if sampled.elapsed() > Duration::from_millis(200) {
            sampled = Instant::now();
            assert!(common::alive(child.id()), "the host exited early");
            usage = common::group_usage(child.id());
        }
    }
    assert_eq!(seen, n, "the output did not reach {n} committed records in time");
    let now = common::group_usage(child.id());
    usage = (now.0.max(usage.0), now.1.max(usage.1));
    (Duration::from_millis((last - first).max(1) as u64), usage.0, usage.1)
}

/// One variant drains `input` (`n` records) into a fresh output: rate, CPU
/// seconds per million, peak RSS, and the pipeline's changelog topic.
async fn drain(
    host: &Path,
    dir: &Path,
    variant: Variant,
    input: &str,
    n: usize,
    commit_ms: u64,
) -> (f64, f64, f64, String) {
    let output = unique("state-bench-out");
    common::create_topic(&output, PARTITIONS).await;
    let config = config(dir, variant, input, &output, commit_ms);
    let child = spawn(host, &config);
    let (span, cpu, rss) = observe(&output, n, &child).await;
    common::stop(child);
    let name = config.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    (n as f64 / span.as_secs_f64(), cpu / n as f64 * 1e6, rss, format!("{name}.changelog"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (n, keys, rounds) = (
        env_number::<usize>("MESSAGES", 300_000),
        env_number::<usize>("KEYS", 10_000),
        env_number::<usize>("ROUNDS", 3),
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let host = root.join("target/release/monasca-wasm");
    assert!(host.exists(), "{} is missing: run `cargo build --release -p monasca-wasm` first", host.display());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut report = String::new();

    // Throughput, the four variants interleaved.
    let input = unique("state-bench-in");
    common::create_topic(&input, PARTITIONS).await;
    fill(&input, n, keys).await;
    let mut runs: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); VARIANTS.len()];
    for round in 0..rounds {
        for (i, variant) in VARIANTS.iter().enumerate() {
            let (rate, cpu, rss, _) = drain(&host, dir.path(), *variant, &input, n, 100).await;
            eprintln!("round {round}, {}: {rate:.0} msg/s", variant.label);
            runs[i].push((rate, cpu, rss));
        }
    }
    report.push_str(&format!(
        "Kafka -> guest -> Kafka, {n} messages ({keys} counter keys) drained from a 6-partition topic, output read \
         committed; median of {rounds} interleaved rounds (range in brackets); × at-least-once: the median of the \
         per-round ratios to the same guest at-least-once; commit interval 100 ms\n\n\
         | variant | messages/s | × at-least-once | CPU s per million | peak RSS MB |\n|---|---:|---:|---:|---:|\n"
    ));
    for (i, variant) in VARIANTS.iter().enumerate() {
        let rates: Vec<f64> = runs[i].iter().map(|r| r.0).collect();
        let base = if variant.exactly_once { i - 1 } else { i };
        let ratios: Vec<f64> = runs[i].iter().zip(&runs[base]).map(|(r, b)| r.0 / b.0).collect();
        let (lo, hi) = (rates.iter().copied().fold(f64::MAX, f64::min), rates.iter().copied().fold(0.0, f64::max));
        report.push_str(&format!(
            "| {} | {:.0} ({lo:.0}–{hi:.0}) | {:.2} | {:.1} | {:.0} |\n",
            variant.label,
            median(rates.clone()),
            median(ratios),
            median(runs[i].iter().map(|r| r.1).collect()),
            median(runs[i].iter().map(|r| r.2).collect()),
        ));
    }

    // Commit interval against throughput and latency (passthrough, exactly-once).
    let rate = env_number::<usize>("LATENCY_RATE", 5000);
    report.push_str(&format!(
        "\nCommit interval, passthrough exactly-once: throughput as above (one run each), and latency from send to \
         committed receipt at a steady {rate} messages/s for 5 s\n\n\
         | commit_interval_ms | messages/s | p50 ms | p99 ms |\n|---:|---:|---:|---:|\n"
    ));
    for commit_ms in [25u64, 100, 500, 1000] {
        let (throughput, ..) = drain(&host, dir.path(), VARIANTS[1], &input, n, commit_ms).await;
        let (lat_in, lat_out) = (unique("state-lat-in"), unique("state-lat-out"));
        common::create_topic(&lat_in, PARTITIONS).await;
        common::create_topic(&lat_out, PARTITIONS).await;
        let child = spawn(&host, &config(dir.path(), VARIANTS[1], &lat_in, &lat_out, commit_ms));
        let (p50, p99) = common::steady_latency(&lat_in, &lat_out, 20, rate, rate * 5, "read_committed").await;
        common::stop(child);
        eprintln!("commit every {commit_ms} ms: {throughput:.0} msg/s, p50 {p50:.1} ms, p99 {p99:.1} ms");
        report.push_str(&format!("| {commit_ms} | {throughput:.0} | {p50:.1} | {p99:.1} |\n"));
    }

    // Memory per key and restore time.
    let state_keys = env_number::<usize>("STATE_KEYS", 600_000);
    let input = unique("state-bench-keys");
    common::create_topic(&input, PARTITIONS).await;
    fill(&input, state_keys, state_keys).await;
    let (_, _, rss_pass, _) = drain(&host, dir.path(), VARIANTS[1], &input, state_keys, 100).await;
    let (_, _, rss_counter, changelog) = drain(&host, dir.path(), VARIANTS[3], &input, state_keys, 100).await;
    let per_100k = (rss_counter - rss_pass) / (state_keys as f64 / 100_000.0);
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", kafka());
    let started = Instant::now();
    let (mut restored_keys, mut restored_bytes) = (0, 0);
    for partition in 0..PARTITIONS {
        let (client, changelog, topic) = (client.clone(), changelog.clone(), input.clone());
        let (store, _) = tokio::task::spawn_blocking(move || {
            let limits = monasca_wasm::state::StateLimits::default();
            monasca_wasm::state::changelog::restore(
                &client,
                &changelog,
                &topic,
                partition,
                limits,
                Duration::from_secs(600),
            )
        })
        .await
        .expect("restore task")
        .expect("restored");
        restored_keys += store.len();
        restored_bytes += store.bytes();
    }
    let restore = started.elapsed().as_secs_f64();
    assert_eq!(restored_keys, state_keys, "every key restored");
    report.push_str(&format!(
        "\nState: {state_keys} keys (one message each), keyed counter exactly-once\n\n\
         | measure | value |\n|---|---:|\n\
         | peak RSS, counter / passthrough on the same input | {rss_counter:.0} MB / {rss_pass:.0} MB |\n\
         | host memory per 100,000 keys (RSS difference) | {per_100k:.1} MB |\n\
         | state bytes (keys + values) per 100,000 keys | {:.1} MB |\n\
         | restore of all {PARTITIONS} partitions from the changelog | {restore:.2} s |\n\
         | restore time per 100,000 keys | {:.3} s |\n",
        restored_bytes as f64 / 1e6 / (state_keys as f64 / 100_000.0),
        restore / (state_keys as f64 / 100_000.0),
    ));
    print!("{report}");
    let reports = root.join("target/bench-reports");
    std::fs::create_dir_all(&reports).expect("reports dir");
    std::fs::write(reports.join("state.md"), &report).expect("report");
}
