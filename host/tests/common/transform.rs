//! Helpers of the transform tests and benchmark: agent metrics as
//! monasca-agent and the Nova/Swift plugins report them (every event type of
//! the shipped specs), host configurations for the transform pipeline, and
//! reading its aggregated output.

use super::kafka::config_head;
use monasca_test_programs::{kafka, unique, TRANSFORM};
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const HOUR: i64 = 3_600_000;
/// 2024-12-01 10:00:00 UTC: the first generated hour.
pub const START: i64 = 1_733_047_200_000;

/// What to generate.
pub struct Agents {
    pub hosts: usize,
    /// Seconds between two reports of one metric.
    pub interval_s: i64,
    pub hours: i64,
    pub seed: u64,
}

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn value(&mut self, low: f64, high: f64) -> f64 {
        let x = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((low + x * (high - low)) * 100.0).round() / 100.0
    }
}

fn envelope(name: &str, dimensions: Value, ts: i64, value: f64, tenant: &str, region: Option<&str>) -> String {
    let mut meta = json!({"tenantId": tenant});
    if let Some(region) = region {
        meta["region"] = json!(region);
    }
    json!({"metric": {"name": name, "dimensions": dimensions, "timestamp": ts, "value": value, "value_meta": null},
        "meta": meta, "creation_time": ts / 1000})
    .to_string()
}

impl Agents {
    /// The metrics of hours `START + k·HOUR`, in the order an agent fleet
    /// sends them: by time, shuffled within a few seconds (out of order
    /// by less than the allowed lateness).
    pub fn metrics(&self) -> Vec<String> {
        let mut rng = Rng(self.seed | 1);
        let tenants = ["t-alpha", "t-beta", "t-gamma"];
        let mut out: Vec<(i64, String)> = Vec::new();
        let steps = self.hours * 3600 / self.interval_s;
        for step in 0..steps {
            for h in 0..self.hosts {
                let host = format!("compute-{h:03}");
                let ts = START + step * self.interval_s * 1000 + rng.below(self.interval_s as u64 * 1000) as i64;
                let region = if h % 5 == 0 { None } else { Some("useast") };
                let admin = "admin-project";
                let host_dims = json!({"hostname": host, "service": "monitoring"});
                let cores = [8.0, 16.0, 32.0][h % 3];
                let idle = if h % 7 == 0 { 0.0 } else { rng.value(0.0, 100.0) };
                let mut emit = |name: &str, dims: Value, value: f64, tenant: &str| {
                    out.push((ts, envelope(name, dims, ts, value, tenant, region)));
                };
                emit("cpu.total_logical_cores", host_dims.clone(), cores, admin);
                emit("cpu.idle_perc", host_dims.clone(), idle, admin);
                emit("mem.total_mb", host_dims.clone(), 65536.0, admin);
                emit("mem.usable_mb", host_dims.clone(), rng.value(1000.0, 60000.0), admin);
                emit("disk.total_space_mb", host_dims.clone(), 512000.0, admin);
                emit("disk.total_used_space_mb", host_dims.clone(), rng.value(1000.0, 500000.0), admin);
                emit("nova.vm.mem.total_allocated_mb", host_dims.clone(), rng.value(0.0, 32768.0), admin);
                emit("nova.vm.disk.total_allocated_gb", host_dims.clone(), rng.value(0.0, 400.0), admin);
                emit("nova.vm.cpu.total_allocated", host_dims.clone(), rng.below(24) as f64, admin);
                for mount in ["/srv/node/disk0", "/srv/node/disk1"] {
                    let dims = json!({"hostname": host, "mount": mount, "service": "object-storage"});
                    emit("swiftlm.diskusage.host.val.size", dims.clone(), 1_000_000.0, admin);
                    let avail = 900_000.0 - (step as f64) * 10.0 - rng.value(0.0, 5.0);
                    emit("swiftlm.diskusage.host.val.avail", dims, avail, admin);
                }
                for vm in 0..3 {
                    let tenant = tenants[(h + vm) % 3];
                    let id = format!("vm-{h:03}-{vm}");
                    let dims = json!({"hostname": host, "tenant_id": tenant, "resource_id": id});
                    emit("vm.mem.total_mb", dims.clone(), 4096.0, tenant);
                    emit("vm.mem.used_mb", dims.clone(), rng.value(100.0, 4096.0), tenant);
                    emit("vm.disk.allocation", dims.clone(), 40.0, tenant);
                    emit("vm.cpu.utilization_perc", dims, rng.value(0.0, 100.0), tenant);
                    let vcpu = json!({"hostname": host, "project_id": tenant, "resource_id": id});
                    emit("vcpus", vcpu, [1.0, 2.0, 4.0][vm], tenant);
                }
                if h % 4 == 0 {
                    let tenant = tenants[h % 3];
                    emit("storage.objects.size", json!({"project_id": tenant}), rng.value(0.0, 1e9), tenant);
                }
                // Not transformed, or dropped for a missing required field.
                emit("http_status", json!({"hostname": host, "url": "http://x"}), 0.0, admin);
                if step % 10 == 0 {
                    let dims = json!({"hostname": host, "resource_id": format!("vm-{h:03}-9")});
                    emit("vm.mem.used_mb", dims, 1.0, admin);
                }
            }
        }
        out.sort_by_key(|(ts, _)| *ts / 5000);
        // Shuffle within runs of 40: out of order by a few seconds.
        for chunk in out.chunks_mut(40) {
            for i in (1..chunk.len()).rev() {
                chunk.swap(i, rng.below(i as u64 + 1) as usize);
            }
        }
        out.into_iter().map(|(_, m)| m).collect()
    }
}

