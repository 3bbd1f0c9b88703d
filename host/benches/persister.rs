//! Persister throughput and latency into a real InfluxDB, side by side in one
//! run on the same broker and the same InfluxDB:
//!
//! 1. monasca-persister 9.0.0 from PyPI (confluent-kafka client), with
//!    `num_processors` 1 and 2;
//! 2. this host with the persister guest;
//! 3. a raw Rust consumer writing pre-rendered line protocol
//!    (`examples/raw_influx.rs`): InfluxDB's limit on this machine.
//!
//! Run: `cargo bench -p monasca-wasm --bench persister` (env `MESSAGES`,
//! default 1000000; `LATENCY_RATE`, default 5000 metrics/s; `VARIANTS`, a
//! comma-separated subset of `persister1,persister2,host,raw,host-compare`,
//! default all; the ratio column is then to the first variant run;
//! `COMPARE_PERSISTER`, the .wasm of another build of the persister guest,
//! run as `host-compare` beside this build's). Needs Java 17 +
//! Maven (broker), Debian's `influxdb` (installed by `scripts/influxdb.sh`
//! when missing) and Python 3 with pip: monasca-persister is installed into
//! a virtualenv under `~/.cache/monasca-wasm/persister-venv` on first use.
//! Prints the table and writes `target/bench-reports/persister.md`.
//!
//! Method. Throughput: the input topic (6 partitions) is filled first; each
//! variant drains it into its own database; progress is the group's committed
//! offsets (every variant commits only what it wrote), sampled every 200 ms;
//! the rate is counted from the first commit to the last, so start-up is
//! left out; the database must then hold every metric. CPU seconds and peak
//! RSS are those of the variant's whole process tree (monasca-persister forks
//! one process per `num_processors`); CPU per million is counted over the same
//! window as the rate (first to last commit), and the CPU spent before the
//! first commit (start-up) is reported on its own, as is the whole-run figure. Latency: each variant on an empty topic,
//! warmed up, then fed at a steady rate for 10 s; the k-th metric's latency is
//! the time from its send until the database held k metrics.

mod common;

use monasca_test_programs::{influx, influxdb, kafka, unique, PERSISTER};
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::FutureRecord;
use rdkafka::ClientConfig;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 6;

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Persister(u32),
    /// The host with the persister guest; `true`: the guest build named by
    /// `COMPARE_PERSISTER` (another build, to weigh a change side by side).
    Host(bool),
    Raw,
}

/// The variants named by `VARIANTS` (all when unset), in the table's order.
fn selected_variants() -> Vec<Variant> {
    let all = [
        ("persister1", Variant::Persister(1)),
        ("persister2", Variant::Persister(2)),
        ("host", Variant::Host(false)),
        ("raw", Variant::Raw),
        ("host-compare", Variant::Host(true)),
    ];
    let wanted = std::env::var("VARIANTS").unwrap_or_default();
    let wanted: Vec<&str> = wanted.split(',').map(str::trim).filter(|w| !w.is_empty()).collect();
    for w in &wanted {
        assert!(
            all.iter().any(|(name, _)| name == w),
            "VARIANTS: unknown variant {w:?} (expected persister1, persister2, host, raw, host-compare)"
        );
    }
    let compare = std::env::var_os("COMPARE_PERSISTER").is_some();
    if !wanted.is_empty() {
        // In the order given: to see whether running first or second matters.
        return wanted.iter().filter_map(|w| all.iter().find(|(n, _)| n == w)).map(|(_, v)| *v).collect();
    }
    all.into_iter().filter(|(_, v)| *v != Variant::Host(true) || compare).map(|(_, v)| v).collect()
}

impl Variant {
    fn name(self) -> String {
        match self {
            Variant::Persister(n) => format!("monasca-persister 9.0.0, num_processors={n}"),
            Variant::Host(false) => "monasca-wasm + persister guest".into(),
            Variant::Host(true) => "monasca-wasm + persister guest, `COMPARE_PERSISTER` build".into(),
            Variant::Raw => "raw Rust consumer, pre-rendered line protocol".into(),
        }
    }

    /// The raw consumer reads line protocol; the others metric envelopes.
    fn reads_lines(self) -> bool {
        self == Variant::Raw
    }
}

struct Setup {
    root: PathBuf,
    venv: PathBuf,
    dir: tempfile::TempDir,
}

fn venv() -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let venv = PathBuf::from(home).join(".cache/monasca-wasm/persister-venv");
    if !venv.join("bin/monasca-persister").exists() {
        eprintln!("installing monasca-persister 9.0.0 into {} (once)", venv.display());
        let ok = Command::new("python3").arg("-m").arg("venv").arg(&venv).status().is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "monasca-persister==9.0.0", "influxdb", "confluent-kafka"])
                .status()
                .is_ok_and(|s| s.success());
        assert!(ok, "cannot install monasca-persister 9.0.0 from PyPI into {}", venv.display());
    }
    venv
}

