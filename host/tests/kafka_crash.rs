//! The `monasca-wasm run` binary on a real broker, killed with SIGKILL three
//! times during a 300,000-message run and restarted each time: no input is
//! missing from the output, every duplicate is explained by a batch that was
//! not committed when the host died (its input offset was at or past the
//! group's committed offset at that kill), and the last run stops cleanly on
//! SIGTERM. A SIGTERM during start-up stops the host cleanly too.

mod common;

use common::kafka::{committed_offsets, config_head, spawn_host, terminate};
use monasca_test_programs::{kafka, unique, PASSTHROUGH};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const N: usize = 300_000;
const PARTITIONS: i32 = 6;
const BATCH: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_three_times_loses_nothing() {
    let (input, output) = (unique("crash-in"), unique("crash-out"));
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", kafka()).create().expect("admin");
    let topics = [
        NewTopic::new(&input, PARTITIONS, TopicReplication::Fixed(1)),
        NewTopic::new(&output, PARTITIONS, TopicReplication::Fixed(1)),
    ];
    for r in admin.create_topics(&topics, &AdminOptions::new()).await.expect("create topics") {
        r.expect("topic created");
    }

    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", kafka()).set("linger.ms", "5").create().expect("producer");
    // Where each input landed: (partition, offset) by value.
    let mut placed: HashMap<String, (i32, i64)> = HashMap::with_capacity(N);
    for chunk in (0..N).collect::<Vec<_>>().chunks(10_000) {
        let values: Vec<String> = chunk.iter().map(|i| format!("v{i:06}")).collect();
        let sends =
            values.iter().map(|v| producer.send(FutureRecord::to(&input).payload(v).key(v), Duration::from_secs(30)));
        for (value, r) in values.iter().zip(futures::future::join_all(sends).await) {
            let delivery = r.expect("input delivered");
            placed.insert(value.clone(), (delivery.partition, delivery.offset));
        }
    }

    let group = unique("crash-group");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("host.toml");
    std::fs::write(
        &config,
        format!(
            r#"{head}
[[pipeline]]
name = "crash"
module = "{module}"
topics = ["{input}"]
group_id = "{group}"
output_topic = "{output}"
[pipeline.batch]
max_messages = {BATCH}
max_wait_ms = 50
"#,
            head = config_head("crash-cache"),
            module = PASSTHROUGH,
            group = group,
        ),
    )
    .unwrap();

    // Read the output as it grows.
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let reader = {
        let seen = seen.clone();
        let output = output.clone();
        tokio::spawn(async move {
            let consumer: StreamConsumer = ClientConfig::new()
                .set("bootstrap.servers", kafka())
                .set("group.id", unique("crash-reader"))
                .set("auto.offset.reset", "earliest")
                .create()
                .expect("reader");
            consumer.subscribe(&[&output]).expect("subscribe");
            loop {
                if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await {
                    let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                    *seen.lock().unwrap().entry(v).or_default() += 1;
                }
            }
        })
    };
    let distinct = || seen.lock().unwrap().len();

    // Three runs killed with SIGKILL once they have made some progress; the
    // group's committed offsets are read after each kill.
    let mut committed_at_kill: Vec<HashMap<i32, i64>> = Vec::new();
    for kill in 1..=3 {
        let before = distinct();
        let mut host = spawn_host(&config);
        let deadline = Instant::now() + Duration::from_secs(90);
        while distinct() < before + N / 8 && distinct() < N && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(host.running(), "run {kill} exited on its own:\n{}", host.stderr());
        host.kill();
        committed_at_kill.push(committed_offsets(kafka(), &group, &input, PARTITIONS));
    }

    // The last run finishes the work, then stops on SIGTERM.
    let host = spawn_host(&config);
    let deadline = Instant::now() + Duration::from_secs(120);
    while distinct() < N && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, stderr) = terminate(host);
    reader.abort();
    assert!(status.success(), "the last run did not stop cleanly on SIGTERM: {status}\n{stderr}");

    let seen = seen.lock().unwrap();
    let missing: Vec<String> = (0..N).map(|i| format!("v{i:06}")).filter(|v| !seen.contains_key(v)).take(5).collect();
    assert!(missing.is_empty(), "{} inputs missing from the output, e.g. {missing:?}", N - seen.len());
    // A kill replays only what was not committed when it happened: a message
    // may have one extra copy per kill at which its offset was at or past the
    // committed offset of its partition.
    let mut duplicates = 0;
    for (value, copies) in seen.iter() {
        let (partition, offset) = placed[value];
        let explained = committed_at_kill.iter().filter(|c| offset >= c.get(&partition).copied().unwrap_or(0)).count();
        assert!(
            copies - 1 <= explained,
            "{value} (partition {partition}, offset {offset}) came out {copies} times, but only {explained} kills \
             happened before it was committed (committed offsets at each kill: {committed_at_kill:?})"
        );
        duplicates += copies - 1;
    }
    eprintln!("kill -9 x3: {N} inputs, {} outputs, {duplicates} duplicates", seen.values().sum::<usize>());
}

/// A SIGTERM that arrives while the host is still starting (loading its
/// module, joining its group) is held and stops it cleanly once it runs: the
/// signal handler is in place before anything starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_starting_stops_the_host_cleanly() {
    let (input, output) = (unique("early-in"), unique("early-out"));
    common::kafka::create_topics_on(kafka(), &[&input, &output], 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("host.toml");
    let pipeline = format!(
        "{head}\n[[pipeline]]\nname = \"early\"\nmodule = \"{module}\"\ntopics = [\"{input}\"]\n\
         group_id = \"{group}\"\noutput_topic = \"{output}\"\n",
        head = config_head("early-cache"),
        module = PASSTHROUGH,
        group = unique("early-group"),
    );
    std::fs::write(&config, pipeline).expect("config");
    for delay_ms in [100, 400] {
        let host = spawn_host(&config);
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let (status, stderr) = terminate(host);
        assert!(status.success(), "SIGTERM {delay_ms} ms after start: {status}\n{stderr}");
        assert!(
            stderr.contains("terminated: draining"),
            "SIGTERM {delay_ms} ms after start was not handled:\n{stderr}"
        );
    }
}
