//! Test guest: a passthrough that tags each output with `guest-version: v1`.

const VERSION: &str = "v1";

include!("tagger.rs");
