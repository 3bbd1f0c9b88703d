//! Keyed state per input partition, for guests that import
//! `partition-state`: the in-memory store a guest call works on (`store`),
//! and its durable copy, the pipeline's compacted changelog topic, with the
//! restore that rebuilds a partition's store on assignment (`changelog`).

pub mod changelog;
pub mod store;

pub use store::{PartitionStore, StateLimits};
