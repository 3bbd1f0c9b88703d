//! Notification throughput to a local webhook receiver, side by side in one
//! run on the same broker, the same MariaDB and the same receiver:
//!
//! 1. monasca-notification 9.0.0 from PyPI with its default 4 notification
//!    engine processes (`scripts/peers/notification_peer.sh`);
//! 2. this host with the notification guest (ledger in MariaDB);
//! 3. a raw async HTTP client (`reqwest`, 64 requests in flight) sending the
//!    same webhook payloads: the receiver's limit on this machine;
//! 4. the same on hyper's HTTP/1.1 connections pooled by hand, a leaner
//!    client, so a higher limit (the host's own path for `http` URLs is
//!    built the same way).
//!
//! The raw clients run in a process of their own (this bench, started again
//! with `NOTIFICATION_BENCH_RAW_CLIENT` set), as the host and the original
//! do: the receiver is across a socket between processes for every variant.
//! Sharing the receiver's process and runtime made the hyper client about 8 %
//! faster (`RAW_IN_PROCESS=1` runs them that way).
//!
//! Each runs twice: alarm definitions with one webhook method, then three.
//!
//! Run: `cargo bench -p monasca-wasm --bench notification` (env
//! `TRANSITIONS`, default 200000, for the host and the raw clients;
//! `PEER_TRANSITIONS`, default 2000, for monasca-notification, which is far
//! slower; `VARIANTS`, a comma-separated subset of
//! `peer,host,raw,raw-hyper,host-compare`; `COMPARE_NOTIFICATION`, the .wasm
//! of another build of the guest, run as `host-compare` beside this build's;
//! `METHODS`, the methods per alarm to run, default `1,3`; `HOST_IN_FLIGHT`,
//! the host's `[notifiers] max_in_flight`, default its own default, 128;
//! `HOST_CONCURRENCY`, the host pipeline's `concurrency`, default 4, one
//! per partition (2, the host's default, measured the same);
//! `RAW_IN_FLIGHT`, the raw client's requests in flight, default 64, its
//! best here: 128 is no faster, the client and receiver being CPU-bound). Needs
//! Java 17 + Maven (broker), Debian's MariaDB (installed by
//! `scripts/mariadb.sh` when missing) and Python 3 with pip. Prints the
//! table and writes `target/bench-reports/notification.md`.
//!
//! Method. The alarm topic (4 partitions, so that the original's 4 engines
//! share it) is filled first with transitions of one alarm definition whose
//! methods point at the receiver; then the variant starts and drains it.
//! The rate is the steady one: transitions per second from the request that
//! made a tenth of those expected to the one that made nine tenths, both
//! timed by the receiver (start-up and tail left out for every variant
//! alike: a host that ran batches ahead before its first request is not
//! flattered, which first-to-last timing of short runs did, by up to a
//! third); every expected request must arrive. CPU is the variant's whole
//! process tree between the watcher's readings at those marks (for the raw
//! clients, the benchmark's processes: receiver and client); machine CPU, the
//! whole machine's busy time. A variant whose start-up script returns after
//! most of its requests (the original's, with few transitions) gets `–` for
//! CPU rather than a wrong figure: give it more (`PEER_TRANSITIONS`).

mod common;

use common::env_number;

use axum::extract::State;
use monasca_test_programs::{kafka, mariadb, unique, NOTIFICATION};
use monasca_wasm::config::{DatabaseConfig, Secret};
use monasca_wasm::databases::Database;
use rdkafka::producer::FutureRecord;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 4;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Variant {
    Peer,
    /// The host with the notification guest; `true`: the guest build named
    /// by `COMPARE_NOTIFICATION` (another build, to weigh a change side by side).
    Host(bool),
    Raw,
    RawHyper,
}

impl Variant {
    fn name(self) -> String {
        match self {
            Variant::Peer => "monasca-notification 9.0.0, 4 engines".to_string(),
            Variant::Host(false) => "monasca-wasm + notification guest".to_string(),
            Variant::Host(true) => "monasca-wasm + notification guest, `COMPARE_NOTIFICATION` build".to_string(),
            Variant::Raw => format!("raw async HTTP client (reqwest, {} in flight)", raw_in_flight()),
            Variant::RawHyper => format!("raw async HTTP client (hyper connections, {} in flight)", raw_in_flight()),
        }
    }
}

