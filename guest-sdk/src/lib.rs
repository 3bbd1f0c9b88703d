//! # monasca-guest-sdk
//!
//! Write a monasca-wasm processing guest as a plain Rust type. The host hands
//! your guest batches of Kafka messages; your guest answers with *effects*
//! (records to produce, points to store, notifications to send, messages to
//! reject). The guest does no I/O: the host carries the effects out.
//!
//! ```
//! use monasca_guest_sdk::{Config, Effects, Message, ProcessError, Processor};
//!
//! /// Copies every message to the pipeline's output topic.
//! struct Passthrough;
//!
//! impl Processor for Passthrough {
//!     fn init(_config: &Config) -> Result<Self, String> {
//!         Ok(Passthrough)
//!     }
//!
//!     fn process(&mut self, batch: Vec<Message>, out: &mut Effects) -> Result<(), ProcessError> {
//!         for message in batch {
//!             out.produce(&message, message.value.clone());
//!         }
//!         Ok(())
//!     }
//! }
//!
//! monasca_guest_sdk::export!(Passthrough);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` and run it on a
//! file with `monasca-wasm test --module target/wasm32-wasip2/release/<name>.wasm
//! --input messages.jsonl`. Unit-test the same logic natively with
//! [`testing::Harness`], no wasm needed.
//!
//! Layout:
//! - [`message`]: what comes in (`Message`, `Header`, `Origin`) and the guest's `Config`.
//! - [`effect`]: what goes out (`Effect`, `Point`, ...) and the [`Effects`] collector.
//! - [`monasca`]: typed Monasca messages (metric envelope, alarm transition).
//! - [`pyjson`]: JSON and float text exactly as Monasca's Python code writes them.
//! - [`lineproto`]: InfluxDB line protocol as monasca-persister writes it, and [`LineBatch`].
//! - [`http`]: the requests of an HTTP-source pipeline and their answers.
//! - [`log`], [`lookup`] and [`state`]: the host imports a guest may call
//!   (`state`: keyed state of the batch's partition, durable and restored
//!   wherever the partition goes).
//! - [`memory`]: the guest's allocator (small blocks from free lists).
//! - [`compare`]: text equality a word at a time (cheaper than `==` in a guest).
//! - [`testing`]: a native harness for `cargo test`.
//! - [`export!`]: the one macro that turns your type into a component.
#![deny(missing_docs)]

// Lets the generated bindings name this crate by its public path.
extern crate self as monasca_guest_sdk;

pub mod clock;
pub mod compare;
pub mod effect;
mod export;
pub mod http;
pub mod lineproto;
pub mod log;
pub mod lookup;
pub mod memory;
pub mod message;
pub mod monasca;
pub mod pyjson;
pub mod state;
pub mod testing;

pub use bytes::Bytes;
pub use effect::{Effect, Effects, EncodedPoints, FieldValue, Notification, OutputRecord, Point, Rejection, SinkBatch};
pub use lineproto::LineBatch;
pub use lookup::{Cell, Row};
pub use message::{Config, Header, Message, Origin, Topic};

/// The version of the `monasca:processor` WIT package this SDK builds guests for.
pub const WIT_VERSION: &str = "0.4.1";

/// A failure of a whole batch. The host then bisects the batch to find the
/// messages that cause it; prefer [`Effects::reject`] for a single bad message.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessError {
    /// What went wrong, for a person to read.
    pub reason: String,
    /// The message that caused it, when known.
    pub culprit: Option<Origin>,
}

impl ProcessError {
    /// A batch failure with a reason.
    pub fn new(reason: impl Into<String>) -> Self {
        ProcessError { reason: reason.into(), culprit: None }
    }

    /// Name the message that caused the failure.
    pub fn caused_by(mut self, message: &Message) -> Self {
        self.culprit = Some(message.origin());
        self
    }
}

impl std::fmt::Display for ProcessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for ProcessError {}

/// The logic of a guest. Implement it on a plain Rust type and export the type
/// with [`export!`].
pub trait Processor: Sized + 'static {
    /// Build the guest from the pipeline's configuration. Called once per
    /// instance, before the first batch. An error keeps the pipeline from
    /// starting and is shown to the operator.
    fn init(config: &Config) -> Result<Self, String>;

    /// Process one batch of messages from one partition, in offset order, and
    /// push the effects to carry out into `out`. A keyed guest (one that uses
    /// [`state`]) is also called with an empty batch when its partition has
    /// been idle for the pipeline's timer interval: the time to close windows
    /// ([`clock::now_ms`] is the host's clock; [`clock::partition`] the
    /// partition; records made then name [`Origin::timer`] as their origin).
    fn process(&mut self, batch: Vec<Message>, out: &mut Effects) -> Result<(), ProcessError>;

    /// Serialise the state to hand over to a new module version (only used by
    /// a guest exported with `export!(T, stateful)`). The default keeps no state.
    fn snapshot(&self) -> Vec<u8> {
        Vec::new()
    }

    /// Take over the state produced by `snapshot` (only used by a guest
    /// exported with `export!(T, stateful)`). The default accepts only an
    /// empty state.
    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        if bytes.is_empty() {
            Ok(())
        } else {
            Err("this guest keeps no state and cannot restore one".to_string())
        }
    }
}

/// Wasm guests allocate through [`memory::SmallBlockAllocator`] (feature
/// `small-block-allocator`, on by default).
#[cfg(all(target_arch = "wasm32", feature = "small-block-allocator"))]
#[global_allocator]
static GUEST_ALLOCATOR: memory::SmallBlockAllocator = memory::SmallBlockAllocator::new();

#[doc(hidden)]
pub mod __private {
    #[cfg(target_arch = "wasm32")]
    pub use crate::export::glue::*;
    #[cfg(target_arch = "wasm32")]
    pub use wit_bindgen;
    /// The glue for the `stateful` world's types.
    #[cfg(target_arch = "wasm32")]
    pub mod stateful {
        pub use crate::export::glue_stateful::*;
    }
}

/// Generated bindings of the `monasca:processor` worlds (wasm only). Guests
/// do not need them: use the SDK's own types.
///
/// Which world a guest exports is chosen where it calls [`export!`], in its
/// own crate, never by a Cargo feature (features are unified across a build,
/// so one guest's choice would change its neighbours'). The library itself
/// carries only import descriptions, which a component drops when unused.
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
#[allow(missing_docs)]
pub mod bindings {
    // `all-imports` is `stateless` plus the `partition-state` and
    // `http-reply` imports; a component imports only what the guest calls,
    // so a guest that never touches `state` or `http` comes out `stateless`.
    wit_bindgen::generate!({
        path: "wit",
        world: "monasca:processor/all-imports",
        pub_export_macro: true,
        export_macro_name: "__export_world",
        default_bindings_module: "monasca_guest_sdk::bindings",
        runtime_path: "monasca_guest_sdk::__private::wit_bindgen::rt",
    });

    /// The `stateful` world (`snapshot`/`restore` exported besides), from
    /// a crate of its own (see there why).
    pub use monasca_guest_sdk_stateful_world as stateful;
}
