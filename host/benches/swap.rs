//! What hot-swapping costs a running pipeline: the same host, the same
//! broker, the same input, once with no swaps and once with a module swapped
//! every second (the `tagger-v1` and `tagger-v2` test guests, alternately,
//! through the admin API), side by side in one run.
//!
//! Run: `cargo build --release -p monasca-wasm && cargo bench -p monasca-wasm --bench swap`
//! (env `MESSAGES`, default 2000000; `RATE`, default 10000 messages/s;
//! `SECONDS`, default 20; `ROUNDS`, default 3). Prints the table and writes
//! `target/bench-reports/swap.md`.
//!
//! Method. Throughput: a 6-partition topic is filled with `MESSAGES` 100-byte
//! values; the host drains it into an output topic (produce effects, acks from
//! the broker) and the rate is counted from the group's first commit to its
//! last. Latency: a fresh host is fed `RATE` messages/s for `SECONDS`; batch
//! latency (cut → effects acknowledged → offset stored) comes from the host's
//! own `monasca_wasm_batch_duration_seconds` histogram, read from `/metrics`
//! at the end: quantiles are the upper bounds of their buckets, and the table
//! counts the batches slower than 50 ms (the stall limit). The two
//! variants alternate round by round; the table gives each variant's median
//! over rounds.

mod common;

use common::{env_number, median};

use monasca_test_programs::{free_port, kafka, unique, TAGGER_V1, TAGGER_V2};
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 6;
const TOKEN: &str = "swap-bench";

fn producer() -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", kafka())
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .create()
        .expect("producer")
}

fn value(i: u64) -> Vec<u8> {
    format!("{i:020}-{}", "x".repeat(79)).into_bytes()
}

/// A host on `input` → `output` with the admin API on `port`.
fn spawn_host(dir: &Path, port: u16, input: &str, output: &str, group: &str) -> Child {
    let config = dir.join(format!("{group}.toml"));
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbootstrap = \"{}\"\n[admin]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n\
             [sinks.tsdb]\ntype = \"null\"\n[[pipeline]]\nname = \"bench\"\nmodule = \"{TAGGER_V1}\"\n\
             topics = [\"{input}\"]\ngroup_id = \"{group}\"\noutput_topic = \"{output}\"\n",
            kafka()
        ),
    )
    .expect("config");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    Command::new(root.join("target/release/monasca-wasm"))
        .args(["run", "--summary-every", "0", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("host starts")
}

async fn wait_ready(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !matches!(reqwest::get(format!("{base}/readyz")).await, Ok(r) if r.status() == 200) {
        assert!(Instant::now() < deadline, "the host never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Swap tagger-v2 / tagger-v1 in every second until `stop`; the number of
/// swaps and the longest deployment call.
fn swapper(base: String, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(u64, Duration)> {
    tokio::spawn(async move {
        let modules = [std::fs::read(TAGGER_V2).expect("v2"), std::fs::read(TAGGER_V1).expect("v1")];
        let client = reqwest::Client::new();
        let (mut swaps, mut longest) = (0u64, Duration::ZERO);
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            let response = client
                .put(format!("{base}/v1/pipelines/bench/module?name=tagger-{}", swaps % 2))
                .bearer_auth(TOKEN)
                .body(modules[(swaps % 2) as usize].clone())
                .send()
                .await
                .expect("deploy");
            assert_eq!(response.status(), 200, "deploy refused: {}", response.text().await.unwrap_or_default());
            longest = longest.max(started.elapsed());
            swaps += 1;
            tokio::time::sleep(Duration::from_secs(1).saturating_sub(started.elapsed())).await;
        }
        (swaps, longest)
    })
}

/// Drain `input` (holding `n` messages): messages per second.
async fn drain(dir: &Path, input: &str, n: u64, swapping: bool) -> (f64, u64) {
    let (output, group, port) = (unique("swapb-out"), unique("swapb"), free_port());
    common::create_topic(&output, PARTITIONS).await;
    let base = format!("http://127.0.0.1:{port}");
    let host = spawn_host(dir, port, input, &output, &group);
    wait_ready(&base).await;
    let stop_swaps = Arc::new(AtomicBool::new(false));
    let swaps = swapping.then(|| swapper(base.clone(), stop_swaps.clone()));
    let reader: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", kafka()).set("group.id", &group).create().expect("reader");
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut first = None;
    let done = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let c = common::committed(&reader, input, PARTITIONS);
        let now = Instant::now();
        if c > 0 && first.is_none() {
            first = Some((now, c));
        }
        if c >= n as i64 {
            break now;
        }
        assert!(now < deadline, "the drain did not finish ({c} of {n})");
    };
    stop_swaps.store(true, Ordering::Relaxed);
    let swaps = match swaps {
        Some(task) => task.await.expect("swapper").0,
        None => 0,
    };
    common::stop(host);
    let (t1, c1) = first.unwrap_or((done, 0));
    ((n as f64 - c1 as f64) / done.duration_since(t1).as_secs_f64().max(0.1), swaps)
}

/// The batch-latency histogram's cumulative buckets from `/metrics`.
async fn batch_histogram(base: &str) -> Vec<(f64, u64)> {
    let text = reqwest::get(format!("{base}/metrics")).await.expect("metrics").text().await.expect("text");
    let prefix = "monasca_wasm_batch_duration_seconds_bucket{pipeline=\"bench\",le=\"";
    text.lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            Some((le, count.parse().ok()?))
        })
        .collect()
}

fn quantile(buckets: &[(f64, u64)], q: f64) -> f64 {
    let total = buckets.last().map(|b| b.1).unwrap_or(0);
    let rank = ((q * total as f64).ceil() as u64).max(1);
    buckets.iter().find(|(_, c)| *c >= rank).map(|(le, _)| *le).unwrap_or(f64::INFINITY)
}

/// Feed `rate`/s for `seconds` to a fresh host: (p50 ms, p99 ms, batches, batches over 50 ms, swaps, longest deploy).
async fn steady(dir: &Path, rate: u64, seconds: u64, swapping: bool) -> (f64, f64, u64, u64, u64, Duration) {
    let (input, output, group, port) = (unique("swaps-in"), unique("swaps-out"), unique("swaps"), free_port());
    common::create_topic(&input, PARTITIONS).await;
    common::create_topic(&output, PARTITIONS).await;
    let base = format!("http://127.0.0.1:{port}");
    let host = spawn_host(dir, port, &input, &output, &group);
    wait_ready(&base).await;
    let stop_swaps = Arc::new(AtomicBool::new(false));
    let swaps = swapping.then(|| swapper(base.clone(), stop_swaps.clone()));
    let producer = producer();
    let start = Instant::now();
    let total = rate * seconds;
    let mut pending = Vec::new();
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        let payload = value(i);
        let record =
            FutureRecord::<(), [u8]>::to(&input).payload(&payload[..]).partition((i % PARTITIONS as u64) as i32);
        pending.push(producer.send_result(record).expect("queued"));
    }
    for p in pending {
        let _ = p.await;
    }
    // Let the last batches settle.
    let reader: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", kafka()).set("group.id", &group).create().expect("reader");
    let deadline = Instant::now() + Duration::from_secs(60);
    while common::committed(&reader, &input, PARTITIONS) < total as i64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_swaps.store(true, Ordering::Relaxed);
    let (swaps, longest) = match swaps {
        Some(task) => task.await.expect("swapper"),
        None => (0, Duration::ZERO),
    };
    let buckets = batch_histogram(&base).await;
    common::stop(host);
    let batches = buckets.last().map(|b| b.1).unwrap_or(0);
    let within_50ms = buckets.iter().find(|(le, _)| *le >= 0.05).map(|b| b.1).unwrap_or(0);
    (quantile(&buckets, 0.5) * 1e3, quantile(&buckets, 0.99) * 1e3, batches, batches - within_50ms, swaps, longest)
}

