//! `delivery`, `[pipeline.state]` and `[pipeline.transaction]`: how a
//! pipeline commits, and the partition state of keyed guests.

use crate::state::StateLimits;
use serde::Deserialize;

/// A pipeline's delivery guarantee.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    /// Effects are carried out and acknowledged before the offsets are
    /// committed: after a crash some are carried out again (sinks and
    /// notifiers make that harmless; Kafka outputs may repeat).
    #[default]
    AtLeastOnce,
    /// Kafka to Kafka only: a batch's records, dead letters, changelog
    /// records and offsets are committed in one Kafka transaction; readers
    /// with `isolation.level=read_committed` see each output once.
    ExactlyOnce,
}

/// `[pipeline.state]`: the partition state of a guest that imports
/// `partition-state` (ignored for other guests).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// The compacted changelog topic [default: `<pipeline>.changelog`];
    /// created when missing.
    #[serde(default)]
    pub changelog_topic: Option<String>,
    /// A partition that holds state and got no message for this long is
    /// called with an empty batch (a timer call), ms; 0: never.
    #[serde(default = "default_timer_interval_ms")]
    pub timer_interval_ms: u64,
    /// Most keys one partition may hold.
    #[serde(default = "default_max_keys")]
    pub max_keys: usize,
    /// Most bytes (keys and values) one partition may hold.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// Longest a partition's restore may take before the pipeline stops, s.
    #[serde(default = "default_restore_timeout_s")]
    pub restore_timeout_s: u64,
}

fn default_timer_interval_ms() -> u64 {
    1000
}
fn default_max_keys() -> usize {
    StateLimits::default().max_keys
}
fn default_max_bytes() -> usize {
    StateLimits::default().max_bytes
}
fn default_restore_timeout_s() -> u64 {
    300
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            changelog_topic: None,
            timer_interval_ms: default_timer_interval_ms(),
            max_keys: default_max_keys(),
            max_bytes: default_max_bytes(),
            restore_timeout_s: default_restore_timeout_s(),
        }
    }
}

impl StateConfig {
    /// The bounds of one partition's state.
    pub fn limits(&self) -> StateLimits {
        StateLimits { max_keys: self.max_keys, max_bytes: self.max_bytes }
    }
}

/// `[pipeline.transaction]`: the Kafka transactions of an exactly-once
/// pipeline, or of a keyed guest's state and offsets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransactionConfig {
    /// How often the open transaction is committed, ms: the latency a
    /// `read_committed` reader sees, against the cost of a commit.
    #[serde(default = "default_commit_interval_ms")]
    pub commit_interval_ms: u64,
    /// `transaction.timeout.ms`: how long the broker keeps a transaction of
    /// a host that died open (read_committed readers wait that long).
    #[serde(default = "default_transaction_timeout_ms")]
    pub timeout_ms: u64,
    /// The producer's `transactional.id` [default: `monasca-wasm-<group>-<pipeline>-`
    /// and a random suffix]. A fixed id lets a restarted host abort its
    /// predecessor's open transaction at once instead of after `timeout_ms`;
    /// two live hosts must never share one.
    #[serde(default)]
    pub id: Option<String>,
}

fn default_commit_interval_ms() -> u64 {
    100
}
fn default_transaction_timeout_ms() -> u64 {
    10_000
}

impl Default for TransactionConfig {
    fn default() -> Self {
        TransactionConfig {
            commit_interval_ms: default_commit_interval_ms(),
            timeout_ms: default_transaction_timeout_ms(),
            id: None,
        }
    }
}