fn selected() -> Vec<Variant> {
    let all = [
        ("peer", Variant::Peer),
        ("host", Variant::Host(false)),
        ("raw", Variant::Raw),
        ("raw-hyper", Variant::RawHyper),
        ("host-compare", Variant::Host(true)),
    ];
    let wanted = std::env::var("VARIANTS").unwrap_or_default();
    let wanted: Vec<&str> = wanted.split(',').map(str::trim).filter(|w| !w.is_empty()).collect();
    for w in &wanted {
        assert!(
            all.iter().any(|(n, _)| n == w),
            "VARIANTS: unknown variant {w:?} (expected peer, host, raw, raw-hyper, host-compare)"
        );
    }
    let compare = std::env::var_os("COMPARE_NOTIFICATION").is_some();
    if !wanted.is_empty() {
        // In the order given: to see whether running first or second matters.
        return wanted.iter().filter_map(|w| all.iter().find(|(n, _)| n == w)).map(|(_, v)| *v).collect();
    }
    all.into_iter().filter(|(_, v)| *v != Variant::Host(true) || compare).map(|(_, v)| v).collect()
}

/// A CPU figure to three places, or `–` when there is none.
fn three(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "–".to_string()
    }
}

/// The raw clients' requests in flight.
fn raw_in_flight() -> usize {
    env_number::<u64>("RAW_IN_FLIGHT", 64) as usize
}

/// Requests the receiver answered, and when the request that made a tenth
/// and nine tenths of those expected arrived.
#[derive(Default)]
struct Hits {
    count: AtomicU64,
    expected: AtomicU64,
    marks: Mutex<[Option<Instant>; 2]>,
}

impl Hits {
    fn reset(&self, expected: u64) {
        self.count.store(0, Ordering::SeqCst);
        self.expected.store(expected, Ordering::SeqCst);
        *self.marks.lock().unwrap_or_else(|p| p.into_inner()) = [None, None];
    }

    /// The request numbers of the two marks.
    fn thresholds(expected: u64) -> [u64; 2] {
        [expected.div_ceil(10).max(1), (expected * 9).div_ceil(10).max(1)]
    }
}

async fn hit(State(hits): State<Arc<Hits>>, _body: axum::body::Bytes) -> &'static str {
    let n = hits.count.fetch_add(1, Ordering::SeqCst) + 1;
    let thresholds = Hits::thresholds(hits.expected.load(Ordering::Relaxed));
    if let Some(at) = thresholds.iter().position(|t| *t == n) {
        hits.marks.lock().unwrap_or_else(|p| p.into_inner())[at] = Some(Instant::now());
    }
    r#"{"ok": true}"#
}