fn spawn(variant: Variant, setup: &Setup, topic: &str, group: &str, database: &str) -> Child {
    let url = influxdb();
    let mut command = match variant {
        Variant::Persister(processors) => {
            let port = url.rsplit(':').next().unwrap_or("8086");
            let conf = setup.dir.path().join(format!("{group}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "[DEFAULT]\nuse_stderr = True\n[kafka]\nlegacy_kafka_client_enabled = False\nnum_processors = {processors}\n\
                     max_wait_time_seconds = 1\n[kafka_metrics]\nuri = {}\ntopic = {topic}\ngroup_id = {group}\nbatch_size = 5000\n\
                     [kafka_alarm_history]\nenabled = False\n[kafka_events]\nenabled = False\n\
                     [influxdb]\ndatabase_name = {database}\nip_address = 127.0.0.1\nport = {port}\nbatch_size = 5000\nuser =\npassword =\n",
                    kafka()
                ),
            )
            .expect("persister.conf");
            let mut c = Command::new(setup.venv.join("bin/monasca-persister"));
            c.arg("--config-file").arg(conf);
            c
        }
        Variant::Host(compare) => {
            let module = match compare {
                true => std::env::var("COMPARE_PERSISTER").expect("host-compare needs COMPARE_PERSISTER (a .wasm)"),
                false => PERSISTER.to_string(),
            };
            let config = setup.dir.path().join(format!("{group}.toml"));
            std::fs::write(
                &config,
                format!(
                    "[kafka]\nbootstrap = \"{}\"\n[sinks.tsdb]\ntype = \"influxdb\"\nurl = \"{url}\"\ndatabase = \"{database}\"\n\
                     batch_points = 5000\n[[pipeline]]\nname = \"persister\"\nmodule = \"{module}\"\ntopics = [\"{topic}\"]\n\
                     group_id = \"{group}\"\nconcurrency = 2\n[pipeline.batch]\nmax_messages = 5000\n",
                    kafka()
                ),
            )
            .expect("host.toml");
            let mut c = Command::new(setup.root.join("target/release/monasca-wasm"));
            c.args(["run", "--summary-every", "0", "--config"]).arg(config).env("RUST_LOG", "warn");
            c
        }
        Variant::Raw => {
            let mut c = Command::new(setup.root.join("target/release/examples/raw_influx"));
            c.args([kafka(), topic, group, url, database]);
            c
        }
    };
    command.stdout(Stdio::null()).stderr(Stdio::null()).process_group(0).spawn().expect("variant starts")
}

/// The `i`-th input of a variant: a metric envelope, or its line.
fn input(i: u64, lines: bool) -> Vec<u8> {
    let envelope = monasca_wasm::generate::metric_envelope(i);
    if !lines {
        return envelope;
    }
    let mut line = String::with_capacity(256);
    persister::write_metric_line(&mut line, &envelope).expect("generated envelopes are valid");
    line.into_bytes()
}

async fn fill(topic: &str, n: u64, lines: bool) {
    let producer = common::producer();
    for start in (0..n).step_by(20_000) {
        let values: Vec<Vec<u8>> = (start..(start + 20_000).min(n)).map(|i| input(i, lines)).collect();
        let sends = values
            .iter()
            .map(|v| producer.send(FutureRecord::<(), [u8]>::to(topic).payload(v.as_slice()), Duration::from_secs(60)));
        for r in futures::future::join_all(sends).await {
            r.expect("filled");
        }
    }
}

struct Drained {
    rate: f64,
    /// CPU seconds per million metrics between the first and the last commit.
    cpu_per_million: f64,
    /// CPU seconds up to the first commit (start-up, module compile, first batches).
    startup_cpu: f64,
    /// CPU seconds per million over the whole run, start-up included.
    total_cpu_per_million: f64,
    peak_rss_mb: f64,
}

async fn drain(variant: Variant, setup: &Setup, topic: &str, n: u64) -> Drained {
    let (group, database) = (unique("pbench"), unique("pbench").replace('-', "_"));
    let mut child = spawn(variant, setup, topic, &group, &database);
    let reader: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", kafka()).set("group.id", &group).create().expect("reader");
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut first = None;
    let (done, usage) = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = Instant::now();
        let c = common::committed(&reader, topic, PARTITIONS);
        let usage = common::tree_usage(child.id());
        assert!(child.try_wait().ok().flatten().is_none(), "{} exited early", variant.name());
        if c > 0 && first.is_none() {
            first = Some((now, c, usage.0));
        }
        if c >= n as i64 {
            break (now, usage);
        }
        assert!(now < deadline, "{} did not finish within 900 s ({c} of {n} committed)", variant.name());
    };
    common::stop(child);
    let stored = influx::count(influxdb(), &database).await;
    assert_eq!(stored, n as usize, "{} stored {stored} of {n} metrics", variant.name());
    let _ = influx::query(influxdb(), &database, &format!("DROP DATABASE \"{database}\"")).await;
    let (t1, c1, cpu1) = first.unwrap_or((done, 0, 0.0));
    let steady = (n as f64 - c1 as f64).max(1.0);
    let rate = steady / done.duration_since(t1).as_secs_f64().max(0.2);
    Drained {
        rate,
        cpu_per_million: (usage.0 - cpu1) / steady * 1e6,
        startup_cpu: cpu1,
        total_cpu_per_million: usage.0 / n as f64 * 1e6,
        peak_rss_mb: usage.1,
    }
}

