//! Helpers shared by the host's integration tests.
#![allow(dead_code)]

pub mod counter;
pub mod kafka;
pub mod notify;
pub mod persister;
pub mod receiver;
pub mod transform;

use monasca_wasm::engine::types::{Effect, Message};
use monasca_wasm::engine::{Engine, EngineSettings};
use std::path::PathBuf;

/// An engine with test-friendly settings, adjusted by `adjust`. Compiled
/// modules are cached under cargo's temp dir for integration tests.
pub fn engine_with(adjust: impl FnOnce(&mut EngineSettings)) -> Engine {
    let mut settings = EngineSettings {
        cache_dir: Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("module-cache")),
        ..EngineSettings::default()
    };
    adjust(&mut settings);
    Engine::new(settings).expect("engine starts")
}

/// An engine with the default settings (and the test cache).
pub fn engine() -> Engine {
    engine_with(|_| {})
}

/// Messages on `topic`, partition 0, offsets from 0.
pub fn messages<V: AsRef<[u8]>>(topic: &str, values: &[V]) -> Vec<Message> {
    values
        .iter()
        .enumerate()
        .map(|(offset, value)| Message {
            topic: topic.into(),
            partition: 0,
            offset: offset as i64,
            timestamp_ms: None,
            key: None,
            value: bytes::Bytes::copy_from_slice(value.as_ref()),
            headers: Vec::new(),
            tombstone: false,
        })
        .collect()
}

/// A valid metric envelope.
pub const METRIC: &str = r#"{"metric":{"name":"cpu.idle_perc","dimensions":{"hostname":"h1"},"timestamp":1700000000000,"value":50.0},"meta":{"tenantId":"t1","region":"r1"},"creation_time":1700000000}"#;

/// The values of `effects`, which must all be `produce` effects, as text.
pub fn produced_values(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .map(|e| match e {
            Effect::Produce(r) => String::from_utf8_lossy(&r.value).into_owned(),
            other => panic!("unexpected effect {other:?}"),
        })
        .collect()
}