/// The receiver: every request counts, every answer is 200.
async fn receiver(hits: Arc<Hits>) -> String {
    let app = axum::Router::new().fallback(hit).with_state(hits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("receiver binds");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One alarm definition with `methods` webhooks to `url`.
async fn define(db: &Database, definition: &str, methods: usize, url: &str) {
    let run = |sql: &str, params: Vec<String>| {
        let sql = sql.to_string();
        async move { db.execute(&sql, &params).await.unwrap_or_else(|e| panic!("{sql}: {e}")) }
    };
    run("INSERT INTO alarm_definition (id, tenant_id, name) VALUES (?, 'bench', 'bench')", vec![definition.into()])
        .await;
    for m in 0..methods {
        let id = format!("{definition}-m{m}");
        run(
            "INSERT INTO notification_method (id, tenant_id, name, type, address, period) VALUES (?, 'bench', ?, 'WEBHOOK', ?, 0)",
            vec![id.clone(), format!("hook {m}"), format!("{url}/hook/{m}")],
        )
        .await;
        run(
            "INSERT INTO alarm_action (alarm_definition_id, alarm_state, action_id) VALUES (?, 'ALARM', ?)",
            vec![definition.into(), id],
        )
        .await;
    }
}

fn transition(definition: &str, i: u64, now_ms: u128) -> String {
    serde_json::json!({"alarm-transitioned": {
        "tenantId": "bench", "alarmId": format!("{definition}-alarm-{i}"), "alarmDefinitionId": definition,
        "alarmName": "cpu high", "alarmDescription": "cpu above 90% for 3 minutes",
        "metrics": [{"id": null, "name": "cpu.idle_perc", "dimensions": {"hostname": format!("compute-{}", i % 100), "service": "compute"}}],
        "oldState": "OK", "newState": "ALARM", "actionsEnabled": true,
        "stateChangeReason": "Thresholds were exceeded for the sub-alarms: avg(cpu.idle_perc) < 10.0 with the values: [7.5]",
        "severity": "HIGH", "link": null, "lifecycleState": null, "subAlarms": [], "timestamp": now_ms as u64}})
    .to_string()
}

async fn fill(topic: &str, values: &[String]) {
    let producer = common::producer();
    let keys: Vec<String> = (0..values.len()).map(|i| i.to_string()).collect();
    for (chunk, keys) in values.chunks(10_000).zip(keys.chunks(10_000)) {
        let sends: Vec<_> = chunk
            .iter()
            .zip(keys)
            .map(|(v, key)| {
                let record = FutureRecord::to(topic).payload(v.as_bytes()).key(key.as_bytes());
                producer.send(record, Duration::from_secs(30))
            })
            .collect();
        for delivery in futures::future::join_all(sends).await {
            delivery.map_err(|(e, _)| e).expect("filled");
        }
    }
}

/// A variant draining the topic.
enum Running {
    /// This host, our child.
    Host(Child),
    /// monasca-notification, started (and stopped) by its script.
    Peer { dir: PathBuf, pid: u32 },
}

impl Running {
    fn pid(&self) -> u32 {
        match self {
            Running::Host(child) => child.id(),
            Running::Peer { pid, .. } => *pid,
        }
    }

    fn stop(self) {
        match self {
            Running::Host(child) => common::stop(child),
            Running::Peer { dir, .. } => {
                let script = root().join("scripts/peers/notification_peer.sh");
                let _ = Command::new(script).arg("stop").arg(dir).stdout(Stdio::null()).status();
            }
        }
    }
}

/// Start a variant that drains `topic`.
fn spawn(variant: Variant, dir: &std::path::Path, topic: &str, group: &str) -> Running {
    if variant == Variant::Peer {
        let peer_dir = dir.join(group);
        let output = Command::new(root().join("scripts/peers/notification_peer.sh"))
            .arg("start")
            .arg(&peer_dir)
            .args(["--kafka", kafka(), "--mysql", mariadb(), "--group", group, "--alarm-topic", topic])
            .args(["--processes", "4", "--partitions", &PARTITIONS.to_string()])
            .output()
            .expect("scripts/peers/notification_peer.sh runs");
        assert!(
            output.status.success(),
            "monasca-notification did not start:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let pid = String::from_utf8_lossy(&output.stdout).trim().parse().expect("the peer's pid");
        return Running::Peer { dir: peer_dir, pid };
    }
    let mut command = match variant {
        Variant::Host(compare) => {
            let module = match compare {
                true => {
                    std::env::var("COMPARE_NOTIFICATION").expect("host-compare needs COMPARE_NOTIFICATION (a .wasm)")
                }
                false => NOTIFICATION.to_string(),
            };
            let config = dir.join(format!("{group}.toml"));
            let db = mariadb();
            std::fs::write(
                &config,
                format!(
                    "[kafka]\nbootstrap = \"{}\"\n[databases.mon]\ntype = \"mysql\"\nurl = \"{db}\"\n\
                     [notifiers]\nallow = [\"127.0.0.1\"]\n{}[notifiers.ledger]\n{}table = \"ledger_{}\"\n\
                     [[pipeline]]\nname = \"notification\"\nmodule = \"{module}\"\ntopics = [\"{topic}\"]\n\
                     group_id = \"{group}\"\nconcurrency = {concurrency}\n[pipeline.config]\nalarm-topic = \"{topic}\"\n\
                     notification-topic = \"{topic}-sent\"\nretry-topic = \"{topic}-retry\"\nperiodic = \"\"\n\
                     [pipeline.lookups.alarm_actions]\ndatabase = \"mon\"\nquery = \"SELECT id, type, name, address, period \
                     FROM alarm_action AS aa JOIN notification_method AS nm ON aa.action_id = nm.id \
                     WHERE aa.alarm_definition_id = ? AND aa.alarm_state = ?\"\n",
                    kafka(),
                    std::env::var("HOST_IN_FLIGHT").map(|n| format!("max_in_flight = {n}\n")).unwrap_or_default(),
                    if std::env::var("LEDGER").as_deref() == Ok("sqlite") { "" } else { "database = \"mon\"\n" },
                    group.replace('-', "_"),
                    concurrency = env_number::<u64>("HOST_CONCURRENCY", 4),
                ),
            )
            .expect("host.toml");
            let mut c = Command::new(root().join("target/release/monasca-wasm"));
            c.args(["run", "--summary-every", "0", "--config"]).arg(config).env("RUST_LOG", "warn");
            c
        }
        Variant::Peer | Variant::Raw | Variant::RawHyper => unreachable!("started above, or run in this process"),
    };
    Running::Host(command.stdout(Stdio::null()).stderr(Stdio::null()).process_group(0).spawn().expect("variant starts"))
}

/// One measured run.
struct Row {
    variant: Variant,
    methods: usize,
    transitions: u64,
    rate: f64,
    cpu_per_thousand: f64,
    /// The whole machine's busy CPU over the window (broker, database,
    /// receiver and the variant), per 1,000 transitions.
    machine_per_thousand: f64,
    rss_mb: f64,
}

/// The steady part of a run: from the request that made a tenth of those
/// expected to the one that made nine tenths, timed by the receiver (so the
/// rate is exact however late the watching starts). Start-up and the tail are
/// left out, for every variant alike: a host that processed batches ahead
/// before its first request is not flattered. CPU is read by the watcher
/// when it sees those marks passed; a variant whose start-up script returns
/// after most of its requests (the original's, on short runs) gets no CPU
/// figure rather than a wrong one.
struct Window {
    seconds: f64,
    requests: u64,
    /// Requests between the CPU readings, and the CPU seconds of the variant
    /// and of the machine between them (`None`: too few to tell).
    cpu: Option<(u64, f64, f64)>,
}

/// A CPU reading.
struct Mark {
    requests: u64,
    cpu: f64,
    machine: f64,
}

/// Watch `hits` until `expected` requests (or `limit`, or until `alive` says
/// the variant's process is gone), reading CPU when a tenth and nine tenths
/// have arrived; `usage` reads the variant's CPU seconds. `None` when the
/// requests did not all arrive.
async fn watch(
    hits: &Hits,
    expected: u64,
    limit: Duration,
    usage: impl Fn() -> f64,
    alive: impl Fn() -> bool,
) -> Option<Window> {
    let deadline = Instant::now() + limit;
    let [tenth, nine_tenths] = Hits::thresholds(expected);
    let mark = |requests: u64| Mark { requests, cpu: usage(), machine: common::machine_busy_seconds() };
    let (mut start, mut end) = (None, None);
    let mut polls = 0u64;
    loop {
        let count = hits.count.load(Ordering::SeqCst);
        if start.is_none() && count >= tenth {
            start = Some(mark(count));
        }
        if end.is_none() && count >= nine_tenths {
            end = Some(mark(count));
        }
        if count >= expected || Instant::now() >= deadline {
            break;
        }
        // Every quarter second or so: a variant that died sends no more.
        polls += 1;
        if polls.is_multiple_of(125) && !alive() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    if hits.count.load(Ordering::SeqCst) < expected {
        return None;
    }
    let marks = *hits.marks.lock().unwrap_or_else(|p| p.into_inner());
    let [Some(first), Some(last)] = marks else { return None };
    let cpu = match (start, end) {
        (Some(start), Some(end)) if (end.requests - start.requests) * 10 >= expected => {
            Some((end.requests - start.requests, end.cpu - start.cpu, end.machine - start.machine))
        }
        _ => None,
    };
    Some(Window { seconds: (last - first).as_secs_f64().max(0.001), requests: nine_tenths - tenth, cpu })
}

impl Window {
    /// The row of `variant` from this window.
    fn row(&self, variant: Variant, methods: usize, transitions: u64, rss_mb: f64) -> Row {
        let per_thousand = |seconds: f64, requests: u64| seconds / (requests as f64 / methods as f64) * 1000.0;
        Row {
            variant,
            methods,
            transitions,
            rate: self.requests as f64 / methods as f64 / self.seconds,
            cpu_per_thousand: self.cpu.map(|(requests, cpu, _)| per_thousand(cpu, requests)).unwrap_or(f64::NAN),
            machine_per_thousand: self
                .cpu
                .map(|(requests, _, machine)| per_thousand(machine, requests))
                .unwrap_or(f64::NAN),
            rss_mb,
        }
    }
}

/// The second raw client: hyper's HTTP/1.1 connections, pooled by hand, as
/// lean as a client gets (the host's own path for `http` URLs is like it).
struct Lean {
    addr: std::net::SocketAddr,
    idle: Mutex<Vec<hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>>>,
}

impl Lean {
    async fn post(&self, path: String, key: String, body: bytes::Bytes) {
        use http_body_util::BodyExt;
        let mut sender = loop {
            let popped = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let mut sender = match popped {
                Some(s) if !s.is_closed() => s,
                Some(_) => continue,
                None => {
                    let stream = tokio::net::TcpStream::connect(self.addr).await.expect("connect");
                    stream.set_nodelay(true).expect("nodelay");
                    let (s, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                        .await
                        .expect("handshake");
                    tokio::spawn(conn);
                    s
                }
            };
            // A pooled connection closed meanwhile: take another.
            if sender.ready().await.is_ok() {
                break sender;
            }
        };
        let request = hyper::Request::post(path)
            .header("host", self.addr.to_string())
            .header("content-type", "application/json")
            .header("Idempotency-Key", key)
            .body(http_body_util::Full::new(body))
            .expect("request");
        let answer = sender.send_request(request).await.expect("answer");
        assert!(answer.status().is_success());
        answer.into_body().collect().await.expect("body");
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(sender);
    }
}

/// A raw client (reqwest, or with `lean` hyper's connections): every
/// payload once, 64 requests in flight.
async fn raw_client(url: &str, n: u64, methods: usize, lean: bool) {
    use futures::StreamExt;
    if lean {
        let addr = url.trim_start_matches("http://").parse().expect("addr");
        let lean = Arc::new(Lean { addr, idle: Mutex::new(Vec::new()) });
        let body = bytes::Bytes::from(transition("raw", 0, 0));
        let requests = (0..n * methods as u64).map(|i| {
            let lean = lean.clone();
            let body = body.clone();
            async move { lean.post(format!("/hook/{}", i % methods as u64), i.to_string(), body).await }
        });
        let in_flight = raw_in_flight();
        futures::stream::iter(requests).buffer_unordered(in_flight).collect::<Vec<()>>().await;
        return;
    }
    let client = reqwest::Client::new();
    let body = transition("raw", 0, 0);
    let requests = (0..n * methods as u64).map(|i| {
        let client = client.clone();
        let body = body.clone();
        let url = format!("{url}/hook/{}", i % methods as u64);
        async move {
            let answer = client
                .post(url)
                .header("content-type", "application/json")
                .header("Idempotency-Key", i.to_string())
                .body(body)
                .send()
                .await;
            answer.expect("raw request").error_for_status().expect("raw answer");
        }
    });
    let in_flight = raw_in_flight();
    futures::stream::iter(requests).buffer_unordered(in_flight).collect::<Vec<()>>().await;
}

async fn measure(variant: Variant, methods: usize, n: u64, hits: &Arc<Hits>, url: &str, db: &Database) -> Row {
    hits.reset(n * methods as u64);
    let expected = n * methods as u64;
    let dir = tempfile::tempdir().expect("tempdir");
    if matches!(variant, Variant::Raw | Variant::RawHyper) {
        let me = std::process::id();
        let watching = {
            let hits = hits.clone();
            tokio::spawn(async move {
                watch(&hits, expected, Duration::from_secs(900), || common::tree_usage(me).0, || true).await
            })
        };
        let lean = variant == Variant::RawHyper;
        if env_number::<u64>("RAW_IN_PROCESS", 0) == 1 {
            raw_client(url, n, methods, lean).await;
        } else {
            // Its own process, as the host's: the receiver is the other side
            // of a socket between processes for every variant alike.
            let exe = std::env::current_exe().expect("the bench's path");
            let spec = format!("{url} {n} {methods} {lean}");
            let status = tokio::process::Command::new(exe)
                .env(RAW_CLIENT, spec)
                .status()
                .await
                .expect("the raw client process starts");
            assert!(status.success(), "{}: the raw client process failed", variant.name());
        }
        let window = watching.await.expect("watcher").unwrap_or_else(|| panic!("{}: requests missing", variant.name()));
        return window.row(variant, methods, n, common::tree_usage(me).1);
    }
    let tag = unique("bench-notify");
    // Ids are at most 36 characters in Monasca's schema.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let definition = format!("bench-{:x}", nanos % (1 << 60));
    define(db, &definition, methods, url).await;
    let topic = format!("{tag}-alarms");
    common::create_topic(&topic, PARTITIONS).await;
    for extra in ["sent", "retry"] {
        common::create_topic(&format!("{topic}-{extra}"), 1).await;
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis();
    let values: Vec<String> = (0..n).map(|i| transition(&definition, i, now)).collect();
    fill(&topic, &values).await;
    let running = spawn(variant, dir.path(), &topic, &format!("{tag}-group"));
    let pid = running.pid();
    // The peer runs in its own process group (its engines are forked children).
    let usage = |pid: u32| if variant == Variant::Peer { common::group_usage(pid) } else { common::tree_usage(pid) };
    let window = watch(hits, expected, Duration::from_secs(900), || usage(pid).0, || common::alive(pid)).await;
    let rss = usage(pid).1;
    let exited = !common::alive(pid);
    running.stop();
    let window = window.unwrap_or_else(|| {
        let count = hits.count.load(Ordering::SeqCst);
        let why = if exited { " (its process exited: run it by hand to see why)" } else { "" };
        panic!("{}: {count} of {expected} requests arrived{why}", variant.name())
    });
    window.row(variant, methods, n, rss)
}

/// Set in the raw client's own process: `url transitions methods lean`.
const RAW_CLIENT: &str = "NOTIFICATION_BENCH_RAW_CLIENT";

/// The raw client's process: send, then exit.
async fn raw_client_process(spec: &str) {
    let parts: Vec<&str> = spec.split(' ').collect();
    let [url, n, methods, lean] = parts[..] else { panic!("{RAW_CLIENT}: {spec:?}") };
    let number = |v: &str| v.parse::<u64>().unwrap_or_else(|_| panic!("{RAW_CLIENT}: {spec:?}"));
    raw_client(url, number(n), number(methods) as usize, lean == "true").await;
}

#[tokio::main]
async fn main() {
    if let Ok(spec) = std::env::var(RAW_CLIENT) {
        return raw_client_process(&spec).await;
    }
    let n = env_number::<u64>("TRANSITIONS", 200_000);
    let peer_n = env_number::<u64>("PEER_TRANSITIONS", 2_000);
    let hits = Arc::new(Hits::default());
    let url = receiver(hits.clone()).await;
    let db =
        Database::open("mon", &DatabaseConfig::Mysql { url: Secret(mariadb().to_string()) }, true).expect("MariaDB");
    let mut rows = Vec::new();
    let method_counts: Vec<usize> = match std::env::var("METHODS") {
        Ok(list) => list.split(',').map(|m| m.trim().parse().expect("METHODS: numbers, e.g. 1,3")).collect(),
        Err(_) => vec![1, 3],
    };
    for methods in method_counts {
        for variant in selected() {
            let count = if variant == Variant::Peer { peer_n } else { n };
            eprintln!("{} with {methods} method(s): {count} transitions", variant.name());
            let row = measure(variant, methods, count, &hits, &url, &db).await;
            eprintln!(
                "  {:.0} transitions/s, {} CPU s per 1,000 ({} machine-wide)",
                row.rate,
                three(row.cpu_per_thousand),
                three(row.machine_per_thousand)
            );
            rows.push(row);
        }
    }
    let mut table = String::from(
        "| variant | methods per alarm | transitions | transitions/s | vs monasca-notification | vs raw client (reqwest) | vs raw client (hyper) | CPU s per 1,000 transitions | machine CPU s per 1,000 | peak RSS MB |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for row in &rows {
        let of =
            |v: Variant| rows.iter().find(|r| r.variant == v && r.methods == row.methods).map(|r| row.rate / r.rate);
        let ratio = |r: Option<f64>| r.map(|x| format!("{x:.2}×")).unwrap_or_else(|| "–".into());
        table.push_str(&format!(
            "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {:.0} |\n",
            row.variant.name(),
            row.methods,
            row.transitions,
            row.rate,
            ratio(of(Variant::Peer)),
            ratio(of(Variant::Raw)),
            ratio(of(Variant::RawHyper)),
            three(row.cpu_per_thousand),
            three(row.machine_per_thousand),
            row.rss_mb
        ));
    }
    println!("{table}");
    let reports = root().join("target/bench-reports");
    std::fs::create_dir_all(&reports).expect("report dir");
    std::fs::write(reports.join("notification.md"), &table).expect("report");
    eprintln!("written to {}", reports.join("notification.md").display());
}
