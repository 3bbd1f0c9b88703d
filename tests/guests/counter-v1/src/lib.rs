//! Test guest: the stateful counter, version `v1`.

const VERSION: &str = "v1";
const RESTORES: bool = true;

include!("counter.rs");
