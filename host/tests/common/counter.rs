//! The keyed counter guest's test kit: inputs with their expected outputs,
//! a read-committed reader of the outputs, host configurations, and runs of
//! the host killed along the way.

use super::kafka::{config_head, spawn_host, Host};
use monasca_test_programs::{kafka, unique, KEYED_COUNTER};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Outputs per key, in order.
pub type Outputs = HashMap<String, Vec<String>>;

/// Distinct counter keys of [`inputs`].
pub const KEYS: usize = 1000;

/// The inputs: key `k<i % KEYS>` with amount `i % 7 + 1`; the expected
/// outputs per key, in order, of an uninterrupted run.
pub fn inputs(n: usize) -> (Vec<(String, String)>, Outputs) {
    let mut expected: Outputs = HashMap::new();
    let mut totals: HashMap<String, (i64, u64)> = HashMap::new();
    let inputs: Vec<(String, String)> = (0..n)
        .map(|i| {
            let key = format!("k{:04}", (i * 7919) % KEYS);
            let amount = (i % 7 + 1) as i64;
            let (total, count) = totals.entry(key.clone()).or_default();
            *total += amount;
            *count += 1;
            expected.entry(key.clone()).or_default().push(format!("{key} {total} {count}"));
            (key, amount.to_string())
        })
        .collect();
    (inputs, expected)
}

/// Produce `inputs` in `slices` slices with `pause` after each, in the
/// background.
pub fn feed_keyed(
    topic: &str,
    inputs: &[(String, String)],
    slices: usize,
    pause: Duration,
) -> tokio::task::JoinHandle<()> {
    let (topic, inputs) = (topic.to_string(), inputs.to_vec());
    tokio::spawn(async move {
        for slice in inputs.chunks(inputs.len().div_ceil(slices).max(1)) {
            produce_keyed(&topic, slice).await;
            tokio::time::sleep(pause).await;
        }
    })
}

/// Wait until `reader` has `n` outputs (at most `limit`).
pub async fn wait_count(reader: &Reader, n: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    while reader.count() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Produce the inputs keyed, in order (a key always lands on one partition,
/// so its messages keep their order).
pub async fn produce_keyed(topic: &str, inputs: &[(String, String)]) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka())
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    for chunk in inputs.chunks(10_000) {
        let sends = chunk
            .iter()
            .map(|(k, v)| producer.send(FutureRecord::to(topic).key(k).payload(v), Duration::from_secs(30)));
        for delivery in futures::future::join_all(sends).await {
            delivery.expect("input delivered");
        }
    }
}