/// A metric that moves a partition's watermark to `ts` (a host-level memory
/// report of a host of its own; it lands in a window that never closes).
pub fn closer(ts: i64, partition: i32) -> String {
    envelope("mem.total_mb", json!({"hostname": format!("closer-{partition}")}), ts, 1.0, "admin-project", None)
}

/// Produce `values` unkeyed (the default partitioner spreads them) or to one partition.
pub async fn produce(topic: &str, partition: Option<i32>, values: &[String]) {
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", kafka()).set("linger.ms", "5").create().expect("producer");
    for chunk in values.chunks(5000) {
        let sends = chunk.iter().map(|v| {
            let mut record = FutureRecord::<(), str>::to(topic).payload(v.as_str());
            if let Some(p) = partition {
                record = record.partition(p);
            }
            producer.send(record, Duration::from_secs(30))
        });
        for delivery in futures::future::join_all(sends).await {
            delivery.expect("input delivered");
        }
    }
}

/// One transform pipeline of a test: its topics and how it runs.
pub struct Run<'a> {
    pub name: String,
    pub input: &'a str,
    pub partials: String,
    pub output: String,
    pub dead_letter: String,
    pub delivery: &'a str,
    pub sources: i32,
    pub admin_port: Option<u16>,
    pub options: Vec<(&'a str, String)>,
}

