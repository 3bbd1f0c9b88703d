//! Pipelines on a real Apache Kafka broker (`monasca_test_programs::kafka`):
//! every input reaches the output exactly once and in partition order, and
//! poison messages are dead-lettered with their headers while the rest pass.

mod common;

use common::kafka::{consume_on, create_topics_on, produce_all_on};

use monasca_test_programs::{kafka, unique, HOSTILE, PASSTHROUGH};
use monasca_wasm::config::{BatchConfig, KafkaConfig, PipelineConfig};
use monasca_wasm::pipeline::stats::Stats;
use monasca_wasm::pipeline::{Pipeline, PipelineParts};
use monasca_wasm::sinks::Sinks;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

fn kafka_config(bootstrap: &str) -> KafkaConfig {
    KafkaConfig {
        bootstrap: bootstrap.to_string(),
        properties: BTreeMap::new(),
        embedded_partitions: 6,
        instance_id: None,
    }
}

async fn create_topics(names: &[&str], partitions: i32) {
    create_topics_on(kafka(), names, partitions).await
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

    /// Wait for the pipeline to stop on its own, with the error it reports.
    async fn failure(self) -> String {
        match tokio::time::timeout(Duration::from_secs(60), self.task).await {
            Ok(Ok(Err(e))) => e.to_string(),
            Ok(Ok(Ok(()))) => panic!("the pipeline was expected to fail"),
            Ok(Err(e)) => panic!("pipeline task panicked: {e}"),
            Err(_) => panic!("the pipeline did not stop within 60 s"),
        }
    }
}

async fn start(config: PipelineConfig, module: &str) -> Running {
    start_on(kafka_config(kafka()), config, module).await
}

/// The parts of a test pipeline running `module` on `kafka`.
fn parts(kafka: &KafkaConfig, config: PipelineConfig, module: &str) -> PipelineParts {
    let producer: FutureProducer =
        monasca_wasm::kafka::producer_config(kafka, kafka.bootstrap.as_str()).create().expect("producer");
    PipelineParts {
        consumer_config: monasca_wasm::kafka::consumer_config(kafka, &kafka.bootstrap, &config.group_id),
        module: common::engine().load_file(module).expect("module loads"),
        config,
        producer,
        sinks: Arc::new(Sinks::default()),
        lookups: Arc::new(monasca_wasm::engine::NoLookups),
        notifiers: None,
        client_config: monasca_wasm::kafka::client_config(kafka, &kafka.bootstrap),
        producer_config: monasca_wasm::kafka::producer_config(kafka, &kafka.bootstrap),
        host_inputs: Vec::new(),
        carried: None,
    }
}

async fn start_on(kafka: KafkaConfig, config: PipelineConfig, module: &str) -> Running {
    let pipeline = Pipeline::start(parts(&kafka, config, module)).await.expect("pipeline starts");
    let stats = pipeline.stats();
    let (shutdown, rx) = watch::channel(false);
    Running { shutdown, task: tokio::spawn(pipeline.run(rx)), stats }
}

fn pipeline_config(name: &str, input: &str, output: &str, dlq: &str) -> PipelineConfig {
    PipelineConfig {
        name: name.to_string(),
        module: Default::default(),
        topics: vec![input.to_string()],
        http: None,
        group_id: unique("group"),
        output_topic: Some(output.to_string()),
        dead_letter_topic: Some(dlq.to_string()),
        batch: BatchConfig { max_messages: 500, max_bytes: 1 << 20, max_wait_ms: 50, ..Default::default() },
        concurrency: 2,
        delivery_timeout_ms: 30_000,
        config: BTreeMap::new(),
        config_files: BTreeMap::new(),
        rollback: Default::default(),
        watch_dir: None,
        delay_seconds: 0,
        lookups: BTreeMap::new(),
        delivery: Default::default(),
        state: Default::default(),
        transaction: Default::default(),
        restart: Default::default(),
        produce_topics: None,
    }
}

/// Produce `values` keyed by themselves; returns value → (partition, offset).
async fn produce_all(topic: &str, values: &[String]) -> HashMap<String, (i32, i64)> {
    produce_all_on(kafka(), topic, values).await
}

