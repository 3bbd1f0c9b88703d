//! `monasca-wasm generate`: produce synthetic Monasca metric envelopes (or
//! alarm transitions) to a topic at a given rate, with a progress bar.

use crate::config::KafkaConfig;
use crate::generate::{alarm_transition, metric_envelope};
use crate::kafka;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::time::{Duration, Instant};

/// Arguments of `generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Brokers (`host:port,...`).
    #[arg(long, short)]
    pub bootstrap: String,
    /// Topic to produce to.
    #[arg(long, short, default_value = "metrics")]
    pub topic: String,
    /// Messages to produce.
    #[arg(long, short = 'n', default_value_t = 100_000)]
    pub count: u64,
    /// Messages per second (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Produce `alarm-transitioned` messages instead of metric envelopes.
    #[arg(long)]
    pub alarms: bool,
    /// First sequence number (to continue an earlier run without repeating it).
    #[arg(long, default_value_t = 0)]
    pub start: u64,
}

/// Produce the messages and report the rate.
pub async fn run(args: &GenerateArgs) -> anyhow::Result<()> {
    let kafka = KafkaConfig {
        bootstrap: args.bootstrap.clone(),
        properties: Default::default(),
        embedded_partitions: 6,
        instance_id: None,
    };
    let producer: FutureProducer =
        kafka::producer_config(&kafka, &args.bootstrap).create().context("cannot create the Kafka producer")?;
    let bar = ProgressBar::new(args.count);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} messages ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let make = if args.alarms { alarm_transition } else { metric_envelope };
    produce(&producer, &args.topic, args.start..args.start + args.count, args.rate, make, |n| bar.inc(n)).await?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "produced {} messages to `{}` in {:.1} s ({:.0} messages/s)",
        args.count,
        args.topic,
        seconds,
        args.count as f64 / seconds.max(0.001)
    );
    Ok(())
}

/// Produce `make(n)` for every `n` in `range` to `topic`, at most `rate`
/// per second (0: unlimited), in chunks of 1,000 whose deliveries are awaited
/// together; `progress` is told how many were acknowledged.
pub async fn produce(
    producer: &FutureProducer,
    topic: &str,
    range: std::ops::Range<u64>,
    rate: u64,
    make: fn(u64) -> Vec<u8>,
    progress: impl Fn(u64),
) -> anyhow::Result<()> {
    const CHUNK: u64 = 1000;
    let started = Instant::now();
    let mut next = range.start;
    while next < range.end {
        let end = (next + CHUNK).min(range.end);
        let values: Vec<Vec<u8>> = (next..end).map(make).collect();
        let keys: Vec<String> = (next..end).map(|n| n.to_string()).collect();
        let sends = values.iter().zip(&keys).map(|(value, key)| {
            producer.send(FutureRecord::to(topic).payload(value.as_slice()).key(key.as_str()), Duration::from_secs(60))
        });
        for result in futures::future::join_all(sends).await {
            result.map_err(|(e, _)| anyhow::anyhow!("delivery to `{topic}` failed: {e}"))?;
        }
        progress(end - next);
        next = end;
        if rate > 0 {
            let due = Duration::from_secs_f64((next - range.start) as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
    }
    Ok(())
}
