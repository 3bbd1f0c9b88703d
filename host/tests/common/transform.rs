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
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Produce `values` unkeyed (the default partitioner spreads them) or to one partition.
/// Produce `values`, the i-th to partition `(first + i) % partitions`, in
/// order: the same values land in the same partitions in the same order,
/// whatever the topic (so that two inputs fed alike give the same sums,
/// float rounding included).
pub async fn produce_spread(topic: &str, partitions: i32, first: usize, values: &[String]) {
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", kafka()).set("linger.ms", "5").create().expect("producer");
    for (c, chunk) in values.chunks(5000).enumerate() {
        let sends = chunk.iter().enumerate().map(|(i, v)| {
            let partition = ((first + c * 5000 + i) % partitions as usize) as i32;
            producer.send(
                FutureRecord::<(), str>::to(topic).payload(v.as_str()).partition(partition),
                Duration::from_secs(30),
            )
        });
        for delivery in futures::future::join_all(sends).await {
            delivery.expect("input delivered");
        }
    }
}

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
    /// no committed record of the partials topic is left unread (its
    /// committed offset cannot reach the end: transaction markers follow the
    /// last record), twice in a row 2 s apart.
    pub async fn wait_done(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut stable = 0;
        while Instant::now() < deadline && stable < 2 {
            let input_done =
                committed(&self.name, self.input, self.sources) == high_watermarks(self.input, self.sources);
            let done = input_done && unread(&self.name, &self.partials) == 0;
            stable = if done { stable + 1 } else { 0 };
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        assert!(stable >= 2, "pipeline {} did not finish its input within {limit:?}", self.name);
    }
}

/// Records of partition 0 of `topic` after `group`'s committed offset that a
/// `read_committed` reader sees (what the group still has to read).
pub fn unread(group: &str, topic: &str) -> usize {
    use rdkafka::error::KafkaError;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka())
        .set("group.id", group)
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("unread reader");
    let mut list = rdkafka::TopicPartitionList::new();
    list.add_partition(topic, 0);
    let Ok(committed) = consumer.committed_offsets(list, Duration::from_secs(10)) else {
        return usize::MAX;
    };
    if consumer.assign(&committed).is_err() {
        return usize::MAX;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = 0;
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Err(KafkaError::PartitionEOF(_))) => return seen,
            Some(Ok(_)) => seen += 1,
            _ => {}
        }
    }
    usize::MAX
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

/// A record read back: its value and headers.
pub type Record = (Vec<u8>, Vec<(String, String)>);

/// Every record of `topic` read committed, until none came for 3 s.
pub async fn read_all(topic: &str) -> Vec<Record> {
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
pub fn by_series(records: &[Record]) -> BTreeMap<String, Value> {
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
