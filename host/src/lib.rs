//! # monasca-wasm host
//!
//! The native host of monasca-wasm: it loads processing guests (WebAssembly
//! components built against `wit/`), runs them in a sandbox, and carries out
//! the effects they return.
//!
//! Layout, one job per module:
//! - [`engine`]: load, check, cache and run guest components. The sandbox
//!   policy (everything a guest may import) is in `engine::sandbox`.
//! - [`effects`]: the host's view of guest effects, and their JSON rendering.
//! - [`sinks`]: where `store` effects go; `sinks::influxdb::encode` renders
//!   points as InfluxDB line protocol.
//! - [`cli`]: the `monasca-wasm` subcommands (`inspect`, `test`, `new`).
//! - [`telemetry`]: logging set-up.
//!
//! Errors: library modules return typed errors (`thiserror`) that callers can
//! branch on (a trap versus a deadline, a corrupt cache entry versus a missing
//! file); `anyhow` is used only at the binary's edge, in `main.rs` and `cli`.

pub mod cli;
pub mod effects;
pub mod engine;
pub mod sinks;
pub mod telemetry;
