//! Partition state and exactly-once, end to end on a real broker with the
//! `monasca-wasm run` binary: the keyed counter guest keeps per-key totals in
//! the host's partition state, and every output names the total and count
//! after its message. Killed with SIGKILL five times in exactly-once mode,
//! the output read committed is exactly an uninterrupted run's, record for
//! record; in at-least-once mode outputs may repeat but the state never
//! skips or repeats a count.

mod common;

use common::counter::{counter_config, differences, inputs, produce_keyed, run_with_kills, CounterHost, Reader, KEYS};
use common::kafka::{create_topics_on, terminate};
use monasca_test_programs::{kafka, unique};
use std::time::Duration;

const PARTITIONS: i32 = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_once_output_survives_five_kills_record_for_record() {
    const N: usize = 300_000;
    let (input, output, group) = (unique("eos-in"), unique("eos-out"), unique("eos"));
    create_topics_on(kafka(), &[&input, &output], PARTITIONS).await;
    let (inputs, expected) = inputs(N);
    produce_keyed(&input, &inputs).await;
    let dir = tempfile::tempdir().unwrap();
    let id = format!("{group}-host");
    let host = CounterHost { transactional_id: Some(&id), ..Default::default() };
    let config = counter_config(dir.path(), "host.toml", &input, &output, &group, &host);
    let reader = Reader::start(&output);

    let host = run_with_kills(&config, &reader, 5, N / 10, N).await;
    reader.wait_for(N, Duration::from_secs(180)).await;
    let (status, stderr) = terminate(host);
    assert!(status.success(), "the last run did not stop cleanly: {status}\n{stderr}");
    let seen = reader.stop();

    let outputs: usize = seen.values().map(Vec::len).sum();
    let wrong = differences(&seen, &expected);
    assert!(wrong.is_empty(), "{} of {KEYS} keys differ, e.g. {:?}", wrong.len(), &wrong[..wrong.len().min(5)]);
    assert_eq!(outputs, N, "every input gives exactly one committed output");
    eprintln!("exactly-once, kill -9 x5: {N} inputs, {outputs} outputs read committed, identical per key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn at_least_once_state_never_skips_or_repeats_a_count_across_kills() {
    const N: usize = 100_000;
    let (input, output, group) = (unique("alo-in"), unique("alo-out"), unique("alo"));
    create_topics_on(kafka(), &[&input, &output], PARTITIONS).await;
    let (inputs, expected) = inputs(N);
    produce_keyed(&input, &inputs).await;
    let dir = tempfile::tempdir().unwrap();
    let id = format!("{group}-host");
    let host = CounterHost { delivery: "at-least-once", transactional_id: Some(&id), ..Default::default() };
    let config = counter_config(dir.path(), "host.toml", &input, &output, &group, &host);
    let reader = Reader::start(&output);

    let host = run_with_kills(&config, &reader, 3, N / 6, N).await;
    // Repeats count towards N: wait for every distinct output.
    reader.wait_for_distinct(N, Duration::from_secs(120)).await;
    let (status, stderr) = terminate(host);
    assert!(status.success(), "the last run did not stop cleanly: {status}\n{stderr}");
    let seen = reader.stop();

    let (mut outputs, mut repeats) = (0, 0);
    for (key, want) in &expected {
        let got = seen.get(key).cloned().unwrap_or_default();
        outputs += got.len();
        // Duplicates are whole records again; dropping them must give exactly
        // the uninterrupted run (a count skipped or computed from a state
        // that went back would differ).
        let mut distinct: Vec<String> = Vec::with_capacity(want.len());
        for value in got {
            if distinct.contains(&value) {
                repeats += 1;
            } else {
                distinct.push(value);
            }
        }
        assert_eq!(&distinct, want, "{key}: the outputs without repeats differ from an uninterrupted run");
    }
    eprintln!("at-least-once, kill -9 x3: {N} inputs, {outputs} outputs, {repeats} repeated records");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_of_a_million_keys_restores_exactly() {
    use monasca_wasm::state::changelog::{record_key, restore};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    use rdkafka::ClientConfig;
    const KEYS: usize = 1_000_000;
    let (changelog, topic) = (unique("restore.changelog"), "metrics");
    create_topics_on(kafka(), &[&changelog], 2).await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka())
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    // Partition 1's million keys (each written twice, the second value wins),
    // a tombstone for every thousandth, and another topic's state beside them.
    let mut sends = Vec::with_capacity(20_000);
    for round in 0..2 {
        for i in 0..KEYS {
            let key = record_key(topic, 1, format!("key-{i:07}").as_bytes());
            let value = format!("value-{i}-{round}");
            sends.push(
                producer
                    .send_result(FutureRecord::to(&changelog).partition(1).key(&key).payload(&value))
                    .expect("queued"),
            );
            if sends.len() == 20_000 {
                for delivery in futures::future::join_all(sends.drain(..)).await {
                    delivery.expect("delivery").expect("delivered");
                }
            }
        }
    }
    for i in (0..KEYS).step_by(1000) {
        let key = record_key(topic, 1, format!("key-{i:07}").as_bytes());
        sends.push(
            producer.send_result(FutureRecord::<[u8], [u8]>::to(&changelog).partition(1).key(&key)).expect("queued"),
        );
    }
    let other = record_key("other-topic", 1, b"key-0000001");
    sends.push(
        producer.send_result(FutureRecord::to(&changelog).partition(1).key(&other).payload("x")).expect("queued"),
    );
    for delivery in futures::future::join_all(sends).await {
        delivery.expect("delivery").expect("delivered");
    }

    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", kafka());
    let limits = monasca_wasm::state::StateLimits::default();
    let started = std::time::Instant::now();
    let (store, read) = tokio::task::spawn_blocking(move || {
        restore(&client, &changelog, topic, 1, limits, Duration::from_secs(300)).expect("restored")
    })
    .await
    .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(store.len(), KEYS - KEYS / 1000, "every key but the deleted ones");
    assert_eq!(read.records as usize, 2 * KEYS + KEYS / 1000 + 1);
    assert_eq!(store.get(b"key-0000001"), Some(&b"value-1-1"[..]), "the latest value wins");
    assert_eq!(store.get(b"key-0001000"), None, "a tombstone deletes");
    assert_eq!(store.get(b"key-0999999"), Some(&b"value-999999-1"[..]));
    eprintln!(
        "restore: {} records, {} keys, {} bytes in {:.2} s ({:.3} s per 100,000 keys)",
        read.records,
        store.len(),
        store.bytes(),
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() / (store.len() as f64 / 100_000.0)
    );
}
