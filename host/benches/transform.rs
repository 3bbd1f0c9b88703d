//! The transform guest on a real broker, side by side with the passthrough
//! in one run: metrics per second through each, at-least-once and
//! exactly-once; the host's peak memory with 100,000 open series; and
//! monasca-transform 2.0.0 itself on part of the same input.
//!
//! Run: `cargo bench -p monasca-wasm --bench transform` (env `HOSTS`, agent
//! hosts of the generated input, default 44: about 300,000 metrics over two
//! hours; `ROUNDS`, default 3; `SERIES`, open series of the memory run,
//! default 100000; `ORIGINAL_METRICS`, metrics given to the original,
//! default 20000, 0 to skip it). Prints the tables and writes
//! `target/bench-reports/transform.md`.
//!
//! Method:
//! - Throughput: the generated agent metrics (every event type of the
//!   shipped specs, two hours, a closing metric per partition) fill a
//!   6-partition topic first; each variant, as its own `monasca-wasm run`
//!   process, drains it; the variants interleave over the rounds and the
//!   median round is reported, with the ratio to the passthrough of the same
//!   delivery in the same round. Rate = metrics committed by the group over
//!   the span from its first to its last commit (start-up excluded), polled
//!   every 50 ms. The transform's stage two (the partials of 6 partitions
//!   merged into the `_agg` metrics) runs in the same pipeline and process.
//! - Memory: `SERIES` host reports, one per host (one open window group
//!   each), through the transform exactly-once: peak RSS against the
//!   passthrough's on the same input.
//! - The original: `scripts/peers/transform_oracle.sh` (its own code on a
//!   local Spark, 2 cores, the metrics as one batch, then its pre-hourly
//!   stage) on the first `ORIGINAL_METRICS` metrics: metrics over wall time.

mod common;

use common::{env_number, median};

use monasca_test_programs::agents::{closer, open_series, Agents, HOUR, START};
use monasca_test_programs::{kafka, unique, PASSTHROUGH, TRANSFORM};
use rdkafka::consumer::BaseConsumer;
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
    transform: bool,
    exactly_once: bool,
}

const VARIANTS: [Variant; 4] = [
    Variant { label: "passthrough, at-least-once", transform: false, exactly_once: false },
    Variant { label: "transform, at-least-once", transform: true, exactly_once: false },
    Variant { label: "passthrough, exactly-once", transform: false, exactly_once: true },
    Variant { label: "transform, exactly-once", transform: true, exactly_once: true },
];

/// Fill `topic` with `values` (unkeyed), then one closer per partition at `close`.
async fn fill(topic: &str, values: &[String], close: Option<i64>) {
    let producer = common::producer();
    for chunk in values.chunks(10_000) {
        let sends = chunk
            .iter()
            .map(|v| producer.send(FutureRecord::<(), str>::to(topic).payload(v.as_str()), Duration::from_secs(60)));
        for r in futures::future::join_all(sends).await {
            r.expect("filled");
        }
    }
    if let Some(ts) = close {
        for p in 0..PARTITIONS {
            let value = closer(ts, p);
            let record = FutureRecord::<(), str>::to(topic).payload(value.as_str()).partition(p);
            producer.send(record, Duration::from_secs(60)).await.expect("closer");
        }
    }
}

/// A host configuration for `variant` draining `input`; returns it and the group.
async fn config(dir: &Path, variant: Variant, input: &str) -> (PathBuf, String) {
    let name = unique("transform-bench");
    let output = format!("{name}.out");
    common::create_topic(&output, PARTITIONS).await;
    let delivery = if variant.exactly_once { "exactly-once" } else { "at-least-once" };
    let (module, topics, options) = if variant.transform {
        let partials = format!("{name}.partials");
        common::create_topic(&partials, 1).await;
        let options = format!(
            "[pipeline.config]\npartials-topic = \"{partials}\"\nsources = \"{PARTITIONS}\"\n\
             dead-letter-topic = \"{name}.dlq\"\n"
        );
        (TRANSFORM, format!("\"{input}\", \"{partials}\""), options)
    } else {
        (PASSTHROUGH, format!("\"{input}\""), String::new())
    };
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "[kafka]\nbootstrap = \"{}\"\n[[pipeline]]\nname = \"{name}\"\nmodule = \"{module}\"\ntopics = [{topics}]\n\
             group_id = \"{name}\"\noutput_topic = \"{output}\"\ndead_letter_topic = \"{name}.dlq\"\n\
             delivery = \"{delivery}\"\n{options}",
            kafka(),
        ),
    )
    .expect("config");
    (path, name)
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

/// One variant drains `input` (`n` metrics): metrics/s and peak RSS (MB).
async fn drain(host: &Path, dir: &Path, variant: Variant, input: &str, n: i64) -> (f64, f64) {
    let (config, group) = config(dir, variant, input).await;
    let reader: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", kafka()).set("group.id", &group).create().expect("reader");
    let child = spawn(host, &config);
    let deadline = Instant::now() + Duration::from_secs(900);
    let (mut first, mut rss) = (None, 0.0f64);
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(common::alive(child.id()), "{}: the host exited early", variant.label);
        assert!(Instant::now() < deadline, "{}: not drained in time", variant.label);
        rss = rss.max(common::group_usage(child.id()).1);
        let committed = common::committed(&reader, input, PARTITIONS);
        if committed > 0 && first.is_none() {
            first = Some((Instant::now(), committed));
        }
        if committed >= n {
            break;
        }
    }
    common::stop(child);
    let (at, from) = first.unwrap_or((Instant::now(), 0));
    ((n - from) as f64 / at.elapsed().as_secs_f64().max(1e-3), rss)
}

