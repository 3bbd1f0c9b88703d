//! Test guest: a passthrough that tags each output with `guest-version: v2`.

const VERSION: &str = "v2";

include!("../../tagger-v1/src/tagger.rs");
