//! # monasca-wasm host
//!
//! The native host of monasca-wasm: it loads processing guests (WebAssembly
//! components built against `wit/`), runs them in a sandbox, and carries out
//! the effects they return.
//!
//! Layout, one job per module:
//! - [`config`]: the service configuration (`host.toml`), validated at start-up (`config::check`: every problem at once).
//! - [`databases`]: the SQL databases of `[databases]` (SQLite, MariaDB/MySQL, PostgreSQL).
//! - [`deploy`]: deploy modules to running pipelines, roll back, the module store.
//! - [`engine`]: load, check, cache and run guest components. The sandbox
//!   policy (everything a guest may import) is in `engine::sandbox`.
//! - [`kafka`]: client configuration and the embedded mock cluster.
//! - [`lookups`]: the guest's `lookup` import, answered by named SQL queries.
//! - [`notify`]: deliver `notify` effects (HTTP, email, Jira), the destination
//!   allowlist, and the ledger that keeps a notification from being sent twice.
//! - [`pipeline`]: consume, batch per partition, run the guest, carry out the
//!   effects, store offsets; poison isolation and dead-lettering.
//! - [`generate`]: synthetic Monasca traffic.
//! - [`import`]: `import-config`, a monasca-persister or monasca-notification
//!   configuration file turned into the equivalent `host.toml`.
//! - [`effects`]: the host's view of guest effects, and their JSON rendering.
//! - [`sinks`]: where `store` effects go; `sinks::influxdb::encode` renders
//!   points as InfluxDB line protocol.
//! - [`cli`]: the `monasca-wasm` subcommands (`run`, `validate`, `generate`, `inspect`, `test`, `new`, `import-config`, ...).
//! - [`telemetry`]: logging set-up.
//!
//! Errors: library modules return typed errors (`thiserror`) that callers can
//! branch on (a trap versus a deadline, a corrupt cache entry versus a missing
//! file); `anyhow` is used only at the binary's edge, in `main.rs` and `cli`.

pub mod admin;
pub mod cli;
pub mod config;
pub mod databases;
pub mod deploy;
pub mod effects;
pub mod engine;
pub mod generate;
pub mod http_source;
pub mod import;
pub mod kafka;
pub mod lookup_cache;
pub mod lookups;
pub mod notify;
pub mod pipeline;
pub mod sinks;
pub mod state;
pub mod telemetry;
pub mod text;