/// Outputs read committed as they come: per key, the values in order.
pub struct Reader {
    seen: Arc<Mutex<Outputs>>,
    count: Arc<Mutex<usize>>,
    /// Outputs per `guest-version` header.
    versions: Arc<Mutex<HashMap<String, usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Reader {
    pub fn start(topic: &str) -> Reader {
        let seen: Arc<Mutex<Outputs>> = Arc::default();
        let count: Arc<Mutex<usize>> = Arc::default();
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", kafka())
            .set("group.id", unique("state-reader"))
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .create()
            .expect("reader");
        consumer.subscribe(&[topic]).expect("subscribe");
        let versions: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let (s, c, v) = (seen.clone(), count.clone(), versions.clone());
        let task = tokio::spawn(async move {
            loop {
                if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await {
                    let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
                    let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                    let version = m
                        .headers()
                        .and_then(|h| h.iter().find(|h| h.key == "guest-version").and_then(|h| h.value))
                        .map(|v| String::from_utf8_lossy(v).into_owned());
                    if let Some(version) = version {
                        *v.lock().unwrap().entry(version).or_default() += 1;
                    }
                    s.lock().unwrap().entry(key).or_default().push(value);
                    *c.lock().unwrap() += 1;
                }
            }
        });
        Reader { seen, count, versions, task }
    }

    /// Outputs per `guest-version` header so far.
    pub fn versions(&self) -> HashMap<String, usize> {
        self.versions.lock().unwrap().clone()
    }

    /// Distinct output values so far for which `matches` holds.
    pub fn count_matching(&self, matches: impl Fn(&str) -> bool) -> usize {
        let seen = self.seen.lock().unwrap();
        seen.values().flatten().filter(|v| matches(v)).collect::<std::collections::HashSet<_>>().len()
    }

    /// Outputs so far.
    pub fn count(&self) -> usize {
        *self.count.lock().unwrap()
    }

    /// Wait until `n` outputs arrived (or `limit` passed), then 3 s more.
    pub async fn wait_for(&self, n: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.count() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }

    /// Wait until `n` distinct outputs (repeats not counted) arrived, or
    /// `limit` passed, then 3 s more.
    pub async fn wait_for_distinct(&self, n: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        let distinct = || {
            let seen = self.seen.lock().unwrap();
            seen.values().map(|v| v.iter().collect::<std::collections::HashSet<_>>().len()).sum::<usize>()
        };
        while distinct() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }

    pub fn stop(self) -> Outputs {
        self.task.abort();
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// How a test host runs the keyed counter.
pub struct CounterHost<'a> {
    /// `at-least-once` or `exactly-once`.
    pub delivery: &'a str,
    /// A fixed transactional id (`None`: the host's random default).
    pub transactional_id: Option<&'a str>,
    /// An admin API on this port, with the token `state-test-token`.
    pub admin_port: Option<u16>,
    /// Module (default: the keyed counter).
    pub module: &'a str,
}

impl Default for CounterHost<'_> {
    fn default() -> Self {
        CounterHost { delivery: "exactly-once", transactional_id: None, admin_port: None, module: KEYED_COUNTER }
    }
}

/// A host configuration `file` in `dir` running `host.module` from `input`
/// to `output` in consumer group `group`.
pub fn counter_config(dir: &Path, file: &str, input: &str, output: &str, group: &str, host: &CounterHost) -> PathBuf {
    let config = dir.join(file);
    let admin = host
        .admin_port
        .map(|port| format!("[admin]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"state-test-token\"\n"))
        .unwrap_or_default();
    let id = host.transactional_id.map(|id| format!("[pipeline.transaction]\nid = \"{id}\"\n")).unwrap_or_default();
    std::fs::write(
        &config,
        format!(
            "{head}{admin}[[pipeline]]\nname = \"{group}\"\nmodule = \"{module}\"\ntopics = [\"{input}\"]\n\
             group_id = \"{group}\"\noutput_topic = \"{output}\"\ndelivery = \"{delivery}\"\n\
             [pipeline.batch]\nmax_messages = 500\nmax_wait_ms = 20\n{id}",
            head = config_head("state-cache"),
            module = host.module,
            delivery = host.delivery,
        ),
    )
    .expect("config");
    config
}

/// The keys whose outputs differ from `expected`, each with its first
/// difference (empty: identical record for record).
pub fn differences(seen: &Outputs, expected: &Outputs) -> Vec<String> {
    let mut wrong = Vec::new();
    for (key, want) in expected {
        let got = seen.get(key).cloned().unwrap_or_default();
        if &got != want {
            let first = got.iter().zip(want).position(|(g, w)| g != w).unwrap_or(got.len().min(want.len()));
            wrong.push(format!(
                "{key}: {} outputs for {} inputs, first difference at {first}: {:?} instead of {:?}",
                got.len(),
                want.len(),
                got.get(first),
                want.get(first)
            ));
        }
    }
    wrong.sort();
    wrong
}

/// Kill the host `kills` times once the output has grown by `step` since
/// the last start, then let a last run finish and stop it with SIGTERM.
pub async fn run_with_kills(config: &Path, reader: &Reader, kills: usize, step: usize, total: usize) -> Host {
    for kill in 1..=kills {
        let before = reader.count();
        let mut host = spawn_host(config);
        let deadline = Instant::now() + Duration::from_secs(120);
        while reader.count() < before + step && reader.count() < total && Instant::now() < deadline && host.running() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(host.running(), "run {kill} exited on its own:\n{}", host.stderr());
        host.kill();
    }
    spawn_host(config)
}
