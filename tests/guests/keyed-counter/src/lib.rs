//! Test guest: the keyed counter, version `v1` (per-key running totals in
//! the host's partition state; see `counter.rs`).

const VERSION: &str = "v1";

include!("counter.rs");
