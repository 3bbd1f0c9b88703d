//! A raw rdkafka consume-and-produce loop with no wasm, no effects layer and
//! no per-partition workers: the limit the pipeline benchmark compares the
//! host against. Same client settings as the host (`monasca_wasm::kafka`),
//! same batching (up to 1000 messages or 100 ms), records enqueued in order
//! with `send_result`, up to 4 batches awaiting acknowledgement, offsets
//! stored in batch order once a batch is acknowledged.
//!
//! Run: `cargo run --release -p monasca-wasm --example raw_loop -- BOOTSTRAP INPUT OUTPUT GROUP`
//! (stops on SIGTERM/SIGINT).

use monasca_wasm::config::KafkaConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::TopicPartitionList;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, input, output, group] = args.as_slice() else {
        anyhow::bail!("usage: raw_loop BOOTSTRAP INPUT OUTPUT GROUP");
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let _entered = runtime.enter();
    let kafka = KafkaConfig {
        bootstrap: bootstrap.clone(),
        properties: Default::default(),
        embedded_partitions: 6,
        instance_id: None,
    };
    let consumer: BaseConsumer = monasca_wasm::kafka::consumer_config(&kafka, bootstrap, group).create()?;
    let producer: FutureProducer = monasca_wasm::kafka::producer_config(&kafka, bootstrap).create()?;
    consumer.subscribe(&[input])?;
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook_flag(&stop);

    let mut in_flight: VecDeque<(TopicPartitionList, Vec<DeliveryFuture>)> = VecDeque::new();
    while !stop.load(Ordering::Relaxed) {
        // The next offset to read per partition of the one topic (one entry each: a list with
        // the same partition twice does not store the later offset).
        let mut next: HashMap<i32, i64> = HashMap::new();
        let mut deliveries = Vec::with_capacity(1000);
        let deadline = Instant::now() + Duration::from_millis(100);
        while deliveries.len() < 1000 && Instant::now() < deadline {
            let Some(message) = consumer.poll(Duration::from_millis(10)) else { continue };
            let m = message?;
            let mut record = FutureRecord::to(output).payload(m.payload().unwrap_or_default());
            if let Some(key) = m.key() {
                record = record.key(key);
            }
            loop {
                match producer.send_result(record) {
                    Ok(delivery) => {
                        deliveries.push(delivery);
                        break;
                    }
                    Err((_, returned)) => {
                        record = returned;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
            next.insert(m.partition(), m.offset() + 1);
        }
        let mut offsets = TopicPartitionList::new();
        for (partition, offset) in &next {
            offsets.add_partition_offset(input, *partition, rdkafka::Offset::Offset(*offset))?;
        }
        if !deliveries.is_empty() {
            in_flight.push_back((offsets, deliveries));
        }
        // Keep up to four batches (of up to 1000 messages from any partition) awaiting acknowledgement.
        while in_flight.len() > 4 {
            let Some((offsets, deliveries)) = in_flight.pop_front() else { break };
            for delivery in runtime.block_on(futures::future::join_all(deliveries)) {
                delivery?.map_err(|(e, _)| e)?;
            }
            consumer.store_offsets(&offsets)?;
        }
    }
    Ok(())
}

/// Sets `flag` on SIGTERM or SIGINT.
fn signal_hook_flag(flag: &Arc<AtomicBool>) {
    let flag = flag.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal");
        tokio::select! { _ = term.recv() => {}, _ = tokio::signal::ctrl_c() => {} }
        flag.store(true, Ordering::Relaxed);
    });
}
