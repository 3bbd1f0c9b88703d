//! Helpers the benchmarks share: topics on the test broker, a group's
//! progress, a variant's CPU and memory, and stopping its process.

#![allow(dead_code)] // each benchmark uses its own subset

use monasca_test_programs::{kafka, unique};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The environment variable `name` parsed, or `default` when unset or unreadable.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The median of `values` (the upper one of an even count; 0 for none).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Create `name` with `partitions` partitions on the test broker.
pub async fn create_topic(name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", kafka()).create().expect("admin");
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for r in admin.create_topics(&[topic], &AdminOptions::new()).await.expect("create") {
        r.expect("created");
    }
}

/// A producer to fill input topics: 5 ms linger, LZ4, a deep queue.
pub fn producer() -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", kafka())
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer")
}

/// The sum of the committed offsets of `reader`'s group on `topic` (0 when
/// nothing is committed yet or the broker does not answer).
pub fn committed(reader: &BaseConsumer, topic: &str, partitions: i32) -> i64 {
    let mut list = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(topic, p);
    }
    match reader.committed_offsets(list, Duration::from_secs(10)) {
        Ok(c) => c.elements().iter().map(|e| if let rdkafka::Offset::Offset(o) = e.offset() { o } else { 0 }).sum(),
        Err(_) => 0,
    }
}

/// SIGTERM to the process group of `child` (started with `process_group(0)`),
/// then SIGKILL after 10 s.
pub fn stop(mut child: Child) {
    let group = format!("-{}", child.id());
    let quiet = |signal: &str| Command::new("kill").args([signal, "--", &group]).stderr(Stdio::null()).status();
    let _ = quiet("-TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = quiet("-KILL");
    let _ = child.wait();
}

/// The processes of process group `pgid` (a daemon that forked and
/// re-parented its children is still one group).
pub fn process_group(pgid: u32) -> Vec<u32> {
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let group = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(2)?.parse::<u32>().ok());
        if group == Some(pgid) {
            members.push(pid);
        }
    }
    members
}

/// `pid` and its descendants.
pub fn process_tree(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", all[i])).into_iter().flatten().flatten();
        for task in tasks {
            let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            all.extend(children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
        }
        i += 1;
    }
    all
}

/// Whether process `pid` is still running (not gone, not a zombie).
pub fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the command name, which is in parentheses.
    let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
    matches!(state, Some(s) if s != 'Z' && s != 'X')
}

/// CPU seconds and peak RSS (MB) of the process tree, summed.
pub fn tree_usage(pid: u32) -> (f64, f64) {
    usage_of(&process_tree(pid))
}

/// CPU seconds and peak RSS (MB) of the processes of group `pgid`, summed.
pub fn group_usage(pgid: u32) -> (f64, f64) {
    usage_of(&process_group(pgid))
}

/// CPU seconds the whole machine spent busy so far (every process and the
/// kernel: `/proc/stat`, all CPUs, idle and I/O wait left out).
pub fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse::<f64>().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let busy: f64 = ticks.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, t)| t).sum();
    busy / 100.0
}

/// CPU seconds and peak RSS (MB) of `pids`, summed.
pub fn usage_of(pids: &[u32]) -> (f64, f64) {
    let mut cpu = 0.0;
    let mut rss = 0.0;
    for &p in pids {
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) {
            let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("").split_whitespace().collect();
            let ticks: f64 = fields.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
                + fields.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            cpu += ticks / 100.0;
        }
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{p}/status")) {
            if let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:")) {
                rss += line.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 1024.0;
            }
        }
    }
    (cpu, rss)
}

/// Microseconds since the Unix epoch.
pub fn micros_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// End-to-end latency percentiles (ms) of `count` records of `size` bytes
/// sent at `rate`/s through a variant that reads `input` and writes
/// `output`, read with `isolation` (`read_committed` for an exactly-once
/// variant). Each record carries its send time.
pub async fn steady_latency(
    input: &str,
    output: &str,
    size: usize,
    rate: usize,
    count: usize,
    isolation: &str,
) -> (f64, f64) {
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", kafka()).set("linger.ms", "1").create().expect("producer");
    let reader: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka())
        .set("group.id", unique("latency"))
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "10")
        .set("isolation.level", isolation)
        .create()
        .expect("reader");
    reader.subscribe(&[output]).expect("subscribe");
    // Warm up: wait until the variant has joined its group and passes records.
    let warmed = async {
        loop {
            let _ = producer.send(FutureRecord::<(), _>::to(input).payload("warm-up"), Duration::from_secs(5)).await;
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(500), reader.recv()).await {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), warmed).await.expect("the variant never passed a record");
    let pad = "x".repeat(size.saturating_sub(21));
    let sender = {
        let (producer, input) = (producer.clone(), input.to_string());
        tokio::spawn(async move {
            let per_tick = (rate / 100).max(1);
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            let mut sent = 0;
            while sent < count {
                tick.tick().await;
                for _ in 0..per_tick.min(count - sent) {
                    let value = format!("{:020} {pad}", micros_now());
                    let record = FutureRecord::<(), _>::to(&input).payload(&value);
                    if producer.send_result(record).is_ok() {
                        sent += 1;
                    }
                }
            }
        })
    };
    let mut latencies = Vec::with_capacity(count);
    let deadline = Instant::now() + Duration::from_secs(120);
    while latencies.len() < count && Instant::now() < deadline {
        let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(500), reader.recv()).await else { continue };
        let sent = m.payload().and_then(|p| p.get(..20)).and_then(|p| std::str::from_utf8(p).ok()?.parse::<u64>().ok());
        if let Some(sent) = sent {
            latencies.push(micros_now().saturating_sub(sent) as f64 / 1000.0);
        }
    }
    sender.await.expect("sender");
    assert_eq!(latencies.len(), count, "not every latency probe came through in time");
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    (at(0.50), at(0.99))
}