/// p50 and p99 latency (ms) at a steady `rate` for 10 s.
async fn latency(variant: Variant, setup: &Setup, rate: u64) -> (f64, f64) {
    let topic = unique("plat");
    common::create_topic(&topic, PARTITIONS).await;
    let (group, database) = (unique("plat"), unique("plat").replace('-', "_"));
    let child = spawn(variant, setup, &topic, &group, &database);
    let producer = common::producer();
    let url = influxdb();
    // Warm up: the variant has joined and written once.
    let warm = input(10_000_000, variant.reads_lines());
    let warmed = Instant::now() + Duration::from_secs(90);
    while influx::count(url, &database).await < 1 {
        assert!(Instant::now() < warmed, "{} never stored the warm-up metric", variant.name());
        let _ =
            producer.send(FutureRecord::<(), [u8]>::to(&topic).payload(warm.as_slice()), Duration::from_secs(5)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let total = rate * 10;
    let values: Vec<Vec<u8>> = (0..total).map(|i| input(i, variant.reads_lines())).collect();
    let started = Instant::now();
    let mut sent_at = Vec::with_capacity(total as usize);
    let sender = {
        let (producer, topic) = (producer.clone(), topic.clone());
        let per_tick = (rate / 100).max(1) as usize;
        tokio::spawn(async move {
            let mut times = Vec::with_capacity(values.len());
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            for chunk in values.chunks(per_tick) {
                tick.tick().await;
                for v in chunk {
                    times.push(Instant::now());
                    while producer.send_result(FutureRecord::<(), [u8]>::to(&topic).payload(v.as_slice())).is_err() {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
            times
        })
    };
    let mut seen: Vec<(Instant, usize)> = Vec::new();
    let deadline = started + Duration::from_secs(90);
    loop {
        let count = influx::count(url, &database).await.saturating_sub(1);
        seen.push((Instant::now(), count));
        if count >= total as usize || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sent_at.extend(sender.await.expect("sender"));
    common::stop(child);
    let _ = influx::query(url, &database, &format!("DROP DATABASE \"{database}\"")).await;
    let mut latencies: Vec<f64> = sent_at
        .iter()
        .enumerate()
        .map(|(k, sent)| {
            let stored = seen.iter().find(|(_, c)| *c > k).map(|(t, _)| *t).unwrap_or(deadline);
            stored.saturating_duration_since(*sent).as_secs_f64() * 1000.0
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    (at(0.5), at(0.99))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: u64 = std::env::var("MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let rate: u64 = std::env::var("LATENCY_RATE").ok().and_then(|v| v.parse().ok()).unwrap_or(5000);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for bin in ["target/release/monasca-wasm", "target/release/examples/raw_influx"] {
        assert!(
            root.join(bin).exists(),
            "{bin} is missing: run `cargo build --release -p monasca-wasm --examples` first"
        );
    }
    let setup = Setup { root, venv: venv(), dir: tempfile::tempdir().expect("tempdir") };
    eprintln!("broker {}, InfluxDB {}", kafka(), influxdb());
    let (envelopes, lines) = (unique("pbench-metrics"), unique("pbench-lines"));
    common::create_topic(&envelopes, PARTITIONS).await;
    common::create_topic(&lines, PARTITIONS).await;
    fill(&envelopes, n, false).await;
    fill(&lines, n, true).await;
    eprintln!("filled {n} metric envelopes and their {n} lines");

    let variants = selected_variants();
    let mut table = format!(
        "Persister: {n} metric envelopes from a 6-partition topic into InfluxDB 1.x, real broker and InfluxDB on this machine\n\n\
         | variant | metrics/s | × first variant | CPU s per million | start-up CPU s | CPU s per million, start-up included | peak RSS MB | p50 ms at {rate}/s | p99 ms at {rate}/s |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    let mut baseline = None;
    for variant in variants {
        let topic = if variant.reads_lines() { &lines } else { &envelopes };
        let d = drain(variant, &setup, topic, n).await;
        let (p50, p99) = latency(variant, &setup, rate).await;
        let base = *baseline.get_or_insert(d.rate);
        eprintln!(
            "{}: {:.0} metrics/s, {:.2} CPU s per million (start-up {:.2} s), p50 {p50:.0} ms, p99 {p99:.0} ms",
            variant.name(),
            d.rate,
            d.cpu_per_million,
            d.startup_cpu
        );
        table.push_str(&format!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {p50:.0} | {p99:.0} |\n",
            variant.name(),
            d.rate,
            d.rate / base,
            d.cpu_per_million,
            d.startup_cpu,
            d.total_cpu_per_million,
            d.peak_rss_mb
        ));
    }
    print!("{table}");
    let reports = setup.root.join("target/bench-reports");
    std::fs::create_dir_all(&reports).expect("reports dir");
    std::fs::write(reports.join("persister.md"), &table).expect("report");
}