impl<'a> Run<'a> {
    /// Fresh topic names for a run named `prefix` reading `input`.
    pub fn new(prefix: &str, input: &'a str, sources: i32) -> Run<'a> {
        let name = unique(prefix);
        Run {
            partials: format!("{name}.partials"),
            output: format!("{name}.out"),
            dead_letter: format!("{name}.dlq"),
            name,
            input,
            delivery: "exactly-once",
            sources,
            admin_port: None,
            options: Vec::new(),
        }
    }

    /// A host configuration file for this run.
    pub fn config(&self, dir: &Path, file: &str) -> PathBuf {
        let admin = self
            .admin_port
            .map(|port| format!("[admin]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"transform-test-token\"\n"))
            .unwrap_or_default();
        let mut options = format!(
            "partials-topic = \"{}\"\ndead-letter-topic = \"{}\"\nsources = \"{}\"\n",
            self.partials, self.dead_letter, self.sources
        );
        for (k, v) in &self.options {
            options.push_str(&format!("{k} = {v:?}\n"));
        }
        let path = dir.join(file);
        std::fs::write(
            &path,
            format!(
                "{head}{admin}[[pipeline]]\nname = \"{name}\"\nmodule = \"{TRANSFORM}\"\n\
                 topics = [\"{input}\", \"{partials}\"]\ngroup_id = \"{name}\"\noutput_topic = \"{output}\"\n\
                 dead_letter_topic = \"{dlq}\"\ndelivery = \"{delivery}\"\n\
                 [pipeline.batch]\nmax_messages = 1000\nmax_wait_ms = 20\n[pipeline.config]\n{options}",
                head = config_head("transform-cache"),
                name = self.name,
                input = self.input,
                partials = self.partials,
                output = self.output,
                dlq = self.dead_letter,
                delivery = self.delivery,
            ),
        )
        .expect("config");
        path
    }

    /// Input messages the group has committed (all partitions).
    pub fn committed(&self) -> i64 {
        committed(&self.name, self.input, self.sources)
    }

    /// Wait until the group has committed every message of the input and
    /// the partials topic has stopped moving (its committed offset and end
    /// unchanged over three looks 2 s apart; transaction markers keep the
    /// committed offset of a transactional topic short of its end).
    pub async fn wait_done(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let (mut stable, mut last) = (0, None);
        while Instant::now() < deadline && stable < 3 {
            let input_done =
                committed(&self.name, self.input, self.sources) == high_watermarks(self.input, self.sources);
            let partials = (committed(&self.name, &self.partials, 1), high_watermarks(&self.partials, 1));
            stable = if input_done && partials.0 > 0 && last == Some(partials) { stable + 1 } else { 0 };
            last = Some(partials);
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        assert!(stable >= 3, "pipeline {} did not finish its input within {limit:?}", self.name);
    }
}

/// The sum of `group`'s committed offsets on `topic` (0 while the group's
/// coordinator is not known yet).
pub fn committed(group: &str, topic: &str, partitions: i32) -> i64 {
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", kafka()).set("group.id", group).create().expect("offsets reader");
    let mut list = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(topic, p);
    }
    match consumer.committed_offsets(list, Duration::from_secs(10)) {
        Ok(committed) => {
            committed.elements().iter().map(|e| if let rdkafka::Offset::Offset(o) = e.offset() { o } else { 0 }).sum()
        }
        Err(_) => 0,
    }
}

/// The sum of the high watermarks of `topic`'s partitions.
pub fn high_watermarks(topic: &str, partitions: i32) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", kafka()).create().expect("client");
    (0..partitions)
        .map(|p| consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).map(|(_, high)| high).unwrap_or(0))
        .sum()
}

/// Every record of `topic` read committed, until none came for 3 s.
pub async fn read_all(topic: &str) -> Vec<(Vec<u8>, Vec<(String, String)>)> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka())
        .set("group.id", unique("transform-reader"))
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .create()
        .expect("reader");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut out = Vec::new();
    let mut idle = Duration::from_secs(10);
    while let Ok(Ok(m)) = tokio::time::timeout(idle, consumer.recv()).await {
        let headers = m
            .headers()
            .map(|h| {
                use rdkafka::message::Headers;
                h.iter()
                    .map(|h| (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        out.push((m.payload().unwrap_or_default().to_vec(), headers));
        idle = Duration::from_secs(3);
    }
    out
}

/// Aggregated metrics by (name, dimensions, timestamp), `creation_time`
/// removed (it is the processing time); panics on a repeated key.
pub fn by_series(records: &[(Vec<u8>, Vec<(String, String)>)]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (value, _) in records {
        let mut v: Value = serde_json::from_slice(value).expect("aggregated metric is JSON");
        v.as_object_mut().map(|o| o.remove("creation_time"));
        let m = &v["metric"];
        let key = format!("{} {} {}", m["name"], m["dimensions"], m["timestamp"]);
        assert!(out.insert(key.clone(), v).is_none(), "{key} was produced twice");
    }
    out
}
