//! The notification pipelines end to end: a real Kafka broker, MariaDB with
//! Monasca's schema, the tests' own HTTP receivers (webhook, PagerDuty,
//! Slack, Jira) and a real SMTP server (aiosmtpd), with the notification
//! guest in a `monasca-wasm run` process.

mod common;

use common::kafka::{consume_on, produce_values, spawn_host, terminate};
use common::notify::{dead_letter_reason, metrics, write_config, Method, Mon, Setup, Topics};
use common::receiver::{Behaviour, Receiver};
use monasca_test_programs::services::{decode_mail, SmtpServer};
use rdkafka::message::Message as _;
use serde_json::Value;
use std::time::{Duration, Instant};

const TRANSITIONS: &str = "notification/alarm-transitions.jsonl";

/// Wait until `done` holds (checked every 100 ms) or `limit` passes.
async fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    done()
}

fn expected(case: &str) -> Value {
    let path = monasca_test_programs::fixture(&format!("notification/expected/{case}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).expect("expected file")).expect("expected JSON")
}

/// The `alarm-transitioned` object of input line `line` (from 1).
fn input_alarm(lines: &[Vec<u8>], line: usize) -> Value {
    let message: Value = serde_json::from_slice(&lines[line - 1]).expect("input JSON");
    message["alarm-transitioned"].clone()
}

/// A transition for `definition` and `alarm`, now, from `OK` to `state`.
fn transition(definition: &str, alarm: &str, state: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis();
    serde_json::json!({"alarm-transitioned": {
        "tenantId": "t", "alarmId": alarm, "alarmDefinitionId": definition, "alarmName": "cpu high",
        "alarmDescription": "cpu", "metrics": [{"id": null, "name": "cpu.idle_perc", "dimensions": {"hostname": "h1"}}],
        "oldState": "OK", "newState": state, "actionsEnabled": true, "stateChangeReason": "Thresholds were exceeded",
        "severity": "HIGH", "link": null, "lifecycleState": null, "subAlarms": [], "timestamp": now as u64}})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_method_type_sends_what_monasca_notification_sends() {
    let bootstrap = monasca_test_programs::kafka();
    // Unique names: the test can run again on a warm broker and database.
    let test = monasca_test_programs::unique("notify-payloads");
    let topics = Topics::create(&test, 1).await;
    let receiver = Receiver::start(Behaviour::Succeed).await;
    let smtp = SmtpServer::start("payloads", &[]);
    let mon = Mon::connect();
    // The fixtures' methods, pointed at the receivers (HipChat is not supported).
    let hook = format!("{}/hook", receiver.url);
    let periodic_hook = format!("{}/hook?periodic=1", receiver.url);
    let slack_hook = format!("{}/services/x", receiver.url);
    let slack_api = format!("{}/api/chat.postMessage?token=xoxb-1&channel=#alerts", receiver.url);
    let jira = format!("{}/?project=MON&component=alerts", receiver.url);
    let methods = [
        Method {
            id: "0a000001-0000-4000-8000-000000000001",
            kind: "WEBHOOK",
            name: "Ops webhook",
            address: &hook,
            period: 0,
        },
        Method {
            id: "0a000002-0000-4000-8000-000000000002",
            kind: "WEBHOOK",
            name: "Periodic webhook",
            address: &periodic_hook,
            period: 60,
        },
        Method {
            id: "0a000003-0000-4000-8000-000000000003",
            kind: "EMAIL",
            name: "Ops mail",
            address: "ops@example.com",
            period: 0,
        },
        Method {
            id: "0a000004-0000-4000-8000-000000000004",
            kind: "PAGERDUTY",
            name: "PagerDuty",
            address: "0123456789abcdef0123456789abcdef",
            period: 0,
        },
        Method {
            id: "0a000005-0000-4000-8000-000000000005",
            kind: "SLACK",
            name: "Slack hook",
            address: &slack_hook,
            period: 0,
        },
        Method {
            id: "0a000006-0000-4000-8000-000000000006",
            kind: "SLACK",
            name: "Slack API",
            address: &slack_api,
            period: 0,
        },
        Method { id: "0a000007-0000-4000-8000-000000000007", kind: "JIRA", name: "Jira", address: &jira, period: 0 },
    ];
    let cases = ["single-host", "host-and-target", "several-hosts", "non-ascii", "escapes"];
    let lines = monasca_test_programs::fixture_lines(TRANSITIONS);
    let mut inputs = Vec::new();
    for case in cases {
        let line = expected(case)["input"]["line"].as_u64().expect("input line") as usize;
        let alarm = input_alarm(&lines, line);
        let definition = alarm["alarmDefinitionId"].as_str().expect("definition");
        mon.define(definition, &[alarm["newState"].as_str().expect("state")], &methods).await;
        inputs.push(lines[line - 1].clone());
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let pagerduty = format!("{}/pagerduty", receiver.url);
    let setup = Setup {
        smtp_port: Some(smtp.port),
        pagerduty_url: &pagerduty,
        max_attempts: 5,
        jira_url: Some(&receiver.url),
        ..Setup::new(&test, &topics)
    };
    let host = spawn_host(&write_config(dir.path(), &setup));
    produce_values(bootstrap, &topics.alarms, &inputs).await;

    // 6 HTTP notifications (2 webhooks, PagerDuty, 2 Slack) + 3 Jira calls, 1 mail, per case.
    let want_http = cases.len() * 8;
    let arrived = wait_for(Duration::from_secs(60), || {
        receiver.delivered().len() >= want_http && smtp.received().len() >= cases.len()
    })
    .await;
    let (_, stderr) = terminate(host);
    assert!(
        arrived,
        "{} HTTP, {} mails arrived; host said:\n{stderr}",
        receiver.delivered().len(),
        smtp.received().len()
    );

    let delivered = receiver.delivered();
    let mails = smtp.received();
    for case in cases {
        let e = expected(case);
        let alarm = input_alarm(&lines, e["input"]["line"].as_u64().expect("input line") as usize);
        let alarm_id = alarm["alarmId"].as_str().expect("alarm id");
        for original in e["notifications"].as_array().expect("notifications") {
            let id = original["method_id"].as_str().expect("method id");
            let key = format!("{alarm_id}:{}:{id}", alarm["timestamp"]);
            let calls = original["calls"].as_array().expect("calls");
            let call = |kind: &str| calls.iter().find(|c| c["kind"] == kind).cloned();
            match original["type"].as_str().expect("type") {
                "webhook" | "pagerduty" | "slack" => {
                    let http = call("http").expect("HTTP call");
                    let got: Vec<_> = delivered.iter().filter(|r| r.key() == Some(key.as_str())).collect();
                    assert_eq!(got.len(), 1, "{case} {id}: delivered once");
                    assert_eq!(got[0].text(), http["body"].as_str().expect("body"), "{case} {id}: body");
                    assert_eq!(got[0].headers.get("content-type").map(String::as_str), Some("application/json"));
                    let url = http["url"].as_str().expect("url");
                    let original_query = url.split_once('?').map(|(_, q)| q.to_string());
                    assert_eq!(got[0].query, original_query, "{case} {id}: query");
                }
                "email" => {
                    let sent = call("smtp.sendmail").expect("mail");
                    let ours = mails
                        .iter()
                        .map(|m| (decode_mail(&m.raw), m))
                        .find(|((_, body, _), _)| body.contains(alarm_id))
                        .unwrap_or_else(|| panic!("{case}: no mail for {alarm_id}"));
                    let ((subject, body, message_id), mail) = ours;
                    assert_eq!(subject, sent["subject_decoded"].as_str().expect("subject"), "{case}: subject");
                    assert_eq!(body, sent["body_decoded"].as_str().expect("body"), "{case}: body");
                    assert!(message_id.ends_with("@monasca-wasm>"), "{message_id}");
                    assert_eq!(mail.envelope["rcpt_tos"][0], "ops@example.com");
                    assert_eq!(mail.envelope["mail_from"], "monasca@example.com");
                }
                "jira" => {
                    let comment = call("jira.add_comment").expect("comment");
                    let ours = delivered
                        .iter()
                        .find(|r| r.path == "/rest/api/2/issue/MON-1/comment" && r.text().contains(alarm_id))
                        .unwrap_or_else(|| panic!("{case}: no Jira comment"));
                    let body: Value = serde_json::from_slice(&ours.body).expect("comment JSON");
                    assert_eq!(body["body"], comment["body"], "{case}: Jira comment");
                    let create = call("jira.create_issue").expect("create");
                    let created = delivered
                        .iter()
                        .find(|r| r.path == "/rest/api/2/issue" && r.text().contains(alarm_id))
                        .expect("issue created");
                    let fields: Value = serde_json::from_slice(&created.body).expect("create JSON");
                    assert_eq!(fields["fields"], create["fields"], "{case}: Jira issue");
                }
                other => panic!("unexpected type {other}"),
            }
        }
    }
    // The sent notifications on `alarm-notifications`, as the original's records
    // (but for the receivers' addresses and the send time).
    let records = consume_on(bootstrap, &topics.sent, cases.len() * 7).await;
    assert_eq!(records.len(), cases.len() * 7, "one record per notification");
    for case in cases {
        let e = expected(case);
        for original in e["kafka_out"].as_array().expect("kafka_out") {
            if original["topic"] != "alarm-notifications" {
                continue;
            }
            let mut want: Value = serde_json::from_str(original["value"].as_str().expect("value")).expect("record");
            let found = records.iter().find_map(|m| {
                let mut got: Value = serde_json::from_slice(m.payload()?).ok()?;
                if got["id"] != want["id"] || got["alarm_id"] != want["alarm_id"] {
                    return None;
                }
                assert!(got["notification_timestamp"].as_f64().is_some_and(|t| t > 1.7e9));
                for field in ["address", "notification_timestamp"] {
                    got[field] = Value::Null;
                    want[field] = Value::Null;
                }
                Some(got)
            });
            assert_eq!(found, Some(want.clone()), "{case}: record");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_notifications_are_retried_then_dead_lettered() {
    let bootstrap = monasca_test_programs::kafka();
    // Unique names: the test can run again on a warm broker and database.
    let test = monasca_test_programs::unique("notify-retries");
    let topics = Topics::create(&test, 1).await;
    let flaky = Receiver::start(Behaviour::FailFirst(2)).await;
    let broken = Receiver::start(Behaviour::AlwaysFail).await;
    let mon = Mon::connect();
    let (flaky_hook, broken_hook) = (format!("{}/flaky", flaky.url), format!("{}/broken", broken.url));
    mon.define(
        "def-retries",
        &["ALARM"],
        &[
            Method { id: "m-retries-flaky", kind: "WEBHOOK", name: "flaky", address: &flaky_hook, period: 0 },
            Method { id: "m-retries-broken", kind: "WEBHOOK", name: "broken", address: &broken_hook, period: 0 },
        ],
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let setup = Setup::new(&test, &topics);
    let host = spawn_host(&write_config(dir.path(), &setup));
    produce_values(bootstrap, &topics.alarms, &[transition("def-retries", "alarm-retries", "ALARM")]).await;

    // The flaky receiver: two failures, then one delivery, all with the same key.
    let dead = consume_on(bootstrap, &topics.dead, 1).await;
    let metrics = metrics(dir.path()).await;
    let (_, stderr) = terminate(host);
    for line in [
        "monasca_wasm_notifier_deliveries_total{channel=\"webhook\",outcome=\"failed\"} 6",
        "monasca_wasm_notifier_deliveries_total{channel=\"webhook\",outcome=\"sent\"} 1",
        "monasca_wasm_notifications_failed_total{pipeline=\"notification-retry\"} 4",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    let attempts = flaky.received();
    assert_eq!(attempts.len(), 3, "flaky: {attempts:?}\n{stderr}");
    assert_eq!(flaky.delivered().len(), 1);
    assert!(attempts
        .iter()
        .all(|r| r.key() == Some("alarm-retries:") || r.key().is_some_and(|k| k.ends_with(":m-retries-flaky"))));
    let keys: std::collections::BTreeSet<_> = attempts.iter().map(|r| r.key().map(str::to_string)).collect();
    assert_eq!(keys.len(), 1, "every attempt carries the same Idempotency-Key");
    // The broken receiver: the first send and `max-attempts` retries, then the dead-letter topic.
    assert_eq!(broken.received().len(), 4, "1 send + 3 retries\n{stderr}");
    assert_eq!(dead.len(), 1, "one dead letter");
    let reason = dead_letter_reason(&dead[0]);
    assert!(reason.contains("notification failed") && reason.contains("500"), "{reason}");
    let record: Value = serde_json::from_slice(dead[0].payload().expect("payload")).expect("record");
    assert_eq!(record["id"], "m-retries-broken");
    assert_eq!(record["retry_count"], 2, "the last retry's record");
    let sent = consume_on(bootstrap, &topics.sent, 1).await;
    assert_eq!(sent.len(), 1, "only the flaky one was delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn periodic_webhook_fires_while_the_alarm_stays_in_alarm() {
    let bootstrap = monasca_test_programs::kafka();
    // Unique names: the test can run again on a warm broker and database.
    let test = monasca_test_programs::unique("notify-periodic");
    let topics = Topics::create(&test, 1).await;
    let receiver = Receiver::start(Behaviour::Succeed).await;
    let mon = Mon::connect();
    let hook = format!("{}/periodic", receiver.url);
    mon.define(
        "def-periodic",
        &["ALARM"],
        &[Method { id: "m-periodic", kind: "WEBHOOK", name: "every 2 s", address: &hook, period: 2 }],
    )
    .await;
    mon.set_alarm("alarm-periodic", "def-periodic", "ALARM").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let setup = Setup::new(&test, &topics);
    let host = spawn_host(&write_config(dir.path(), &setup));
    produce_values(bootstrap, &topics.alarms, &[transition("def-periodic", "alarm-periodic", "ALARM")]).await;

    // The first notification, then one every 2 s while the alarm is in ALARM.
    let fired = wait_for(Duration::from_secs(30), || receiver.delivered().len() >= 4).await;
    assert!(fired, "{} deliveries", receiver.delivered().len());
    mon.set_alarm("alarm-periodic", "def-periodic", "OK").await;
    // A round already under way may still go out; then nothing more.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after_ok = receiver.delivered().len();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (_, stderr) = terminate(host);
    let all = receiver.delivered();
    assert_eq!(all.len(), after_ok, "the periodic notification stopped when the alarm left ALARM\n{stderr}");
    let keys: std::collections::BTreeSet<_> = all.iter().filter_map(|r| r.key().map(str::to_string)).collect();
    assert_eq!(keys.len(), all.len(), "each round has its own key");
    assert!(keys.iter().filter(|k| k.contains(":periodic:")).count() >= 3, "{keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn destinations_outside_the_allowlist_are_refused_and_dead_lettered() {
    let bootstrap = monasca_test_programs::kafka();
    // Unique names: the test can run again on a warm broker and database.
    let test = monasca_test_programs::unique("notify-allow");
    let topics = Topics::create(&test, 1).await;
    let receiver = Receiver::start(Behaviour::Succeed).await;
    let mon = Mon::connect();
    let allowed = format!("{}/allowed", receiver.url);
    let port = receiver.url.rsplit(':').next().expect("port").to_string();
    // Same receiver, by a name the allowlist does not hold.
    let outside = format!("http://localhost:{port}/outside");
    mon.define(
        "def-allow",
        &["ALARM"],
        &[
            Method { id: "m-allow-in", kind: "WEBHOOK", name: "in", address: &allowed, period: 0 },
            Method { id: "m-allow-out", kind: "WEBHOOK", name: "out", address: &outside, period: 0 },
        ],
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let allow = format!("127.0.0.1:{port}");
    let setup = Setup { allow: &[allow.as_str()], ..Setup::new(&test, &topics) };
    let host = spawn_host(&write_config(dir.path(), &setup));
    produce_values(bootstrap, &topics.alarms, &[transition("def-allow", "alarm-allow", "ALARM")]).await;
    let dead = consume_on(bootstrap, &topics.dead, 1).await;
    let (_, stderr) = terminate(host);
    assert_eq!(dead.len(), 1, "{stderr}");
    let reason = dead_letter_reason(&dead[0]);
    assert!(reason.contains("refused") && reason.contains("localhost:") && reason.contains("allow"), "{reason}");
    let paths: Vec<String> = receiver.received().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/allowed"], "nothing reached the refused destination");
    assert!(!stderr.contains("jira-secret"), "credentials never logged");
}