/// Read `topic` from the start until `expected` messages arrived (or 120 s passed).
async fn consume(topic: &str, expected: usize) -> Vec<rdkafka::message::OwnedMessage> {
    consume_on(kafka(), topic, expected).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn passthrough_delivers_every_message_once_in_partition_order() {
    const N: usize = 100_000;
    let (input, output, dlq) = (unique("pt-in"), unique("pt-out"), unique("pt-dlq"));
    create_topics(&[&input, &output, &dlq], 6).await;
    let values: Vec<String> = (0..N).map(|i| format!("message-{i:06}")).collect();
    let placed = produce_all(&input, &values).await;

    let running = start(pipeline_config("passthrough-test", &input, &output, &dlq), PASSTHROUGH).await;
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
    let running = start(config, HOSTILE).await;
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

fn payloads(messages: &[rdkafka::message::OwnedMessage]) -> Vec<String> {
    messages.iter().map(|m| String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_effects_keep_the_offset_before_the_batch_and_it_is_replayed() {
    let (input, output, dlq) = (unique("fail-in"), unique("fail-out"), unique("fail-dlq"));
    create_topics(&[&input, &output, &dlq], 1).await;
    let values: Vec<String> =
        (0..100).map(|i| if i == 50 { "FAIL-50".to_string() } else { format!("ok-{i}") }).collect();
    let placed = produce_all(&input, &values).await;
    let fail_offset = placed["FAIL-50"].1;

    let mut config = pipeline_config("fail-test", &input, &output, &dlq);
    config.batch.max_messages = 10;
    config.batch.max_wait_ms = 1000;
    config.config.insert("mode".into(), "refused".into());
    config.produce_topics = Some(vec!["*".into()]);
    let group = config.group_id.clone();
    let failure = start(config.clone(), HOSTILE).await.failure().await;
    assert!(failure.contains("delivery"), "{failure}");

    // The committed offset never passes the failed batch.
    let reader: StreamConsumer =
        ClientConfig::new().set("bootstrap.servers", kafka()).set("group.id", &group).create().expect("reader");
    let mut wanted = rdkafka::TopicPartitionList::new();
    wanted.add_partition(&input, 0);
    let committed = reader.committed_offsets(wanted, Duration::from_secs(10)).expect("committed offsets");
    let committed = match committed.find_partition(&input, 0).map(|e| e.offset()) {
        Some(rdkafka::Offset::Offset(o)) => o,
        _ => 0,
    };
    assert!(committed <= fail_offset, "committed {committed} passed the failed message at {fail_offset}");
    drop(reader);

    // After a restart (same group, a guest that can deliver) the failed batch is processed.
    config.config.clear();
    let running = start(config, PASSTHROUGH).await;
    let replayed = payloads(&consume(&output, values.len()).await);
    running.stop().await;
    assert!(replayed.contains(&"FAIL-50".to_string()), "the failed batch was not replayed");
    let all: HashSet<&String> = replayed.iter().collect();
    assert_eq!(all, values.iter().collect::<HashSet<_>>(), "every input reached the output after the restart");
}

fn headers_of(m: &rdkafka::message::OwnedMessage) -> HashMap<String, String> {
    m.headers()
        .map(|hs| {
            hs.iter()
                .map(|h| (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_record_too_large_for_its_topic_dead_letters_its_message_and_the_rest_pass() {
    let (input, output, dlq) = (unique("big-in"), unique("big-out"), unique("big-dlq"));
    create_topics(&[&input, &output, &dlq], 1).await;
    let values: Vec<String> =
        (0..100).map(|i| if i == 50 { "FAIL-50".to_string() } else { format!("ok-{i}") }).collect();
    produce_all(&input, &values).await;
    let mut config = pipeline_config("big-test", &input, &output, &dlq);
    config.batch.max_messages = 10;
    // The hostile guest answers FAIL-50 with a 2 MiB record.
    config.config.insert("mode".into(), "oversize".into());
    let running = start(config, HOSTILE).await;
    let passed = payloads(&consume(&output, values.len() - 1).await);
    let dead = consume(&dlq, 1).await;
    running.stop().await;
    assert_eq!(passed.len(), values.len() - 1, "every other message passed");
    assert!(!passed.contains(&"FAIL-50".to_string()));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].payload(), Some(&b"FAIL-50"[..]));
    let reason = &headers_of(&dead[0])["dlq.reason"];
    assert!(reason.contains(&format!("record for topic `{output}` is 2097152 bytes")), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_record_for_a_topic_outside_the_allowlist_dead_letters_its_message() {
    let (input, output, dlq) = (unique("allow-in"), unique("allow-out"), unique("allow-dlq"));
    create_topics(&[&input, &output, &dlq], 1).await;
    let values: Vec<String> = (0..20).map(|i| if i == 5 { "FAIL-5".to_string() } else { format!("ok-{i}") }).collect();
    produce_all(&input, &values).await;
    let mut config = pipeline_config("allow-test", &input, &output, &dlq);
    // The hostile guest sends FAIL-5 to a topic no option names.
    config.config.insert("mode".into(), "refused".into());
    let running = start(config, HOSTILE).await;
    let passed = payloads(&consume(&output, values.len() - 1).await);
    let dead = consume(&dlq, 1).await;
    running.stop().await;
    assert_eq!(passed.len(), values.len() - 1);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].payload(), Some(&b"FAIL-5"[..]));
    let reason = &headers_of(&dead[0])["dlq.reason"];
    assert!(reason.contains("may not produce to (produce_topics)"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_letter_too_large_for_its_topic_is_cut_to_fit_and_the_partition_moves_on() {
    let (input, output, dlq) = (unique("bigdlq-in"), unique("bigdlq-out"), unique("bigdlq-dlq"));
    create_topics(&[&input, &output, &dlq], 1).await;
    // Just under the producer's 1,000,000 bytes: with the dead-letter headers it would be over.
    let huge = format!("POISON{}", "p".repeat(999_700 - 6));
    let values = vec!["fine-1".to_string(), huge.clone(), "fine-2".to_string()];
    common::kafka::produce_values(kafka(), &input, &values).await;
    let mut config = pipeline_config("bigdlq-test", &input, &output, &dlq);
    config.config.insert("mode".into(), "poison".into());
    let running = start(config, HOSTILE).await;
    let passed = payloads(&consume(&output, 2).await);
    let dead = consume(&dlq, 1).await;
    running.stop().await;
    assert_eq!(passed, vec!["fine-1".to_string(), "fine-2".to_string()], "the partition moved on");
    assert_eq!(dead.len(), 1, "dead-lettered once");
    let headers = headers_of(&dead[0]);
    let value = dead[0].payload().unwrap_or_default();
    assert!(value.len() < huge.len() && huge.as_bytes().starts_with(value), "a prefix of the value is kept");
    let truncated = headers.get("dlq.truncated").expect("it says what was cut");
    assert_eq!(truncated, &format!("value cut from {} to {} bytes", huge.len(), value.len()));
    assert!(headers["dlq.reason"].contains("poisoned by offset"), "{headers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_dead_letter_topic_is_created_at_start_and_an_impossible_one_refused() {
    let (input, output, dlq) = (unique("dlqmissing-in"), unique("dlqmissing-out"), unique("dlqmissing-dlq"));
    create_topics(&[&input, &output], 3).await;
    let running = start(pipeline_config("dlq-missing", &input, &output, &dlq), PASSTHROUGH).await;
    // Created before any message arrived, as wide as the input.
    let probe: rdkafka::consumer::BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", kafka()).create().expect("probe");
    let metadata = probe.fetch_metadata(Some(&dlq), Duration::from_secs(10)).expect("metadata");
    let topic = metadata.topics().first().expect("the topic");
    assert!(topic.error().is_none(), "{:?}", topic.error());
    assert_eq!(topic.partitions().len(), 3);
    running.stop().await;

    let config = pipeline_config("dlq-impossible", &input, &output, "not a topic name!");
    let refused =
        Pipeline::start(parts(&kafka_config(kafka()), config, PASSTHROUGH)).await.err().expect("refused at start");
    assert!(refused.to_string().contains("dead-letter topic `not a topic name!`"), "{refused}");
}

/// Retriable produce errors, disconnects and responses slower than the
/// request timeout (injected with librdkafka's mock cluster) lose nothing and
/// duplicate nothing. (The mock cluster delays requests before appending, so
/// this does not reproduce "appended, acknowledgement lost":
/// `lost_acknowledgements_leave_no_duplicates` does, on a real broker.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn injected_produce_errors_and_timeouts_lose_and_duplicate_nothing() {
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    let embedded = monasca_wasm::kafka::embedded::EmbeddedKafka::start(&["faults-in", "faults-out", "faults-dlq"], 3)
        .expect("mock cluster");
    let bootstrap = embedded.bootstrap();
    let values: Vec<String> = (0..20_000).map(|i| format!("value-{i:05}")).collect();
    produce_all_on(&bootstrap, "faults-in", &values).await;

    // The pipeline's produce requests now meet a run of retriable errors and disconnects.
    let errors = [
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR__TRANSPORT,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
    ];
    let injected: Vec<RDKafkaRespErr> = errors.iter().cycle().take(20).copied().collect();
    embedded.cluster().request_errors(RDKafkaApiKey::Produce, &injected);

    let mut kafka = kafka_config(&bootstrap);
    kafka.properties.insert("request.timeout.ms".into(), "1000".into());
    let running =
        start_on(kafka, pipeline_config("faults-test", "faults-in", "faults-out", "faults-dlq"), PASSTHROUGH).await;
    embedded.cluster().broker_round_trip_time(-1, Duration::from_millis(1500)).expect("rtt");
    tokio::time::sleep(Duration::from_secs(4)).await;
    embedded.cluster().broker_round_trip_time(-1, Duration::ZERO).expect("rtt");
    let got = payloads(&consume_on(&bootstrap, "faults-out", values.len()).await);
    running.stop().await;

    let unique_got: HashSet<&String> = got.iter().collect();
    assert_eq!(got.len(), unique_got.len(), "duplicates after injected produce errors");
    assert_eq!(unique_got, values.iter().collect::<HashSet<_>>(), "messages lost after injected produce errors");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_joining_and_another_leaving_mid_stream_lose_nothing() {
    const N: usize = 60_000;
    let (input, output, dlq) = (unique("group-in"), unique("group-out"), unique("group-dlq"));
    create_topics(&[&input, &output, &dlq], 6).await;
    let values: Vec<String> = (0..N).map(|i| format!("m{i:06}")).collect();

    // Input arrives over about six seconds while the group changes.
    let feeding = {
        let input = input.clone();
        let values = values.clone();
        tokio::spawn(async move {
            for chunk in values.chunks(5_000) {
                produce_all(&input, chunk).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    let config = pipeline_config("group-test", &input, &output, &dlq);
    let first = start(config.clone(), PASSTHROUGH).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let second = start(config, PASSTHROUGH).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    first.stop().await;
    feeding.await.expect("feeding");
    let got = payloads(&consume(&output, N).await);
    second.stop().await;

    let distinct: HashSet<&String> = got.iter().collect();
    let missing = values.iter().filter(|v| !distinct.contains(v)).count();
    assert_eq!(missing, 0, "{missing} messages missing after the group changed");
    eprintln!("join/leave: {N} inputs, {} outputs ({} duplicates)", got.len(), got.len() - distinct.len());
}

/// The Monasca plan's requirement: a producer that loses the acknowledgements
/// of part of a bulk and retries must not duplicate anything. A proxy in
/// front of a real broker forwards Produce requests, lets the broker append
/// them, and cuts the connection before the answer; the pipeline's idempotent
/// producer retries and the output holds every message exactly once. (With
/// `enable.idempotence = false` the same run leaves thousands of duplicates:
/// 9,733 of 20,000 when this test was written.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lost_acknowledgements_leave_no_duplicates() {
    use monasca_test_programs::proxy::KafkaProxy;
    use monasca_test_programs::{free_port, kafka_behind_proxy};
    let broker_port = free_port();
    let proxy = KafkaProxy::start(broker_port).await.expect("proxy");
    let proxy_port = proxy.port();
    tokio::task::spawn_blocking(move || kafka_behind_proxy(broker_port, proxy_port)).await.expect("broker");
    let bootstrap = format!("127.0.0.1:{proxy_port}");

    create_topics_on(&bootstrap, &["acks-in", "acks-out", "acks-dlq"], 3).await;
    let values: Vec<String> = (0..20_000).map(|i| format!("a{i:05}")).collect();
    produce_all_on(&bootstrap, "acks-in", &values).await;

    proxy.arm(3, 5);
    let mut config = pipeline_config("acks-test", "acks-in", "acks-out", "acks-dlq");
    config.batch.max_messages = 500;
    let running = start_on(kafka_config(&bootstrap), config, PASSTHROUGH).await;
    let got = payloads(&consume_on(&bootstrap, "acks-out", values.len()).await);
    running.stop().await;

    assert!(proxy.cuts_made() > 0, "the proxy lost no acknowledgement: the test proved nothing");
    let distinct: HashSet<&String> = got.iter().collect();
    assert_eq!(got.len() - distinct.len(), 0, "duplicates after {} lost acknowledgements", proxy.cuts_made());
    assert_eq!(distinct, values.iter().collect::<HashSet<_>>());
}
