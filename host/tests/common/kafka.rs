//! Kafka helpers for the integration tests: topics, producing inputs,
//! reading outputs, running the `monasca-wasm` binary, committed offsets.

use monasca_test_programs::unique;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Create `names` with `partitions` partitions each.
pub async fn create_topics_on(bootstrap: &str, names: &[&str], partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("admin client");
    let topics: Vec<NewTopic<'_>> =
        names.iter().map(|n| NewTopic::new(n, partitions, TopicReplication::Fixed(1))).collect();
    for result in admin.create_topics(&topics, &AdminOptions::new()).await.expect("create topics") {
        result.expect("topic created");
    }
}

/// Produce `values` (unkeyed, in order, 5,000 in flight at most); returns
/// where each landed, in input order.
pub async fn produce_values<V: AsRef<[u8]>>(bootstrap: &str, topic: &str, values: &[V]) -> Vec<(i32, i64)> {
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", bootstrap).set("linger.ms", "5").create().expect("producer");
    let mut placed = Vec::with_capacity(values.len());
    for chunk in values.chunks(5000) {
        let sends = chunk
            .iter()
            .map(|v| producer.send(FutureRecord::<(), [u8]>::to(topic).payload(v.as_ref()), Duration::from_secs(30)));
        for delivery in futures::future::join_all(sends).await {
            let delivery = delivery.expect("input delivered");
            placed.push((delivery.partition, delivery.offset));
        }
    }
    placed
}

/// Produce one record without a value (a tombstone) keyed `key`.
pub async fn produce_tombstone(bootstrap: &str, topic: &str, key: &str) {
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("producer");
    producer
        .send(FutureRecord::<str, [u8]>::to(topic).key(key), Duration::from_secs(30))
        .await
        .expect("tombstone delivered");
}

/// Produce `values` keyed by themselves; returns value → (partition, offset).
pub async fn produce_all_on(bootstrap: &str, topic: &str, values: &[String]) -> HashMap<String, (i32, i64)> {
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", bootstrap).set("linger.ms", "5").create().expect("producer");
    let mut placed = HashMap::new();
    for chunk in values.chunks(5000) {
        let sends = chunk.iter().map(|v| {
            let producer = &producer;
            async move {
                let delivery = producer
                    .send(FutureRecord::to(topic).payload(v.as_str()).key(v.as_str()), Duration::from_secs(30))
                    .await;
                (v.clone(), delivery.expect("input delivered"))
            }
        });
        for (value, delivery) in futures::future::join_all(sends).await {
            placed.insert(value, (delivery.partition, delivery.offset));
        }
    }
    placed
}

/// Read `topic` from the start until `expected` messages arrived (or 120 s
/// passed), then 3 s more: anything beyond `expected` would be a duplicate.
pub async fn consume_on(bootstrap: &str, topic: &str, expected: usize) -> Vec<OwnedMessage> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut out = Vec::new();
    while out.len() < expected && Instant::now() < deadline {
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await {
            out.push(m.detach());
        }
    }
    while let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(3), consumer.recv()).await {
        out.push(m.detach());
    }
    out
}

/// The `[kafka]` and `[engine]` tables of a test host's configuration: the
/// test broker, a short session timeout (a killed host leaves the group
/// soon), compiled modules cached under cargo's temp dir in `cache`.
pub fn config_head(cache: &str) -> String {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join(cache);
    format!(
        "[kafka]\nbootstrap = \"{}\"\n[kafka.properties]\n\"session.timeout.ms\" = \"6000\"\n[engine]\ncache_dir = \"{}\"\n",
        monasca_test_programs::kafka(),
        cache.display()
    )
}

/// A running `monasca-wasm run` process. Its stderr is read as it comes (a
/// full pipe would block the host's logging and stall it) and kept.
pub struct Host {
    /// The process.
    pub child: Child,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

/// A test that fails (panics) with its host running does not leave it behind.
impl Drop for Host {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Host {
    /// What the host wrote on stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    /// SIGKILL and wait.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("wait");
    }

    /// True while the process runs.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("process status").is_none()
    }
}

/// Start `monasca-wasm run --config <config>` (warnings only on stderr).
pub fn spawn_host(config: &Path) -> Host {
    spawn_host_logging(config, &std::env::var("MONASCA_WASM_TEST_LOG").unwrap_or_else(|_| "warn".into()))
}

/// [`spawn_host`] with the log filter `filter` (`RUST_LOG`).
pub fn spawn_host_logging(config: &Path, filter: &str) -> Host {
    let mut child = Command::new(env!("CARGO_BIN_EXE_monasca-wasm"))
        .args(["run", "--summary-every", "0", "--config"])
        .arg(config)
        .env("RUST_LOG", filter)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("monasca-wasm starts");
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    if let Some(mut pipe) = child.stderr.take() {
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = std::io::Read::read(&mut pipe, &mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(&buf[..n]);
            }
        });
    }
    Host { child, stderr }
}

/// Send SIGTERM and wait; the exit status and what the host wrote on stderr.
pub fn terminate(mut host: Host) -> (std::process::ExitStatus, String) {
    Command::new("kill").args(["-TERM", &host.child.id().to_string()]).status().expect("kill -TERM");
    let status = host.child.wait().expect("wait");
    // Let the reader thread take the last lines.
    std::thread::sleep(Duration::from_millis(100));
    (status, host.stderr())
}

/// The group's committed offsets on `topic` (partition -> next offset to
/// read; 0 when nothing is committed).
pub fn committed_offsets(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> HashMap<i32, i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .expect("offsets reader");
    let mut list = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(list, Duration::from_secs(30)).expect("committed offsets");
    committed
        .elements()
        .iter()
        .map(|e| (e.partition(), if let rdkafka::Offset::Offset(o) = e.offset() { o } else { 0 }))
        .collect()
}
