//! The persister guest, run through the engine, renders the shared fixtures
//! exactly as monasca-persister 9.0.0 does, and rejects every malformed line
//! with a reason while storing its valid neighbours.

mod common;

use common::{engine, messages, METRIC};
use monasca_test_programs::{fixture, fixture_lines, PERSISTER};

/// Run the persister on a fixture and return one rendered line (or reject
/// reason) per message, in message order. `encoding` is the persister's
/// `encoding` option: `line-protocol` (one encoded effect per batch) or
/// `points` (one structured point per message, rendered by the host).
async fn run(topic: &str, file: &str, encoding: &str) -> Vec<Result<String, String>> {
    run_values(topic, &fixture_lines(file), encoding).await
}

/// [`run`] on values given in place of a fixture file.
async fn run_values(topic: &str, lines: &[Vec<u8>], encoding: &str) -> Vec<Result<String, String>> {
    let outcomes = common::persister::outcomes(topic, lines, encoding).await;
    outcomes.into_iter().map(|o| o.map(|stored| stored.line)).collect()
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

/// The same persister code compiled natively (no wasm): one rendered line or
/// reject reason per message, like [`run_values`] with `line-protocol`.
fn run_native(topic: &str, lines: &[Vec<u8>]) -> Vec<Result<String, String>> {
    use monasca_guest_sdk::Effect as NativeEffect;
    let mut harness = monasca_guest_sdk::testing::Harness::<persister::Persister>::new(&[]).expect("native persister");
    let effects = harness.run_values(topic, lines).expect("native batch");
    let mut results: Vec<Option<Result<String, String>>> = vec![None; lines.len()];
    for effect in effects {
        match effect {
            NativeEffect::StoreEncoded(encoded) => {
                let body = String::from_utf8(encoded.body).expect("line protocol is UTF-8");
                assert_eq!(body.lines().count(), encoded.origins.len());
                for (line, origin) in body.lines().zip(&encoded.origins) {
                    results[origin.offset as usize] = Some(Ok(line.to_string()));
                }
            }
            NativeEffect::Reject(r) => results[r.origin.offset as usize] = Some(Err(r.reason)),
            other => panic!("unexpected native effect {other:?}"),
        }
    }
    results.into_iter().enumerate().map(|(i, r)| r.unwrap_or_else(|| panic!("no native effect for {i}"))).collect()
}

/// Envelopes whose strings cross the guest scanner's 16-byte blocks at every
/// length, with the bytes that change the path taken (spaces, commas, `=`,
/// quotes, backslashes, escapes, non-ASCII, line breaks) at varied places.
fn scanner_stress_envelopes() -> Vec<Vec<u8>> {
    let pieces = ["a", "b", " ", ",", "=", "é", "漢", "😀", "\\\"", "\\\\", "\\n", "\\u00e9", "\\t", "x"];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let string = |len: usize, next: &mut dyn FnMut(usize) -> usize| {
        let mut s = String::new();
        for i in 0..len {
            // Mostly plain letters, so the special piece lands at a chosen place.
            s.push_str(if next(6) == 0 { pieces[next(pieces.len())] } else { ["h", "o", "s", "t"][i % 4] });
        }
        s
    };
    let mut out = Vec::new();
    for i in 0..3000usize {
        let name = string(1 + i % 40, &mut next);
        let host = string(i % 37, &mut next);
        let zone = string(next(20), &mut next);
        let tenant = string(1 + next(34), &mut next);
        let meta = if i % 7 == 0 {
            format!(r#","value_meta":{{"k":"{}"}}"#, string(next(30), &mut next))
        } else {
            String::new()
        };
        out.push(
            format!(
                r#"{{"metric":{{"name":"{name}","dimensions":{{"hostname":"{host}","zone":"{zone}"}},"timestamp":{},"value":{}{meta}}},"meta":{{"tenantId":"{tenant}","region":"r{}"}}}}"#,
                1_700_000_000_000u64 + i as u64,
                i as f64 * 0.37,
                i % 3
            )
            .into_bytes(),
        );
    }
    out
}

#[tokio::test]
async fn guest_renders_what_the_same_code_renders_natively() {
    let values = scanner_stress_envelopes();
    let wasm = run_values("metrics", &values, "line-protocol").await;
    let native = run_native("metrics", &values);
    let stored = native.iter().filter(|r| r.is_ok()).count();
    assert!(stored > 1000 && stored < values.len(), "the inputs must mix stored and refused metrics ({stored})");
    for (i, (wasm, native)) in wasm.iter().zip(&native).enumerate() {
        assert_eq!(wasm, native, "message {i}: {}", String::from_utf8_lossy(&values[i]));
    }
}
