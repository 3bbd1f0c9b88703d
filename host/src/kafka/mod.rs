//! Kafka clients: how the host's consumers and producer are configured, the
//! queue a pipeline's consumer reads its messages from in batches
//! ([`fetch_queue`]), and the embedded mock cluster for development.
//!
//! Defaults the host sets (the `[kafka.properties]` table overrides them):
//! - consumer: `partition.assignment.strategy = cooperative-sticky`,
//!   `enable.auto.offset.store = false` (offsets are stored only once a
//!   batch's effects are done), `enable.auto.commit = true` every 250 ms (so
//!   only stored offsets are committed, asynchronously),
//!   `auto.offset.reset = earliest`;
//! - producer: `enable.idempotence = true`, `acks = all`, `linger.ms = 5`
//!   (a batch's records are sent together; 5 ms costs little latency against
//!   a 100 ms batch window and fills broker requests), `batch.num.messages =
//!   10000`, `compression.type = lz4`.

pub mod embedded;
pub mod fetch_queue;
pub mod topics;

use crate::config::KafkaConfig;
use rdkafka::ClientConfig;

/// A client configuration with the operator's pass-through properties.
fn base(kafka: &KafkaConfig, bootstrap: &str, defaults: &[(&str, &str)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    for (key, value) in defaults {
        config.set(*key, *value);
    }
    for (key, value) in &kafka.properties {
        config.set(key, value);
    }
    config
}

/// A client with the bootstrap and the operator's properties only (admin
/// requests, changelog restores).
pub fn client_config(kafka: &KafkaConfig, bootstrap: &str) -> ClientConfig {
    base(kafka, bootstrap, &[])
}

/// Configuration of a pipeline's consumer.
pub fn consumer_config(kafka: &KafkaConfig, bootstrap: &str, group_id: &str) -> ClientConfig {
    let mut config = base(
        kafka,
        bootstrap,
        &[
            ("partition.assignment.strategy", "cooperative-sticky"),
            ("enable.auto.offset.store", "false"),
            ("enable.auto.commit", "true"),
            ("auto.commit.interval.ms", "250"),
            ("auto.offset.reset", "earliest"),
            ("enable.partition.eof", "false"),
            ("session.timeout.ms", "10000"),
            ("fetch.min.bytes", "1"),
            ("queued.max.messages.kbytes", "65536"),
        ],
    );
    config.set("group.id", group_id);
    config
}

/// The static group membership of `pipeline`'s consumer, when the host has
/// an `instance_id`: `group.instance.id` is `<instance_id>.<pipeline>`.
pub fn static_membership(config: &mut ClientConfig, kafka: &KafkaConfig, pipeline: &str) {
    if let Some(id) = kafka.instance_id.as_deref().filter(|id| !id.is_empty()) {
        config.set("group.instance.id", format!("{id}.{pipeline}"));
    }
}

/// Configuration of the shared idempotent producer.
pub fn producer_config(kafka: &KafkaConfig, bootstrap: &str) -> ClientConfig {
    base(
        kafka,
        bootstrap,
        &[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("linger.ms", "5"),
            ("batch.num.messages", "10000"),
            ("compression.type", "lz4"),
            ("queue.buffering.max.messages", "1000000"),
            ("message.timeout.ms", "300000"),
        ],
    )
}
