//! `kill -9` of a host in the middle of 5,000 alarm transitions with three
//! notification methods each (webhook, PagerDuty, email): every one of the
//! 15,000 notifications reaches its receiver, and none is acted on twice.
//!
//! "Acted on" is the receivers' view with the `Idempotency-Key` header
//! (HTTP) and `Message-ID` (mail) the host sends: a notification whose
//! delivery was under way when the host died has no recorded outcome in the
//! ledger, so the restarted host sends it again with the same key (it cannot
//! know whether the first attempt arrived). The test counts those resends
//! and bounds them by what can lack a recorded outcome at a kill; everything
//! the ledger recorded as sent is never sent again.

mod common;

use common::kafka::{produce_values, spawn_host, terminate};
use common::notify::{write_config, Method, Mon, Setup, Topics};
use common::receiver::{Behaviour, Receiver};
use monasca_test_programs::services::SmtpServer;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const TRANSITIONS: usize = 5_000;
const KILLS: usize = 2;
/// What can lack a recorded outcome at a kill: the deliveries under way
/// (`[notifiers] max_in_flight`, 64 by default) and the outcomes not yet
/// written to the ledger (it is written every 256 outcomes or 50 ms, per
/// batch; a few batches run at once).
const UNRECORDED_AT_A_KILL: usize = 64 + 4 * 256;

fn message_id(raw: &str) -> Option<String> {
    raw.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("message-id").then(|| value.trim().to_string())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_run_delivers_every_notification_once() {
    let bootstrap = monasca_test_programs::kafka();
    // Unique names: the test can run again on a warm broker and database.
    let test = monasca_test_programs::unique("notify-crash");
    let topics = Topics::create(&test, 3).await;
    let receiver = Receiver::start(Behaviour::Succeed).await;
    let smtp = SmtpServer::start("crash", &[]);
    let mon = Mon::connect();
    let hook = format!("{}/hook", receiver.url);
    mon.define(
        "def-crash",
        &["ALARM"],
        &[
            Method { id: "m-crash-1-hook", kind: "WEBHOOK", name: "hook", address: &hook, period: 0 },
            Method { id: "m-crash-2-pager", kind: "PAGERDUTY", name: "pager", address: "service-key", period: 0 },
            Method { id: "m-crash-3-mail", kind: "EMAIL", name: "mail", address: "ops@example.com", period: 0 },
        ],
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let pagerduty = format!("{}/pagerduty", receiver.url);
    let setup =
        Setup { smtp_port: Some(smtp.port), pagerduty_url: &pagerduty, max_attempts: 5, ..Setup::new(&test, &topics) };
    let config = write_config(dir.path(), &setup);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as u64;
    let transitions: Vec<String> = (0..TRANSITIONS)
        .map(|i| {
            serde_json::json!({"alarm-transitioned": {
                "tenantId": "t", "alarmId": format!("alarm-crash-{i}"), "alarmDefinitionId": "def-crash",
                "alarmName": "disk full", "alarmDescription": "disk", "oldState": "OK", "newState": "ALARM",
                "metrics": [{"id": null, "name": "disk.space_used_perc", "dimensions": {"hostname": format!("h{}", i % 50)}}],
                "actionsEnabled": true, "stateChangeReason": "Thresholds were exceeded", "severity": "HIGH",
                "link": null, "lifecycleState": null, "subAlarms": [], "timestamp": now}})
            .to_string()
        })
        .collect();
    produce_values(bootstrap, &topics.alarms, &transitions).await;

    let total = TRANSITIONS * 3;
    let delivered = |receiver: &Receiver, smtp: &SmtpServer| receiver.delivered().len() + smtp.received().len();
    let mut host = spawn_host(&config);
    for kill in 1..=KILLS {
        // Kill at about a third, then two thirds, of the way.
        let target = total * kill / (KILLS + 1);
        let deadline = Instant::now() + Duration::from_secs(180);
        while delivered(&receiver, &smtp) < target && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(delivered(&receiver, &smtp) >= target, "stalled before kill {kill}:\n{}", host.stderr());
        host.kill();
        host = spawn_host(&config);
    }
    let deadline = Instant::now() + Duration::from_secs(240);
    let distinct = |receiver: &Receiver, smtp: &SmtpServer| {
        let http: std::collections::HashSet<String> =
            receiver.delivered().iter().filter_map(|r| r.key().map(str::to_string)).collect();
        let mail: std::collections::HashSet<String> =
            smtp.received().iter().filter_map(|m| message_id(&m.raw)).collect();
        http.len() + mail.len()
    };
    while distinct(&receiver, &smtp) < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Anything still to come would be a duplicate: give it time to show.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, stderr) = terminate(host);

    let mut per_key: HashMap<String, usize> = HashMap::new();
    for r in receiver.delivered() {
        *per_key.entry(r.key().expect("every request has an Idempotency-Key").to_string()).or_default() += 1;
    }
    let mut per_mail: HashMap<String, usize> = HashMap::new();
    for m in smtp.received() {
        *per_mail.entry(message_id(&m.raw).expect("every mail has a Message-ID")).or_default() += 1;
    }
    let expected_keys: Vec<String> = (0..TRANSITIONS)
        .flat_map(|i| ["m-crash-1-hook", "m-crash-2-pager"].map(|m| format!("alarm-crash-{i}:{now}:{m}")))
        .collect();
    let missing: Vec<&String> = expected_keys.iter().filter(|k| !per_key.contains_key(*k)).collect();
    assert!(
        missing.is_empty(),
        "{} HTTP notifications never arrived, e.g. {:?}\n{stderr}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(per_key.len(), TRANSITIONS * 2, "no unexpected HTTP notification");
    assert_eq!(per_mail.len(), TRANSITIONS, "every mail arrived (distinct Message-IDs)\n{stderr}");
    let resent: usize = per_key.values().chain(per_mail.values()).map(|n| n - 1).sum();
    let worst = per_key.values().chain(per_mail.values()).max().copied().unwrap_or(0);
    eprintln!(
        "{} notifications, each acted on once; {resent} resends (same key) after {KILLS} kills, at most {worst} arrivals of one key",
        total
    );
    assert!(worst <= KILLS + 1, "a key arrived {worst} times");
    assert!(resent <= KILLS * UNRECORDED_AT_A_KILL, "{resent} resends: more than can lack an outcome at {KILLS} kills");
    assert_eq!(
        mon.ledger_count(&format!("ledger_{}", test.replace('-', "_")), "sent").await,
        total as i64,
        "the ledger has every notification as sent"
    );
}