/// monasca-transform 2.0.0 on `metrics`: metrics per second of wall time.
fn original(root: &Path, dir: &Path, metrics: &[String]) -> f64 {
    let input = dir.join("original-input.jsonl");
    std::fs::write(&input, metrics.join("\n") + "\n").expect("input");
    let started = Instant::now();
    let status = Command::new("bash")
        .arg(root.join("scripts/peers/transform_oracle.sh"))
        .arg(&input)
        .arg(dir.join("original-output.jsonl"))
        .status()
        .expect("the original runs");
    assert!(status.success(), "scripts/peers/transform_oracle.sh failed: {status}");
    metrics.len() as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (hosts, rounds, series) =
        (env_number::<usize>("HOSTS", 44), env_number::<usize>("ROUNDS", 3), env_number::<usize>("SERIES", 100_000));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let host = root.join("target/release/monasca-wasm");
    assert!(host.exists(), "{} is missing: run `cargo build --release -p monasca-wasm` first", host.display());
    let dir = tempfile::tempdir().expect("tempdir");

    let metrics = Agents { hosts, interval_s: 30, hours: 2, seed: 5 }.metrics();
    let n = metrics.len() as i64 + PARTITIONS as i64;
    let input = unique("transform-bench-in");
    common::create_topic(&input, PARTITIONS).await;
    fill(&input, &metrics, Some(START + 2 * HOUR + 700_000)).await;
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new(); VARIANTS.len()];
    for round in 0..rounds {
        for (i, variant) in VARIANTS.iter().enumerate() {
            let (rate, rss) = drain(&host, dir.path(), *variant, &input, n).await;
            eprintln!("round {round}, {}: {rate:.0} metrics/s, peak RSS {rss:.0} MB", variant.label);
            runs[i].push((rate, rss));
        }
    }
    let mut report = format!(
        "{n} agent metrics (every event type of the shipped specs, {hosts} hosts, two hours) drained from a \
         6-partition topic; median of {rounds} interleaved rounds (range in brackets); × passthrough: the median \
         of the per-round ratios to the passthrough of the same delivery\n\n\
         | variant | metrics/s | × passthrough | peak RSS MB |\n|---|---:|---:|---:|\n"
    );
    for (i, variant) in VARIANTS.iter().enumerate() {
        let rates: Vec<f64> = runs[i].iter().map(|r| r.0).collect();
        let base = if variant.transform { i - 1 } else { i };
        let ratios: Vec<f64> = runs[i].iter().zip(&runs[base]).map(|(r, b)| r.0 / b.0).collect();
        let (lo, hi) = (rates.iter().copied().fold(f64::MAX, f64::min), rates.iter().copied().fold(0.0, f64::max));
        report.push_str(&format!(
            "| {} | {:.0} ({lo:.0}–{hi:.0}) | {:.2} | {:.0} |\n",
            variant.label,
            median(rates.clone()),
            median(ratios),
            median(runs[i].iter().map(|r| r.1).collect()),
        ));
    }

    // Memory with open series.
    let input = unique("transform-bench-series");
    common::create_topic(&input, PARTITIONS).await;
    fill(&input, &open_series(series, START), None).await;
    let (_, rss_pass) = drain(&host, dir.path(), VARIANTS[2], &input, series as i64).await;
    let (_, rss_transform) = drain(&host, dir.path(), VARIANTS[3], &input, series as i64).await;
    report.push_str(&format!(
        "\nOpen series: {series} host reports in one open window (one group each), exactly-once\n\n\
         | measure | value |\n|---|---:|\n\
         | peak RSS, transform / passthrough on the same input | {rss_transform:.0} MB / {rss_pass:.0} MB |\n\
         | host memory per 100,000 open series (RSS difference) | {:.1} MB |\n",
        (rss_transform - rss_pass) / (series as f64 / 100_000.0)
    ));

    let original_n = env_number::<usize>("ORIGINAL_METRICS", 20_000).min(metrics.len());
    if original_n > 0 {
        let rate = original(&root, dir.path(), &metrics[..original_n]);
        let ours = median(runs[3].iter().map(|r| r.0).collect());
        report.push_str(&format!(
            "\nmonasca-transform 2.0.0 (its own code on a local Spark, `scripts/peers/transform_oracle.sh`) on the \
             first {original_n} of the same metrics as one batch plus its pre-hourly stage: {rate:.0} metrics/s \
             of wall time; the transform guest exactly-once: {:.0}×\n",
            ours / rate
        ));
    }
    print!("{report}");
    let reports = root.join("target/bench-reports");
    std::fs::create_dir_all(&reports).expect("reports dir");
    std::fs::write(reports.join("transform.md"), &report).expect("report");
}
