//! Sinks: where `store` effects go. A pipeline's guest names a sink; the host
//! looks it up among the `[sinks.<name>]` of the configuration.
//!
//! - `influxdb`: InfluxDB 1.x over HTTP (`influxdb`);
//! - `sqlite`: a SQLite file, the embedded default (`sqlite`);
//! - `null`: counts points and drops them, for development and benchmarks.
//!
//! Every sink receives InfluxDB line protocol (one point per line, millisecond
//! timestamps) with the tenant of its points, and answers once the points are
//! durable. A point the sink refuses for good (a parse error, a type
//! conflict) comes back by line number so that its message is dead-lettered;
//! every other failure is retried inside the sink or, when it cannot be
//! retried (bad credentials), stops the pipeline without committing.

pub mod influxdb;
pub mod lines;
pub mod sqlite;

use crate::config::SinkConfig;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a sink write failed for good.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The guest named a sink the configuration does not define.
    #[error("the guest stores to sink `{0}`, which is not configured (add a [sinks.{0}] table)")]
    Unknown(String),
    /// The sink cannot be used with this configuration (e.g. refused
    /// credentials); retrying would not help.
    #[error("sink `{sink}`: {reason}")]
    Fatal {
        /// Sink name.
        sink: String,
        /// What went wrong.
        reason: String,
    },
    /// The sink could not be set up.
    #[error("sink `{sink}` cannot start: {reason}")]
    Setup {
        /// Sink name.
        sink: String,
        /// What went wrong.
        reason: String,
    },
}

/// Points to write: line protocol and whose they are.
#[derive(Debug, Clone, Copy)]
pub struct Points<'a> {
    /// The tenant of every point, when the guest said.
    pub tenant: Option<&'a str>,
    /// Line protocol, `\n`-separated, one point per line.
    pub body: &'a [u8],
}

/// A point the sink refused for good: its line number in the write and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Index of the line in [`Points::body`].
    pub line: usize,
    /// Why (the sink's own words).
    pub reason: String,
}

/// One configured sink.
enum Sink {
    Null { points: AtomicU64 },
    Influxdb(Box<influxdb::InfluxDb>),
    Sqlite(sqlite::SqliteSink),
}

/// The configured sinks, by name.
#[derive(Default)]
pub struct Sinks {
    sinks: BTreeMap<String, Sink>,
    health: BTreeMap<String, Health>,
    /// Turns true when the host stops: writes that are waiting to retry give
    /// up (their batches' offsets are not stored) instead of holding the
    /// shutdown for as long as a server is down.
    stopping: tokio::sync::watch::Sender<bool>,
}

/// How a sink's writes went, for `/metrics`.
#[derive(Debug, Default)]
struct Health {
    refused: AtomicU64,
    errors: AtomicU64,
}

/// A sink's counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkHealth {
    /// Sink name.
    pub name: String,
    /// Requests retried (InfluxDB: 5xx, timeouts, connection errors).
    pub retries: u64,
    /// Points refused for good (and dead-lettered).
    pub refused: u64,
    /// Writes that failed for good (the pipeline stopped).
    pub errors: u64,
}

impl Sinks {
    /// Build the sinks of a configuration (opening files, building clients;
    /// nothing is contacted yet).
    pub fn new(config: &BTreeMap<String, SinkConfig>) -> Result<Self, SinkError> {
        let (stopping, stop) = tokio::sync::watch::channel(false);
        let mut sinks = BTreeMap::new();
        for (name, sink) in config {
            let sink = match sink {
                SinkConfig::Null => Sink::Null { points: AtomicU64::new(0) },
                SinkConfig::Influxdb(c) => Sink::Influxdb(Box::new(influxdb::InfluxDb::new(name, c, stop.clone())?)),
                SinkConfig::Sqlite(c) => Sink::Sqlite(sqlite::SqliteSink::open(name, c)?),
            };
            sinks.insert(name.clone(), sink);
        }
        let health = sinks.keys().map(|name| (name.clone(), Health::default())).collect();
        Ok(Sinks { sinks, health, stopping })
    }

    /// The host is stopping: writes waiting to retry give up.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// One line per sink for the start-up banner (no credentials).
    pub fn describe(&self) -> Vec<String> {
        self.sinks
            .iter()
            .map(|(name, sink)| match sink {
                Sink::Null { .. } => format!("sink `{name}`: null (points are counted and dropped)"),
                Sink::Influxdb(i) => format!("sink `{name}`: {}", i.describe()),
                Sink::Sqlite(s) => format!("sink `{name}`: {}", s.describe()),
            })
            .collect()
    }

    /// Write `points` to the sink `name`. Returns once every point is durable
    /// or refused for good (the refused ones are listed); retriable failures
    /// are retried inside, so this may take as long as the sink is down.
    pub async fn write(&self, name: &str, points: Points<'_>) -> Result<Vec<Refused>, SinkError> {
        let result = match self.sinks.get(name) {
            Some(Sink::Null { points: count }) => {
                count.fetch_add(lines::count(points.body) as u64, Ordering::Relaxed);
                Ok(Vec::new())
            }
            Some(Sink::Influxdb(sink)) => sink.write(points).await,
            Some(Sink::Sqlite(sink)) => sink.write(points).await,
            None => Err(SinkError::Unknown(name.to_string())),
        };
        if let Some(health) = self.health.get(name) {
            match &result {
                Ok(refused) => health.refused.fetch_add(refused.len() as u64, Ordering::Relaxed),
                Err(_) => health.errors.fetch_add(1, Ordering::Relaxed),
            };
        }
        result
    }

    /// Every sink's counters.
    pub fn health(&self) -> Vec<SinkHealth> {
        self.sinks
            .iter()
            .map(|(name, sink)| {
                let health = self.health.get(name);
                let read = |c: Option<&AtomicU64>| c.map(|c| c.load(Ordering::Relaxed)).unwrap_or(0);
                SinkHealth {
                    name: name.clone(),
                    retries: if let Sink::Influxdb(i) = sink { i.retries() } else { 0 },
                    refused: read(health.map(|h| &h.refused)),
                    errors: read(health.map(|h| &h.errors)),
                }
            })
            .collect()
    }
}

/// The database a tenant's points go to: `<database>_<tenant>` with one
/// database per tenant (as monasca-persister names them), else `database`.
pub fn database_for(database: &str, per_tenant: bool, tenant: Option<&str>) -> String {
    match tenant {
        Some(tenant) if per_tenant => format!("{database}_{tenant}"),
        _ => database.to_string(),
    }
}