/// One round of one variant: drain msg/s, batch p50 and p99 (ms), batches,
/// batches over 50 ms, swaps, longest deployment call.
type Row = (f64, f64, f64, u64, u64, u64, Duration);

#[tokio::main]
async fn main() {
    let n: u64 = env_number("MESSAGES", 2_000_000);
    let rate: u64 = env_number("RATE", 10_000);
    let seconds: u64 = env_number("SECONDS", 20);
    let rounds: usize = env_number("ROUNDS", 3);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    assert!(root.join("target/release/monasca-wasm").exists(), "build it first: cargo build --release -p monasca-wasm");
    let dir = tempfile::tempdir().expect("tempdir");
    eprintln!("broker {}", kafka());
    let input = unique("swapb-in");
    common::create_topic(&input, PARTITIONS).await;
    let producer = producer();
    for start in (0..n).step_by(20_000) {
        let values: Vec<Vec<u8>> = (start..(start + 20_000).min(n)).map(value).collect();
        let sends = values.iter().map(|v| {
            producer.send(FutureRecord::<(), [u8]>::to(&input).payload(v.as_slice()), Duration::from_secs(60))
        });
        for r in futures::future::join_all(sends).await {
            r.expect("filled");
        }
    }
    eprintln!("filled {n} messages");

    let mut rows: [Vec<Row>; 2] = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for (i, swapping) in [false, true].into_iter().enumerate() {
            let (throughput, drain_swaps) = drain(dir.path(), &input, n, swapping).await;
            let (p50, p99, batches, slow, swaps, longest) = steady(dir.path(), rate, seconds, swapping).await;
            eprintln!(
                "round {round}, {}: {throughput:.0} msg/s ({drain_swaps} swaps), batch p50 ≤ {p50} ms, p99 ≤ {p99} ms, {slow} of {batches} batches over 50 ms ({swaps} swaps, longest deploy call {longest:?})",
                if swapping { "swap every second" } else { "no swaps" }
            );
            rows[i].push((throughput, p50, p99, batches, slow, swaps + drain_swaps, longest));
        }
    }
    let mut table = format!(
        "Hot-swap cost: {n} messages drained, then {rate} msg/s for {seconds} s, 6 partitions, real broker; median of {rounds} rounds\n\n\
         | variant | drain msg/s | × no swaps | batch p50 ms (≤) | batch p99 ms (≤) | batches over 50 ms | swaps | longest deploy call |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    let base = median(rows[0].iter().map(|r| r.0).collect());
    for (i, name) in ["no swaps", "a swap every second"].into_iter().enumerate() {
        let r = &rows[i];
        let throughput = median(r.iter().map(|r| r.0).collect());
        table.push_str(&format!(
            "| {name} | {throughput:.0} | {:.2} | {} | {} | {} of {} | {} | {:.1} ms |\n",
            throughput / base,
            median(r.iter().map(|r| r.1).collect()),
            median(r.iter().map(|r| r.2).collect()),
            r.iter().map(|r| r.4).sum::<u64>(),
            r.iter().map(|r| r.3).sum::<u64>(),
            r.iter().map(|r| r.5).sum::<u64>(),
            r.iter().map(|r| r.6).max().unwrap_or_default().as_secs_f64() * 1e3,
        ));
    }
    print!("{table}");
    let reports = root.join("target/bench-reports");
    std::fs::create_dir_all(&reports).expect("reports dir");
    std::fs::write(reports.join("swap.md"), &table).expect("report");
}
