//! The guest configured as the fixtures' monasca-notification was, for the
//! tests that hold it to the original's recorded output.

use monasca_guest_sdk::testing::Harness;
use monasca_guest_sdk::Cell;
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
