//! The persister guest, run through the engine, renders the shared fixtures
//! exactly as monasca-persister 9.0.0 does, and rejects every malformed line
//! with a reason while storing its valid neighbours.

mod common;

use common::{engine, messages, METRIC};
use monasca_test_programs::{fixture, fixture_lines, PERSISTER};
use monasca_wasm::engine::types::Effect;
use monasca_wasm::sinks::influxdb::encode;

/// Run the persister on a fixture and return one rendered line (or reject
/// reason) per message.
async fn run(topic: &str, file: &str) -> Vec<Result<String, String>> {
    let module = engine().load_file(PERSISTER).expect("persister loads");
    let mut instance = module.instantiate("fixtures", vec![]).await.expect("persister starts");
    let lines = fixture_lines(file);
    let effects = instance.process(&messages(topic, &lines)).await.expect("batch processed");
    assert_eq!(effects.len(), lines.len(), "one effect per message");
    effects
        .iter()
        .enumerate()
        .map(|(i, effect)| match effect {
            Effect::Store(batch) => {
                assert_eq!(batch.sink, "tsdb");
                assert_eq!(batch.origin.offset, i as i64, "effects keep message order");
                assert_eq!(batch.points.len(), 1);
                Ok(encode::line(&batch.points[0]))
            }
            Effect::Reject(r) => {
                assert_eq!(r.origin.offset, i as i64);
                Err(r.reason.clone())
            }
            other => panic!("unexpected effect {other:?}"),
        })
        .collect()
}

fn expected(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixture(file)).expect("expected file");
    text.lines().map(str::to_string).collect()
}

#[tokio::test]
async fn metrics_match_monasca_persister_byte_for_byte() {
    let got = run("metrics", "metrics.jsonl").await;
    let want = expected("metrics.expected.lp");
    assert_eq!(got.len(), want.len());
    for (i, (got, want)) in got.iter().zip(&want).enumerate() {
        assert_eq!(got.as_deref(), Ok(want.as_str()), "line {}", i + 1);
    }
}

#[tokio::test]
async fn alarm_transitions_match_monasca_persister_byte_for_byte() {
    let got = run("alarm-state-transitions", "alarm-transitions.jsonl").await;
    let want = expected("alarm-transitions.expected.lp");
    assert_eq!(got.len(), want.len());
    for (i, (got, want)) in got.iter().zip(&want).enumerate() {
        assert_eq!(got.as_deref(), Ok(want.as_str()), "line {}", i + 1);
    }
}

#[tokio::test]
async fn every_invalid_metric_is_rejected_with_a_reason() {
    let got = run("metrics", "metrics-invalid.jsonl").await;
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
    let mut instance = module.instantiate("neighbours", vec![]).await.unwrap();
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
