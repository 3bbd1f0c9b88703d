//! Test guest: the stateful counter, version `bad`, which refuses every state handed over.

const VERSION: &str = "bad";
const RESTORES: bool = false;

include!("../../counter-v1/src/counter.rs");
