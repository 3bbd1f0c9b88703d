//! The retry and periodic roles of the notification guest, natively.

use monasca_guest_sdk::testing::Harness;
use monasca_guest_sdk::{Cell, Effect, Notification};
use notification::NotificationGuest;
use serde_json::Value;

const ALARM: &str = r#"{"alarm-transitioned": {"tenantId": "t1", "alarmId": "a-1", "alarmDefinitionId": "d-1",
  "alarmName": "cpu", "alarmDescription": "", "metrics": [{"id": null, "name": "cpu.idle_perc", "dimensions": {"hostname": "h1"}}],
  "oldState": "OK", "newState": "ALARM", "actionsEnabled": true, "stateChangeReason": "Thresholds were exceeded",
  "severity": "HIGH", "link": null, "lifecycleState": null, "subAlarms": [], "timestamp": 1700000000000}}"#;

fn text(row: &[(&str, &str)]) -> Vec<(String, Cell)> {
    row.iter().map(|(k, v)| (k.to_string(), Cell::Text(v.to_string()))).collect()
}

fn guest(method_period: i64, alarm_state: &'static str) -> Harness<NotificationGuest> {
    guest_of("WEBHOOK", method_period, alarm_state)
}

/// The guest with one method `m-1` of type `kind`.
fn guest_of(kind: &'static str, method_period: i64, alarm_state: &'static str) -> Harness<NotificationGuest> {
    let mut harness = Harness::<NotificationGuest>::new(&[("max-attempts", "3")])
        .expect("init")
        .with_lookup("alarm_actions", move |_| {
            let mut row = text(&[("id", "m-1"), ("type", kind), ("name", "hook"), ("address", "http://127.0.0.1:9/h")]);
            row.push(("period".into(), Cell::Integer(method_period)));
            Ok(vec![row])
        })
        .with_lookup("notification_method", move |params| {
            if params[0] != "m-1" {
                return Ok(Vec::new());
            }
            let mut row = text(&[("name", "hook"), ("type", kind), ("address", "http://127.0.0.1:9/new")]);
            row.push(("period".into(), Cell::Integer(method_period)));
            Ok(vec![row])
        })
        .with_lookup("alarm_state", move |_| Ok(vec![text(&[("state", alarm_state)])]));
    harness.at_time(1_700_000_100_000);
    harness
}

fn notified(effects: &[Effect]) -> &Notification {
    match effects.iter().find(|e| matches!(e, Effect::Notify(_))) {
        Some(Effect::Notify(n)) => n,
        _ => panic!("no notification in {effects:?}"),
    }
}

fn record(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("record")
}

#[test]
fn retries_count_attempts_then_stop() {
    let mut harness = guest(0, "ALARM");
    let first = harness.run_values("alarm-state-transitions", &[ALARM]).expect("transition");
    let n = notified(&first);
    assert_eq!(n.idempotency_key, "a-1:1700000000000:m-1");
    assert_eq!(n.on_failed[0].topic.as_deref(), Some("retry-notifications"));
    let mut retry = n.on_failed[0].value.clone();
    assert_eq!(record(&retry)["retry_count"], 0);
    for attempt in 1..3 {
        harness.at_time(1_700_000_200_000 + attempt);
        let effects = harness.run_values("retry-notifications", &[&retry]).expect("retry");
        let n = notified(&effects);
        assert_eq!(n.idempotency_key, "a-1:1700000000000:m-1", "a retry is the same notification");
        assert_eq!(n.destination, "http://127.0.0.1:9/new", "the method is refreshed");
        assert_eq!(n.on_sent[0].topic.as_deref(), Some("alarm-notifications"));
        retry = n.on_failed[0].value.clone();
        assert_eq!(record(&retry)["retry_count"], attempt as u64);
    }
    let last = harness.run_values("retry-notifications", &[&retry]).expect("last retry");
    assert!(notified(&last).on_failed.is_empty(), "after max-attempts a failure is dead-lettered by the host");
    // A method deleted meanwhile: the retry is dropped.
    let mut orphan = record(&retry);
    orphan["id"] = Value::from("m-gone");
    let effects = harness.run_values("retry-notifications", &[orphan.to_string()]).expect("orphan");
    assert!(effects.is_empty(), "{effects:?}");
    let bad = harness.run_values("retry-notifications", &["{not json"]).expect("bad");
    assert!(matches!(bad.as_slice(), [Effect::Reject(_)]), "{bad:?}");
}

