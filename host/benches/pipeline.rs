//! Kafka → guest → Kafka throughput on a real broker, side by side in one run:
//! the host with the passthrough guest, a raw rdkafka loop with no wasm
//! (`examples/raw_loop.rs`, the limit) and the same loop on
//! confluent-kafka-python in asynchronous mode (`benches/raw_loop.py`, what
//! Monasca's plan would have given), for 100-byte and 1 KiB messages.
//!
//! Run: `cargo bench -p monasca-wasm --bench pipeline` (env `MESSAGES`,
//! default 200000; needs Java 17 + Maven for the broker and
//! `pip install confluent-kafka` for the Python peer). Prints the table and
//! writes `target/bench-reports/pipeline.md`.
//!
//! Method: the input topic (6 partitions) is filled first; each variant then
//! drains it into its own output topic as a separate process, the variants
//! interleaved over `ROUNDS` rounds (default 3), the median round reported. Throughput is
//! the number of messages over the span between the first and the last
//! output record's timestamps (so process start-up and group join are not
//! counted); CPU seconds (user + system, whole process life) and peak RSS
//! (VmHWM) come from /proc.
//!
//! Latency is measured separately, at a steady rate below every variant's
//! limit (`LATENCY_RATE` messages/s, default 10000, for 5 s): each variant
//! runs on an empty topic, is warmed up until a first record comes through,
//! then this process produces records stamped with the send time (µs) and
//! reads the output; end-to-end latency is receipt time minus send time, so
//! the upstream producer's and the reader's own delays are in every variant's
//! figure alike.

mod common;

use monasca_test_programs::{kafka, unique, PASSTHROUGH};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::ClientConfig;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone)]
struct Measured {
    variant: &'static str,
    round: usize,
    /// Median over rounds of this variant's rate / the raw loop's rate in the same round.
    ratio: f64,
    size: usize,
    rate: f64,
    spread: String,
    cpu_per_million: f64,
    peak_rss_mb: f64,
}

fn proc_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn proc_peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<f64>().ok()? / 1024.0)
}

async fn fill(topic: &str, n: usize, size: usize) {
    let producer = common::producer();
    let pad = "x".repeat(size.saturating_sub(12));
    for start in (0..n).step_by(10_000) {
        let values: Vec<String> = (start..(start + 10_000).min(n)).map(|i| format!("{i:011} {pad}")).collect();
        let sends = values
            .iter()
            .map(|v| producer.send(FutureRecord::to(topic).payload(v).key(&v[..11]), Duration::from_secs(60)));
        for r in futures::future::join_all(sends).await {
            r.expect("filled");
        }
    }
}

/// Wait for `n` records on `topic`; return the span between the first and last record timestamps.
async fn observe(topic: &str, n: usize, child: &mut Child, peak: &mut (f64, f64)) -> Duration {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka())
        .set("group.id", unique("observer"))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("observer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let (mut first, mut last, mut seen) = (i64::MAX, i64::MIN, 0usize);
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut sampled = Instant::now();
    while seen < n && Instant::now() < deadline {
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await {
            if let Some(ts) = m.timestamp().to_millis() {
                first = first.min(ts);
                last = last.max(ts);
            }
            seen += 1;
        }
        if sampled.elapsed() > Duration::from_millis(200) {
            sampled = Instant::now();
            assert!(child.try_wait().ok().flatten().is_none(), "the variant exited early");
            if let (Some(cpu), Some(rss)) = (proc_cpu_seconds(child.id()), proc_peak_rss_mb(child.id())) {
                *peak = (cpu, rss);
            }
        }
    }
    assert_eq!(seen, n, "the output did not reach {n} records in time");
    if let (Some(cpu), Some(rss)) = (proc_cpu_seconds(child.id()), proc_peak_rss_mb(child.id())) {
        *peak = (cpu, rss);
    }
    Duration::from_millis((last - first).max(1) as u64)
}

fn host_config(dir: &Path, input: &str, output: &str) -> PathBuf {
    let path = dir.join(format!("{output}.toml"));
    std::fs::write(
        &path,
        format!(
            "[kafka]\nbootstrap = \"{}\"\n[[pipeline]]\nname = \"bench\"\nmodule = \"{PASSTHROUGH}\"\ntopics = [\"{input}\"]\ngroup_id = \"{}\"\noutput_topic = \"{output}\"\nconcurrency = 2\n",
            kafka(),
            unique("bench")
        ),
    )
    .expect("config");
    path
}

struct Binaries<'a> {
    host: &'a Path,
    raw: &'a Path,
    root: &'a Path,
}

const VARIANTS: [&str; 3] =
    ["monasca-wasm + passthrough guest", "raw rdkafka loop (no wasm)", "confluent-kafka-python loop"];

