//! Test guest: the stateful counter, version `v2`.

const VERSION: &str = "v2";
const RESTORES: bool = true;

include!("../../counter-v1/src/counter.rs");
