//! Logging set-up: `tracing` to stderr, filtered by `RUST_LOG`
//! (default `info`), optionally as JSON lines; colours only on a terminal.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Install the global subscriber. `json` selects JSON lines instead of text.
pub fn init(json: bool, default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // A second call (e.g. from tests) keeps the first subscriber.
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}
