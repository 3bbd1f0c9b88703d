//! Test guest: the keyed counter, version `v2`: the same outputs as `v1`,
//! a different module (for hot-swap tests).

const VERSION: &str = "v2";

include!("../../keyed-counter/src/counter.rs");
