//! The persister guest, run through the engine, renders the shared fixtures
//! exactly as monasca-persister 9.0.0 does, and rejects every malformed line
//! with a reason while storing its valid neighbours.

mod common;

use common::{engine, messages, METRIC};
use monasca_test_programs::{fixture, fixture_lines, PERSISTER};
use monasca_wasm::engine::types::Effect;
use monasca_wasm::sinks::influxdb::encode;

/// Run the persister on a fixture and return one rendered line (or reject
/// reason) per message, in message order. `encoding` is the persister's
/// `encoding` option: `line-protocol` (one encoded effect per batch) or
/// `points` (one structured point per message, rendered by the host).
async fn run(topic: &str, file: &str, encoding: &str) -> Vec<Result<String, String>> {
    let module = engine().load_file(PERSISTER).expect("persister loads");
    let config = vec![("encoding".to_string(), encoding.to_string())];
    let mut instance = module.instantiate("fixtures", config).await.expect("persister starts");
    let lines = fixture_lines(file);
    let effects = instance.process(&messages(topic, &lines)).await.expect("batch processed");
    let mut results: Vec<Option<Result<String, String>>> = vec![None; lines.len()];
    let mut put = |offset: i64, result: Result<String, String>| {
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
                put(batch.origin.offset, Ok(encode::line(&batch.points[0])));
            }
            Effect::StoreEncoded(encoded) => {
                assert_eq!(encoding, "line-protocol");
                assert_eq!(encoded.sink, "tsdb");
                let mut previous = -1;
                for (origin, line) in monasca_wasm::effects::encoded_lines(encoded) {
                    assert!(origin.offset > previous, "lines keep message order");
                    previous = origin.offset;
                    put(origin.offset, Ok(line));
                }
            }
            Effect::Reject(r) => put(r.origin.offset, Err(r.reason.clone())),
            other => panic!("unexpected effect {other:?}"),
        }
    }
    results.into_iter().enumerate().map(|(i, r)| r.unwrap_or_else(|| panic!("no effect for message {i}"))).collect()
}

fn expected(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixture(file)).expect("expected file");
    text.lines().map(str::to_string).collect()
}

async fn assert_matches_expected(topic: &str, input: &str, expected_file: &str) {
    let want = expected(expected_file);
    for encoding in ["line-protocol", "points"] {
        let got = run(topic, input, encoding).await;
        assert_eq!(got.len(), want.len());
        for (i, (got, want)) in got.iter().zip(&want).enumerate() {
            assert_eq!(got.as_deref(), Ok(want.as_str()), "{input} line {} with encoding {encoding}", i + 1);
        }
    }
}

#[tokio::test]
async fn metrics_match_monasca_persister_byte_for_byte() {
    assert_matches_expected("metrics", "metrics.jsonl", "metrics.expected.lp").await;
}

#[tokio::test]
async fn alarm_transitions_match_monasca_persister_byte_for_byte() {
    assert_matches_expected("alarm-state-transitions", "alarm-transitions.jsonl", "alarm-transitions.expected.lp")
        .await;
}

#[tokio::test]
async fn every_invalid_metric_is_rejected_with_a_reason() {
    let got = run("metrics", "metrics-invalid.jsonl", "line-protocol").await;
    let reasons = std::fs::read_to_string(fixture("metrics-invalid.reasons.txt")).unwrap();
    let described: Vec<&str> = reasons.lines().collect();
    assert_eq!(got.len(), 13);
    assert_eq!(described.len(), 13);
    // What each reason must mention, line by line.
    let must_mention = [
        "not valid JSON",
        "not valid JSON",
        "expected a JSON object",
        "name",
        "metric.name is empty",
        "tenantId",
        "meta",
        "metric.value",
        "metric.value",
        "timestamp",
        "metric.timestamp",
        "metric.dimensions",
        "UTF-8",
    ];
    for (i, result) in got.iter().enumerate() {
        let reason = result.as_ref().expect_err(&format!("line {} ({}) must be rejected", i + 1, described[i]));
        assert!(reason.contains(must_mention[i]), "line {} ({}): reason {reason:?}", i + 1, described[i]);
    }
}

#[tokio::test]
async fn valid_neighbours_of_bad_messages_are_stored() {
    let module = engine().load_file(PERSISTER).unwrap();
    let config = vec![("encoding".to_string(), "points".to_string())];
    let mut instance = module.instantiate("neighbours", config).await.unwrap();
    let invalid = fixture_lines("metrics-invalid.jsonl");
    let mut values: Vec<Vec<u8>> = Vec::new();
    for bad in &invalid {
        values.push(METRIC.as_bytes().to_vec());
        values.push(bad.clone());
    }
    let effects = instance.process(&messages("metrics", &values)).await.unwrap();
    let kinds: Vec<&str> = effects.iter().map(monasca_wasm::effects::kind).collect();
    let expected: Vec<&str> = (0..invalid.len()).flat_map(|_| ["store", "reject"]).collect();
    assert_eq!(kinds, expected);
}
