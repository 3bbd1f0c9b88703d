//! The guest configured as the fixtures' monasca-notification was, for the
//! tests that hold it to the original's recorded output.

use monasca_guest_sdk::pyjson::{self, LoadOptions};
use monasca_guest_sdk::testing::Harness;
use monasca_guest_sdk::{Cell, Effect, Notification, OutputRecord};
use notification::NotificationGuest;
use serde_json::Value;

/// The definition the fixtures' database has no actions for.
const NO_ACTIONS: &str = "00000000-0000-0000-0000-000000000000";

/// The guest with the original's plugin settings and `now`, its
/// `alarm_actions` lookup answering every definition with `methods`
/// (`methods.json` rows: `id, type, name, address, period`), but for the
/// definition without actions.
pub fn guest_with_methods(methods: Value) -> Harness<NotificationGuest> {
    let config = [
        ("enabled-types", "email,pagerduty,webhook,slack,jira"),
        ("grafana-url", "http://grafana.example:3000"),
        ("ttl-seconds", "14400"),
    ];
    let mut harness =
        Harness::<NotificationGuest>::new(&config).expect("init").with_lookup("alarm_actions", move |params| {
            if params[0] == NO_ACTIONS {
                return Ok(Vec::new());
            }
            let rows = methods.as_array().expect("rows").iter().map(|m| {
                ["id", "type", "name", "address"]
                    .iter()
                    .map(|k| (k.to_string(), Cell::Text(m[*k].as_str().unwrap_or_default().to_string())))
                    .chain([("period".to_string(), Cell::Integer(m["period"].as_i64().unwrap_or_default()))])
                    .collect()
            });
            Ok(rows.collect())
        });
    harness.at_time(1_700_000_100_000);
    harness
}

/// One notification of ours: sent through the host, or failed in the guest
/// (its failure records produced at once, as when the original's plugin
/// raises before sending).
pub struct Ours<'e> {
    /// The notification method's id.
    pub method_id: String,
    /// The notification, when it goes to the host.
    pub sent: Option<&'e Notification>,
    /// The records of a notification failed in the guest.
    pub failed_records: Vec<&'e OutputRecord>,
}

impl Ours<'_> {
    /// Our record on `topic` for this notification: the one published once
    /// it is sent (`alarm-notifications`, a periodic topic) or when it
    /// fails (`retry-notifications`).
    pub fn record(&self, topic: &str) -> Option<&OutputRecord> {
        let on_topic = |r: &&OutputRecord| r.topic.as_deref() == Some(topic);
        match self.sent {
            Some(n) if topic == "retry-notifications" => n.on_failed.iter().find(on_topic),
            Some(n) => n.on_sent.iter().find(on_topic),
            None => self.failed_records.iter().copied().find(on_topic),
        }
    }
}

/// Our notifications, in order, from the guest's effects.
pub fn ours(effects: &[Effect]) -> Vec<Ours<'_>> {
    let mut ours: Vec<Ours> = Vec::new();
    for effect in effects {
        match effect {
            Effect::Notify(n) => {
                let method_id = n.idempotency_key.rsplit(':').next().unwrap_or_default().to_string();
                ours.push(Ours { method_id, sent: Some(n), failed_records: Vec::new() });
            }
            Effect::Produce(record) => {
                let text = String::from_utf8_lossy(&record.value);
                let id = pyjson::loads_with(&text, LoadOptions::JSON)
                    .ok()
                    .and_then(|r| r.member("id").as_str().map(str::to_string))
                    .unwrap_or_default();
                match ours.last_mut() {
                    Some(last) if last.sent.is_none() && last.method_id == id => last.failed_records.push(record),
                    _ => ours.push(Ours { method_id: id, sent: None, failed_records: vec![record] }),
                }
            }
            _ => {}
        }
    }
    ours
}
