//! The persister guest run through the engine on a batch of values: one
//! outcome per message (its rendered line and tenant, or its reject reason).

use super::{engine, messages};
use monasca_test_programs::PERSISTER;
use monasca_wasm::engine::types::Effect;
use monasca_wasm::sinks::influxdb::encode;

/// A stored message: its line as the sink writes it, and its tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub line: String,
    pub tenant: Option<String>,
}

/// Run the persister on `values` (offsets from 0) and return one outcome per
/// message, in message order. `encoding` is the persister's `encoding`
/// option: `line-protocol` (one encoded effect per batch and tenant) or
/// `points` (one structured point per message, rendered by the host).
pub async fn outcomes(topic: &str, values: &[Vec<u8>], encoding: &str) -> Vec<Result<Stored, String>> {
    let module = engine().load_file(PERSISTER).expect("persister loads");
    let config = vec![("encoding".to_string(), encoding.to_string())];
    let mut instance = module.instantiate("persister-outcomes", config).await.expect("persister starts");
    let effects = instance.process(&messages(topic, values)).await.expect("batch processed");
    let mut results: Vec<Option<Result<Stored, String>>> = vec![None; values.len()];
    let mut put = |offset: i64, result: Result<Stored, String>| {
        let slot = &mut results[offset as usize];
        assert!(slot.is_none(), "two effects for offset {offset}");
        *slot = Some(result);
    };
    for effect in &effects {
        match effect {
            Effect::Store(batch) => {
                assert_eq!(encoding, "points");
                assert_eq!(batch.sink, "tsdb");
                assert_eq!(batch.points.len(), 1);
                let line = encode::line(&batch.points[0]);
                put(batch.origin.offset, Ok(Stored { line, tenant: batch.tenant.clone() }));
            }
            Effect::StoreEncoded(encoded) => {
                assert_eq!(encoding, "line-protocol");
                assert_eq!(encoded.sink, "tsdb");
                let mut previous = -1;
                for (origin, line) in monasca_wasm::effects::encoded_lines(encoded) {
                    assert!(origin.offset > previous, "lines keep message order");
                    previous = origin.offset;
                    put(origin.offset, Ok(Stored { line, tenant: encoded.tenant.clone() }));
                }
            }
            Effect::Reject(r) => put(r.origin.offset, Err(r.reason.clone())),
            other => panic!("unexpected effect {other:?}"),
        }
    }
    results.into_iter().enumerate().map(|(i, r)| r.unwrap_or_else(|| panic!("no effect for message {i}"))).collect()
}
