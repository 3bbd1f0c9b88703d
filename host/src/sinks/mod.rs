//! Sinks: where `store` effects go. A pipeline's guest names a sink; the host
//! looks it up among the `[sinks.<name>]` of the configuration.
//!
//! - `influxdb`: the line-protocol encoder (the InfluxDB writer comes with the
//!   persister issue);
//! - `null`: counts points and drops them, for development and benchmarks.

pub mod influxdb;

use crate::config::SinkConfig;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a sink write failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The guest named a sink the configuration does not define.
    #[error("the guest stores to sink `{0}`, which is not configured (add a [sinks.{0}] table)")]
    Unknown(String),
}

/// One configured sink.
#[derive(Debug)]
enum Sink {
    Null { points: AtomicU64 },
}

/// The configured sinks, by name.
#[derive(Debug, Default)]
pub struct Sinks {
    sinks: BTreeMap<String, Sink>,
}

impl Sinks {
    /// Build the sinks of a configuration.
    pub fn new(config: &BTreeMap<String, SinkConfig>) -> Self {
        let sinks = config
            .iter()
            .map(|(name, sink)| {
                let sink = match sink {
                    SinkConfig::Null => Sink::Null { points: AtomicU64::new(0) },
                };
                (name.clone(), sink)
            })
            .collect();
        Sinks { sinks }
    }

    /// Write `points` points to the sink `name` (their encoded form is
    /// `body`, when the guest encoded them). Returns once they are durable.
    pub async fn write(&self, name: &str, points: usize, _body: Option<&[u8]>) -> Result<(), SinkError> {
        match self.sinks.get(name) {
            Some(Sink::Null { points: count }) => {
                count.fetch_add(points as u64, Ordering::Relaxed);
                Ok(())
            }
            None => Err(SinkError::Unknown(name.to_string())),
        }
    }
}
