//! The guest against monasca-notification 9.0.0 itself: for every alarm
//! transition of `tests/fixtures/notification/`, the notifications, their
//! payloads and the records published on Kafka must be what the original
//! produced for the same input (recorded by
//! `scripts/peers/notification_expected.py`, see the fixtures' README).

mod common;

use monasca_guest_sdk::testing::Harness;
use monasca_guest_sdk::{Effect, Notification};
use notification::NotificationGuest;
use serde_json::Value;
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/notification")
}

fn read_json(name: &str) -> Value {
    let path = fixtures().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The input line of a case (lines split on `\n` only: one holds U+2028).
fn input(file: &str, line: u64) -> Vec<u8> {
    let bytes = std::fs::read(fixtures().join(file)).expect("input file");
    let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    lines[(line - 1) as usize].to_vec()
}

/// A guest configured as the original was, answering `alarm_actions` with
/// `methods.json` (no rows for the definition without actions).
fn guest() -> Harness<NotificationGuest> {
    common::guest_with_methods(read_json("methods.json"))
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("UTF-8")
}

/// Compare one notification with what the original's plugin sent.
fn compare(case: &str, ours: &Notification, original: &Value) {
    let kind = original["type"].as_str().expect("type");
    let calls = original["calls"].as_array().expect("calls");
    let call = |k: &str| calls.iter().find(|c| c["kind"] == k);
    let what = format!("{case} / {}", original["method_name"]);
    match kind {
        "webhook" | "pagerduty" | "slack" => {
            let http = call("http").unwrap_or_else(|| panic!("{what}: no HTTP call"));
            assert_eq!(ours.destination, http["url"].as_str().expect("url"), "{what}: URL");
            assert_eq!(text(&ours.body), http["body"].as_str().expect("body"), "{what}: body");
        }
        "email" => {
            let mail = call("smtp.sendmail").unwrap_or_else(|| panic!("{what}: no mail"));
            assert_eq!(ours.destination, mail["to_addrs"].as_str().expect("to"), "{what}: to");
            let subject = ours.attributes.iter().find(|(k, _)| k == "subject").map(|(_, v)| v.as_str());
            assert_eq!(subject, mail["subject_decoded"].as_str(), "{what}: subject");
            assert_eq!(text(&ours.body), mail["body_decoded"].as_str().expect("body"), "{what}: body");
        }
        "jira" => {
            let attribute = |k: &str| ours.attributes.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
            if let Some(create) = call("jira.create_issue") {
                assert_eq!(attribute("summary"), create["fields"]["summary"].as_str(), "{what}: summary");
                assert_eq!(attribute("description"), create["fields"]["description"].as_str(), "{what}: description");
            }
            let comment = call("jira.add_comment").unwrap_or_else(|| panic!("{what}: no comment"));
            assert_eq!(text(&ours.body), comment["body"].as_str().expect("comment"), "{what}: comment");
            assert!(ours.destination.starts_with("https://jira.example/?project=MON"), "{what}");
        }
        other => panic!("{what}: unexpected type {other}"),
    }
}

#[test]
fn payloads_and_records_match_monasca_notification() {
    let index = read_json("expected/index.json");
    let mut compared = 0;
    for entry in index.as_array().expect("index") {
        let (Some(file), Some(line)) = (entry["file"].as_str(), entry["line"].as_u64()) else { continue };
        let case = entry["case"].as_str().expect("case");
        let expected = read_json(entry["expected"].as_str().expect("expected"));
        let mut harness = guest();
        let effects = harness.run_values("alarm-state-transitions", &[input(file, line)]).expect("process");
        let ours = common::ours(&effects);
        let originals = expected["notifications"].as_array().expect("notifications");
        let parsed = expected["processor"]["parsed"].as_bool() == Some(true);
        let valid = expected["processor"]["valid"].as_bool() == Some(true);
        match case {
            // The original dies on these (KeyError) or skips them silently; we dead-letter them with a reason.
            "missing-metrics" | "missing-required-key" | "not-wrapped" | "not-json" => {
                assert!(
                    matches!(effects.as_slice(), [Effect::Reject(r)] if !r.reason.is_empty()),
                    "{case}: {effects:?}"
                );
                continue;
            }
            _ if !parsed || !valid => {
                assert!(effects.is_empty(), "{case}: the original drops it, we did {effects:?}");
                continue;
            }
            _ => {}
        }
        // One notification per enabled method, in method order.
        let enabled: Vec<&Value> = originals.iter().collect();
        assert_eq!(ours.len(), enabled.len(), "{case}: notifications");
        for (ours, original) in ours.iter().zip(&enabled) {
            let id = original["method_id"].as_str().expect("id");
            assert_eq!(ours.method_id, id, "{case}: method");
            let Some(n) = ours.sent else {
                // Failed in the guest: the original's plugin raised before sending.
                assert_ne!(original["result"], "sent", "{case}: ours failed {id}, the original sent it");
                assert!(original["calls"].as_array().is_none_or(|c| c.is_empty()), "{case}: {id} made calls");
                continue;
            };
            assert!(n
                .idempotency_key
                .starts_with(&expected["input"]["alarm-transitioned"]["alarmId"].as_str().unwrap_or("").to_string()));
            if original["result"] == "sent" {
                compare(case, n, original);
                compared += 1;
            } else if original["type"] == "email" {
                let calls = original["calls"].as_array().is_some_and(|c| !c.is_empty());
                assert!(calls, "{case}: ours sends {id}, the original's plugin fails to write the email");
            }
        }
        // Records: a sent or failed record per notification, exactly the
        // original's `to_json`; the periodic ones too, but for their
        // `notification_timestamp` (the original's clock; ours the
        // transition's time, so that a replay restarts the same chain).
        let kafka_out = expected["kafka_out"].as_array().expect("kafka_out");
        for original in kafka_out.iter().filter(|r| r["topic"] == "60-seconds-notifications") {
            let id = original["method_id"].as_str().expect("method id");
            let n = ours.iter().find(|n| n.method_id == id).expect("periodic notification");
            let ours_record = n.record("60-seconds-notifications");
            let mut ours_record: Value =
                serde_json::from_slice(&ours_record.expect("periodic record").value).expect("JSON");
            let mut want: Value = serde_json::from_str(original["value"].as_str().expect("value")).expect("JSON");
            let alarm_seconds = want["raw_alarm"]["timestamp"].as_f64().expect("timestamp") / 1000.0;
            assert_eq!(ours_record["notification_timestamp"].as_f64(), Some(alarm_seconds), "{case}: chain start");
            ours_record["notification_timestamp"] = Value::Null;
            want["notification_timestamp"] = Value::Null;
            assert_eq!(ours_record, want, "{case}: periodic record");
        }
        for record in kafka_out.iter().filter(|r| r["topic"] != "60-seconds-notifications") {
            let id = record["method_id"].as_str().expect("method id");
            let n = ours.iter().find(|n| n.method_id == id).expect("notification of the record");
            let ours_record = n
                .record(record["topic"].as_str().unwrap_or_default())
                .unwrap_or_else(|| panic!("{case}: no {} record for {id}", record["topic"]));
            assert_eq!(text(&ours_record.value), record["value"].as_str().expect("value"), "{case}: record of {id}");
        }
    }
    assert!(compared >= 80, "only {compared} payloads compared");
}