/// Start one variant as its own process, draining `input` into `output`.
fn spawn_variant(variant: &str, bins: &Binaries<'_>, dir: &Path, input: &str, output: &str) -> Child {
    let group = unique("bench-raw");
    match variant {
        "monasca-wasm + passthrough guest" => Command::new(bins.host)
            .args(["run", "--summary-every", "0", "--config"])
            .arg(host_config(dir, input, output))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn(),
        "raw rdkafka loop (no wasm)" => {
            Command::new(bins.raw).args([kafka(), input, output, &group]).stdout(Stdio::null()).spawn()
        }
        _ => Command::new("python3")
            .arg(bins.root.join("host/benches/raw_loop.py"))
            .args([kafka(), input, output, &group])
            .stdout(Stdio::null())
            .spawn(),
    }
    .expect("variant starts")
}

fn stop(mut child: Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let host_bin = root.join("target/release/monasca-wasm");
    let raw_bin = root.join("target/release/examples/raw_loop");
    for bin in [&host_bin, &raw_bin] {
        assert!(
            bin.exists(),
            "{} is missing: run `cargo build --release -p monasca-wasm --examples` first",
            bin.display()
        );
    }
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut results = Vec::new();
    for size in [100usize, 1024] {
        let input = unique(&format!("bench-in-{size}"));
        common::create_topic(&input, 6).await;
        fill(&input, n, size).await;
        for (round, variant) in (0..rounds).flat_map(|r| VARIANTS.map(|v| (r, v))) {
            let output = unique("bench-out");
            common::create_topic(&output, 6).await;
            let mut child = spawn_variant(
                variant,
                &Binaries { host: &host_bin, raw: &raw_bin, root: &root },
                dir.path(),
                &input,
                &output,
            );
            let mut peak = (0.0, 0.0);
            let span = observe(&output, n, &mut child, &mut peak).await;
            stop(child);
            let m = Measured {
                variant,
                round,
                ratio: 0.0,
                size,
                rate: n as f64 / span.as_secs_f64(),
                spread: String::new(),
                cpu_per_million: peak.0 / n as f64 * 1e6,
                peak_rss_mb: peak.1,
            };
            eprintln!("{size} B, {variant}: {:.0} msg/s", m.rate);
            results.push(m);
        }
    }

    // One row per (size, variant): the median round by rate.
    let mut rows: Vec<Measured> = Vec::new();
    for size in [100usize, 1024] {
        for variant in VARIANTS {
            let mut runs: Vec<&Measured> = results.iter().filter(|m| m.size == size && m.variant == variant).collect();
            let mut ratios: Vec<f64> = runs
                .iter()
                .filter_map(|m| {
                    let raw =
                        results.iter().find(|r| r.size == size && r.round == m.round && r.variant == VARIANTS[1])?;
                    Some(m.rate / raw.rate)
                })
                .collect();
            ratios.sort_by(f64::total_cmp);
            runs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
            let spread = format!("{:.0}–{:.0}", runs[0].rate, runs[runs.len() - 1].rate);
            let median = runs[runs.len() / 2];
            rows.push(Measured { spread, ratio: ratios[ratios.len() / 2], ..*median });
        }
    }
    let results = rows;

    let rate: usize = std::env::var("LATENCY_RATE").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let mut latency = format!(
        "\nEnd-to-end latency at a steady {rate} messages/s for 5 s (send to receipt, after a warm-up)\n\n\
         | message | variant | p50 ms | p99 ms |\n|---|---|---:|---:|\n"
    );
    let bins = Binaries { host: &host_bin, raw: &raw_bin, root: &root };
    for size in [100usize, 1024] {
        for variant in VARIANTS {
            let (input, output) = (unique("lat-in"), unique("lat-out"));
            common::create_topic(&input, 6).await;
            common::create_topic(&output, 6).await;
            let child = spawn_variant(variant, &bins, dir.path(), &input, &output);
            let (p50, p99) = common::steady_latency(&input, &output, size, rate, rate * 5, "read_uncommitted").await;
            stop(child);
            eprintln!("{size} B, {variant}: p50 {p50:.1} ms, p99 {p99:.1} ms");
            latency.push_str(&format!("| {size} B | {variant} | {p50:.1} | {p99:.1} |\n"));
        }
    }
    let mut table = format!(
        "Kafka -> guest -> Kafka, {n} messages drained from a 6-partition topic, real broker on this machine\n\n\
         (median of {rounds} interleaved rounds, the range of rates in brackets; × raw loop is the median of \
         the per-round ratios to the raw loop run next to it)\n\n\
         | message | variant | messages/s | MB/s | × raw loop | CPU s per million | peak RSS MB |\n|---|---|---:|---:|---:|---:|---:|\n"
    );
    for m in &results {
        table.push_str(&format!(
            "| {} B | {} | {:.0} ({}) | {:.1} | {:.2} | {:.1} | {:.0} |\n",
            m.size,
            m.variant,
            m.rate,
            m.spread,
            m.rate * m.size as f64 / 1e6,
            m.ratio,
            m.cpu_per_million,
            m.peak_rss_mb
        ));
    }
    table.push_str(&latency);
    print!("{table}");
    let reports = root.join("target/bench-reports");
    std::fs::create_dir_all(&reports).expect("reports dir");
    std::fs::write(reports.join("pipeline.md"), &table).expect("report");
}