#[test]
fn periodic_notifications_repeat_while_the_alarm_stays() {
    let mut harness = guest(60, "ALARM");
    let first = harness.run_values("alarm-state-transitions", &[ALARM]).expect("transition");
    let started = notified(&first);
    let periodic = started
        .on_sent
        .iter()
        .find(|r| r.topic.as_deref() == Some("60-seconds-notifications"))
        .map(|r| r.value.clone())
        .expect("the chain starts once the first notification is out");
    assert!(started.on_failed.iter().any(|r| r.value == periodic), "...or failed");
    assert_eq!(record(&periodic)["notification_timestamp"], 1_700_000_000.0, "rounds count from the transition");
    harness.at_time(1_700_000_160_000);
    let round = harness.run_values("60-seconds-notifications", &[&periodic]).expect("round");
    let n = notified(&round);
    assert_eq!(n.idempotency_key, "a-1:1700000000000:m-1:periodic:1700000000000");
    assert_eq!(n.on_sent[0].topic.as_deref(), Some("60-seconds-notifications"));
    assert_eq!(n.on_failed[0].topic.as_deref(), Some("60-seconds-notifications"), "re-published whatever happens");
    let next = record(&n.on_sent[0].value);
    assert_eq!(next["notification_timestamp"], 1_700_000_060.0, "the next round is one period later");
    // A replay of the same round makes the same next round (and key).
    let again = harness.run_values("60-seconds-notifications", &[&periodic]).expect("replayed round");
    assert_eq!(notified(&again).idempotency_key, n.idempotency_key);
    assert_eq!(notified(&again).on_sent[0].value, n.on_sent[0].value);

    let mut ok = guest(60, "OK");
    ok.at_time(1_700_000_160_000);
    let stopped = ok.run_values("60-seconds-notifications", &[&periodic]).expect("stopped");
    assert!(stopped.is_empty(), "the alarm left ALARM: {stopped:?}");
    let mut other_period = guest(300, "ALARM");
    let moved = other_period.run_values("60-seconds-notifications", &[&periodic]).expect("moved");
    assert!(moved.is_empty(), "the method's period changed: {moved:?}");
}

#[test]
fn an_email_the_original_cannot_write_fails_without_a_send() {
    // A lone surrogate in the name: the original's email cannot be encoded.
    let alarm = ALARM.replace("\"alarmName\": \"cpu\"", "\"alarmName\": \"cpu \\ud800\"");
    let mut mail = guest_of("EMAIL", 0, "ALARM");
    let effects = mail.run_values("alarm-state-transitions", &[&alarm]).expect("transition");
    let [Effect::Produce(failed)] = effects.as_slice() else { panic!("a failure record, no send: {effects:?}") };
    assert_eq!(failed.topic.as_deref(), Some("retry-notifications"));
    let body = String::from_utf8(failed.value.clone()).expect("ASCII JSON");
    assert!(body.contains(r#""alarm_name": "cpu \ud800""#) && body.contains(r#""retry_count": 0"#), "{body}");
    // A webhook of the same alarm is sent, the surrogate escaped as the original's JSON has it.
    let sent = guest(0, "ALARM").run_values("alarm-state-transitions", &[&alarm]).expect("webhook");
    let hook = String::from_utf8(notified(&sent).body.clone()).expect("ASCII JSON");
    assert!(hook.contains(r#""alarm_name": "cpu \ud800""#), "{hook}");
    // Each retry fails the same way; after max-attempts the message is dead-lettered with the reason.
    let mut retry = failed.value.clone();
    for attempt in 1..3 {
        let effects = mail.run_values("retry-notifications", &[&retry]).expect("retry");
        let [Effect::Produce(failed)] = effects.as_slice() else { panic!("attempt {attempt}: {effects:?}") };
        let body = String::from_utf8(failed.value.clone()).expect("ASCII JSON");
        assert!(body.contains(&format!(r#""retry_count": {attempt}"#)), "{body}");
        retry = failed.value.clone();
    }
    let last = mail.run_values("retry-notifications", &[&retry]).expect("last retry");
    let [Effect::Reject(rejection)] = last.as_slice() else { panic!("dead-lettered: {last:?}") };
    assert!(rejection.reason.contains("surrogates not allowed"), "{}", rejection.reason);
}
