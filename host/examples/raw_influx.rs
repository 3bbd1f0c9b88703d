//! A raw Rust consumer that writes pre-rendered line protocol to InfluxDB:
//! the InfluxDB limit the persister benchmark compares against. Each Kafka
//! message value is already one line; lines are gathered into requests of
//! 5,000, gzip-compressed and posted with `precision=ms`, up to four requests
//! in flight, and offsets are stored once a request's lines are written. No
//! wasm, no parsing, no effects layer.
//!
//! Run: `cargo run --release -p monasca-wasm --example raw_influx -- BOOTSTRAP TOPIC GROUP INFLUX_URL DATABASE`
//! (stops on SIGTERM/SIGINT).

use flate2::write::GzEncoder;
use monasca_wasm::config::KafkaConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::TopicPartitionList;
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LINES_PER_REQUEST: usize = 5000;
const IN_FLIGHT: usize = 4;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, topic, group, url, database] = args.as_slice() else {
        anyhow::bail!("usage: raw_influx BOOTSTRAP TOPIC GROUP INFLUX_URL DATABASE");
    };
    let kafka = KafkaConfig {
        bootstrap: bootstrap.clone(),
        properties: Default::default(),
        embedded_partitions: 6,
        instance_id: None,
    };
    let consumer: BaseConsumer = monasca_wasm::kafka::consumer_config(&kafka, bootstrap, group).create()?;
    consumer.subscribe(&[topic])?;
    let http = reqwest::Client::new();
    let created =
        http.post(format!("{url}/query")).form(&[("q", format!("CREATE DATABASE \"{database}\""))]).send().await?;
    anyhow::ensure!(created.status().is_success(), "CREATE DATABASE: {}", created.status());
    let write_url = format!("{url}/write?db={database}&precision=ms");
    let stop = Arc::new(AtomicBool::new(false));
    stop_on_signal(&stop);

    type Write = tokio::task::JoinHandle<anyhow::Result<()>>;
    let mut in_flight: VecDeque<(TopicPartitionList, Write)> = VecDeque::new();
    while !stop.load(Ordering::Relaxed) {
        let mut body = Vec::with_capacity(LINES_PER_REQUEST * 200);
        // The next offset to read per partition of the one topic (one entry each: a list with
        // the same partition twice does not store the later offset).
        let mut next: HashMap<i32, i64> = HashMap::new();
        let mut lines = 0;
        let deadline = Instant::now() + Duration::from_millis(100);
        while lines < LINES_PER_REQUEST && Instant::now() < deadline {
            let polled = tokio::task::block_in_place(|| consumer.poll(Duration::from_millis(10)));
            let Some(message) = polled else { continue };
            let m = message?;
            body.extend_from_slice(m.payload().unwrap_or_default());
            body.push(b'\n');
            lines += 1;
            next.insert(m.partition(), m.offset() + 1);
        }
        let mut offsets = TopicPartitionList::new();
        for (partition, offset) in &next {
            offsets.add_partition_offset(topic, *partition, rdkafka::Offset::Offset(*offset))?;
        }
        if lines > 0 {
            let mut gzip = GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::fast());
            gzip.write_all(&body)?;
            let compressed = gzip.finish()?;
            let request = http.post(&write_url).header("Content-Encoding", "gzip").body(compressed);
            let write = tokio::spawn(async move {
                let response = request.send().await?;
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                anyhow::ensure!(status.is_success(), "InfluxDB answered {status}: {text}");
                Ok(())
            });
            in_flight.push_back((offsets, write));
        }
        while in_flight.len() > IN_FLIGHT || in_flight.front().is_some_and(|(_, w)| w.is_finished()) {
            let Some((offsets, write)) = in_flight.pop_front() else { break };
            write.await??;
            consumer.store_offsets(&offsets)?;
        }
    }
    for (offsets, write) in in_flight {
        write.await??;
        consumer.store_offsets(&offsets)?;
    }
    // "No offset stored" here only means the auto-commit got there first.
    let _ = consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync);
    Ok(())
}

/// Sets `flag` on SIGTERM or SIGINT.
fn stop_on_signal(flag: &Arc<AtomicBool>) {
    let flag = flag.clone();
    tokio::spawn(async move {
        if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            tokio::select! { _ = term.recv() => {}, _ = tokio::signal::ctrl_c() => {} }
        }
        flag.store(true, Ordering::Relaxed);
    });
}
