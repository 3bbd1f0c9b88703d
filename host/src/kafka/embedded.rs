//! The embedded development broker: librdkafka's mock cluster, in-process,
//! so that `bootstrap = "embedded"` runs the whole pipeline on a machine
//! with no Kafka. Nothing survives the process; for development and demos only.

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// A running mock cluster.
pub struct EmbeddedKafka {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl EmbeddedKafka {
    /// Start a one-broker cluster with `topics`, each with `partitions` partitions.
    pub fn start(topics: &[&str], partitions: i32) -> rdkafka::error::KafkaResult<Self> {
        let cluster = MockCluster::new(1)?;
        for topic in topics {
            cluster.create_topic(topic, partitions, 1)?;
        }
        Ok(EmbeddedKafka { cluster })
    }

    /// The `bootstrap.servers` of the cluster.
    pub fn bootstrap(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// The cluster, for fault injection in tests.
    pub fn cluster(&self) -> &MockCluster<'static, DefaultProducerContext> {
        &self.cluster
    }
}
