//! Pipelines on a real Apache Kafka broker (`monasca_test_programs::kafka`):
//! every input reaches the output exactly once and in partition order, and
//! poison messages are dead-lettered with their headers while the rest pass.

mod common;

use monasca_test_programs::{kafka, unique, HOSTILE, PASSTHROUGH};
use monasca_wasm::config::{BatchConfig, KafkaConfig, PipelineConfig};
use monasca_wasm::pipeline::stats::Stats;
use monasca_wasm::pipeline::{Pipeline, PipelineParts};
use monasca_wasm::sinks::Sinks;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

fn kafka_config() -> KafkaConfig {
    KafkaConfig { bootstrap: kafka().to_string(), properties: BTreeMap::new(), embedded_partitions: 6 }
}

async fn create_topics(names: &[&str], partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", kafka()).create().expect("admin client");
    let topics: Vec<NewTopic<'_>> =
        names.iter().map(|n| NewTopic::new(n, partitions, TopicReplication::Fixed(1))).collect();
    for result in admin.create_topics(&topics, &AdminOptions::new()).await.expect("create topics") {
        result.expect("topic created");
    }
}

struct Running {
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), monasca_wasm::pipeline::PipelineError>>,
    stats: Arc<Stats>,
}

impl Running {
    async fn stop(self) {
        let _ = self.shutdown.send(true);
        self.task.await.expect("pipeline task").expect("pipeline stops cleanly");
    }
}

fn start(config: PipelineConfig, module: &str) -> Running {
    let engine = common::engine();
    let kafka = kafka_config();
    let producer: FutureProducer =
        monasca_wasm::kafka::producer_config(&kafka, kafka.bootstrap.as_str()).create().expect("producer");
    let pipeline = Pipeline::start(PipelineParts {
        consumer_config: monasca_wasm::kafka::consumer_config(&kafka, &kafka.bootstrap, &config.group_id),
        module: engine.load_file(module).expect("module loads"),
        config,
        producer,
        sinks: Arc::new(Sinks::default()),
    })
    .expect("pipeline starts");
    let stats = pipeline.stats();
    let (shutdown, rx) = watch::channel(false);
    Running { shutdown, task: tokio::spawn(pipeline.run(rx)), stats }
}

fn pipeline_config(name: &str, input: &str, output: &str, dlq: &str) -> PipelineConfig {
    PipelineConfig {
        name: name.to_string(),
        module: Default::default(),
        topics: vec![input.to_string()],
        group_id: unique("group"),
        output_topic: Some(output.to_string()),
        dead_letter_topic: Some(dlq.to_string()),
        batch: BatchConfig { max_messages: 500, max_bytes: 1 << 20, max_wait_ms: 50 },
        concurrency: 2,
        delivery_timeout_ms: 30_000,
        config: BTreeMap::new(),
    }
}

/// Produce `values` keyed by their index; returns value → (partition, offset).
async fn produce_all(topic: &str, values: &[String]) -> HashMap<String, (i32, i64)> {
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", kafka()).set("linger.ms", "5").create().expect("producer");
    let mut placed = HashMap::new();
    for chunk in values.chunks(5000) {
        let sends = chunk.iter().map(|v| {
            let producer = &producer;
            async move {
                let key = v.clone();
                let delivery = producer
                    .send(FutureRecord::to(topic).payload(v.as_str()).key(key.as_str()), Duration::from_secs(30))
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

/// Read `topic` from the start until `expected` messages arrived (or 120 s passed).
async fn consume(topic: &str, expected: usize) -> Vec<rdkafka::message::OwnedMessage> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka())
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
    // Anything beyond `expected` would be a duplicate: give it a moment to show.
    while let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(3), consumer.recv()).await {
        out.push(m.detach());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn passthrough_delivers_every_message_once_in_partition_order() {
    const N: usize = 100_000;
    let (input, output, dlq) = (unique("pt-in"), unique("pt-out"), unique("pt-dlq"));
    create_topics(&[&input, &output, &dlq], 6).await;
    let values: Vec<String> = (0..N).map(|i| format!("message-{i:06}")).collect();
    let placed = produce_all(&input, &values).await;

    let running = start(pipeline_config("passthrough-test", &input, &output, &dlq), PASSTHROUGH);
    let received = consume(&output, N).await;
    let stats = running.stats.snapshot();
    running.stop().await;

    let got: Vec<String> =
        received.iter().map(|m| String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()).collect();
    let unique_got: HashSet<&String> = got.iter().collect();
    assert_eq!(unique_got.len(), got.len(), "duplicates in the output");
    assert_eq!(unique_got, values.iter().collect::<HashSet<_>>(), "output differs from input");
    assert_eq!(stats.consumed as usize, N);

    // Keys are kept, so a key's messages share a partition on both sides:
    // per output partition, the input offsets of each input partition rise.
    let mut last: HashMap<(i32, i32), i64> = HashMap::new();
    for m in &received {
        let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
        let (in_partition, in_offset) = placed[&value];
        let previous = last.insert((m.partition(), in_partition), in_offset);
        assert!(previous.is_none_or(|p| p < in_offset), "order broken in partition {}", m.partition());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_messages_are_dead_lettered_with_headers_and_the_rest_pass() {
    let (input, output, dlq) = (unique("poison-in"), unique("poison-out"), unique("poison-dlq"));
    create_topics(&[&input, &output, &dlq], 3).await;
    let values: Vec<String> =
        (0..2000).map(|i| if i % 250 == 7 { format!("POISON-{i}") } else { format!("fine-{i}") }).collect();
    let placed = produce_all(&input, &values).await;
    let poison: HashSet<&String> = values.iter().filter(|v| v.starts_with("POISON")).collect();

    let mut config = pipeline_config("poison-test", &input, &output, &dlq);
    config.config.insert("mode".into(), "poison".into());
    let running = start(config, HOSTILE);
    let passed = consume(&output, values.len() - poison.len()).await;
    let dead = consume(&dlq, poison.len()).await;
    running.stop().await;

    let passed: HashSet<String> =
        passed.iter().map(|m| String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()).collect();
    assert_eq!(passed.len(), values.len() - poison.len());
    assert!(passed.iter().all(|v| v.starts_with("fine")));
    assert_eq!(dead.len(), poison.len(), "each poison message dead-lettered once");
    for m in &dead {
        let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
        assert!(poison.contains(&value), "{value} is not poison");
        let headers: HashMap<String, String> = m
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let (partition, offset) = placed[&value];
        assert_eq!(headers["dlq.pipeline"], "poison-test");
        assert_eq!(headers["dlq.topic"], input);
        assert_eq!(headers["dlq.partition"], partition.to_string());
        assert_eq!(headers["dlq.offset"], offset.to_string());
        assert!(headers["dlq.module"].starts_with("hostile sha256:"), "{headers:?}");
        assert!(headers["dlq.reason"].contains("poisoned by offset"), "{headers:?}");
        assert_eq!(m.key(), Some(value.as_bytes()), "the original key is kept");
    }
}
