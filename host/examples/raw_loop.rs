//! A raw rdkafka consume-and-produce loop with no wasm and no effects layer:
//! the limit the pipeline benchmark compares the host against. Same client
//! settings as the host (`monasca_wasm::kafka`), same batching (up to 1000
//! messages or 100 ms), offsets stored after each batch is acknowledged.
//!
//! Run: `cargo run --release -p monasca-wasm --example raw_loop -- BOOTSTRAP INPUT OUTPUT GROUP`
//! (stops on SIGTERM/SIGINT).

use monasca_wasm::config::KafkaConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::time::Duration;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, input, output, group] = args.as_slice() else {
        anyhow::bail!("usage: raw_loop BOOTSTRAP INPUT OUTPUT GROUP");
    };
    let kafka = KafkaConfig { bootstrap: bootstrap.clone(), properties: Default::default(), embedded_partitions: 6 };
    let consumer: StreamConsumer = monasca_wasm::kafka::consumer_config(&kafka, bootstrap, group).create()?;
    let producer: FutureProducer = monasca_wasm::kafka::producer_config(&kafka, bootstrap).create()?;
    consumer.subscribe(&[input])?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let mut batch = Vec::with_capacity(1000);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(100);
        while batch.len() < 1000 {
            tokio::select! {
                _ = term.recv() => return Ok(()),
                m = consumer.recv() => batch.push(m?.detach()),
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        let sends = batch.iter().map(|m| {
            let mut record = FutureRecord::to(output).payload(m.payload().unwrap_or_default());
            if let Some(key) = m.key() {
                record = record.key(key);
            }
            producer.send(record, Duration::from_secs(60))
        });
        for delivery in futures::future::join_all(sends).await {
            delivery.map_err(|(e, _)| e)?;
        }
        for m in &batch {
            consumer.store_offset(m.topic(), m.partition(), m.offset())?;
        }
    }
}
