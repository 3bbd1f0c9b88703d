//! The notification guest: what monasca-notification does, as a component.
//!
//! Three roles, chosen by the topic a message comes from; one host pipeline
//! per role, all running this module:
//! - **alarm transitions** (`alarm-state-transitions`): a valid alarm
//!   (actions enabled, not older than `ttl-seconds`) is looked up in the
//!   operator's `alarm_actions` query (the alarm definition's notification
//!   methods for the new state; asked once per definition and state in a
//!   batch); each method of an enabled type becomes one
//!   `notify` effect with the payload monasca-notification's plugin sends.
//!   Delivered: the notification is published on `alarm-notifications`;
//!   failed: on `retry-notifications` (with its attempt count). Methods with
//!   a period also go to their periodic topic (`60-seconds-notifications`).
//! - **retries** (`retry-notifications`, a pipeline with `delay_seconds`):
//!   the method is refreshed through `notification_method` (gone: dropped)
//!   and the notification sent again; after `max-attempts` failures its
//!   message is dead-lettered with the reason.
//! - **periodic** (`<period>-seconds-notifications`, a pipeline with
//!   `delay_seconds` = the period): while the alarm's state (the
//!   `alarm_state` lookup) is still the notified one and the method still
//!   has this period, the notification is sent again and re-published for
//!   the next period. A chain's rounds are the transition's time plus whole
//!   periods (the records' `notification_timestamp`), so a replay re-creates
//!   the same rounds and the ledger sends each once.
//!
//! Where the original's plugin raises before sending (an email it cannot
//! write: see [`compose_email`]), the guest fails the notification itself:
//! its failure records are produced as the host's would be.
//!
//! Every notification carries the idempotency key `alarm id:transition
//! time:method id` (periodic rounds add the round's time), so the host's
//! ledger sends each once however often a message is replayed. Messages
//! that cannot be read are dead-lettered with the reason; alarms whose
//! actions are disabled, that are too old, or that have no methods are
//! dropped (logged).
//!
//! Options (`[pipeline.config]`):
//! | key | default | meaning |
//! |---|---|---|
//! | `alarm-topic` | `alarm-state-transitions` | alarm transitions |
//! | `notification-topic` | `alarm-notifications` | where sent notifications are published |
//! | `retry-topic` | `retry-notifications` | where failed ones wait for a retry |
//! | `periodic` | `60:60-seconds-notifications` | `period:topic` pairs, comma-separated |
//! | `ttl-seconds` | `14400` | older alarms are dropped (0: never) |
//! | `max-attempts` | `5` | retries of a failed notification (after the first send) before its message is dead-lettered |
//! | `enabled-types` | `email,pagerduty,webhook` | method types notified (others dropped); also `slack`, `jira` |
//! | `grafana-url` | none | base URL of the email's Grafana link |
//! | `pagerduty-url` | PagerDuty's v1 events URL | where PagerDuty events go |
//! | `actions-lookup` | `alarm_actions` | lookup: (definition id, state) → id, type, name, address, period |
//! | `alarm-state-lookup` | `alarm_state` | lookup: (alarm id) → state |
//! | `method-lookup` | `notification_method` | lookup: (method id) → name, type, address, period |

mod alarm;
mod email;
mod fields;
mod notice;
mod payloads;
mod python;
mod slack;

pub use alarm::{Alarm, Skip};
pub use email::{compose as compose_email, Mail};
pub use notice::Notice;
pub use payloads::{common_body, delivery, Delivery, PluginSettings, Undeliverable};

use monasca_guest_sdk::pyjson::Json;
use monasca_guest_sdk::{
    clock, log, lookup, Cell, Config, Effects, Message, Notification, ProcessError, Processor, Row,
};
use std::rc::Rc;

/// The default `[pagerduty_notifier] url`.
pub const PAGERDUTY_URL: &str = "https://events.pagerduty.com/generic/2010-04-15/create_event.json";

/// The guest's settings.
pub struct NotificationGuest {
    alarm_topic: String,
    notification_topic: String,
    retry_topic: String,
    periodic: Vec<(i64, String)>,
    ttl_seconds: u64,
    max_attempts: u64,
    enabled: Vec<String>,
    plugins: PluginSettings,
    actions_lookup: String,
    alarm_state_lookup: String,
    method_lookup: String,
}

/// A notification method row.
#[derive(Debug, Clone)]
struct Method {
    id: String,
    kind: String,
    name: monasca_guest_sdk::pyjson::Json<'static>,
    address: String,
    period: i64,
}

impl Processor for NotificationGuest {
    fn init(config: &Config) -> Result<Self, String> {
        let periodic = config
            .get_or("periodic", "60:60-seconds-notifications")
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|pair| {
                let (period, topic) = pair.split_once(':').ok_or(format!("periodic: {pair:?} is not period:topic"))?;
                let period: i64 = period.trim().parse().map_err(|_| format!("periodic: bad period in {pair:?}"))?;
                Ok((period, topic.trim().to_string()))
            })
            .collect::<Result<_, String>>()?;
        let enabled: Vec<String> = config
            .get_or("enabled-types", "email,pagerduty,webhook")
            .split(',')
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect();
        // The original ignores a plugin it does not know (`hipchat` is in
        // many 9.0.0 configurations): so does the guest, saying so.
        let (enabled, unknown): (Vec<String>, Vec<String>) =
            enabled.into_iter().partition(|t| payloads::TYPES.contains(&t.as_str()));
        for kind in unknown {
            log::warn(&format!(
                "enabled-types: `{kind}` is not supported (supported: {}): its methods are dropped",
                payloads::TYPES.join(", ")
            ));
        }
        Ok(NotificationGuest {
            alarm_topic: config.get_or("alarm-topic", "alarm-state-transitions").to_string(),
            notification_topic: config.get_or("notification-topic", "alarm-notifications").to_string(),
            retry_topic: config.get_or("retry-topic", "retry-notifications").to_string(),
            periodic,
            ttl_seconds: config.parse_or("ttl-seconds", 14_400)?,
            max_attempts: config.parse_or("max-attempts", 5)?,
            enabled,
            plugins: PluginSettings {
                grafana_url: config.get("grafana-url").map(str::to_string),
                pagerduty_url: config.get_or("pagerduty-url", PAGERDUTY_URL).to_string(),
            },
            actions_lookup: config.get_or("actions-lookup", "alarm_actions").to_string(),
            alarm_state_lookup: config.get_or("alarm-state-lookup", "alarm_state").to_string(),
            method_lookup: config.get_or("method-lookup", "notification_method").to_string(),
        })
    }

    fn process(&mut self, batch: Vec<Message>, out: &mut Effects) -> Result<(), ProcessError> {
        let now_ms = clock::now_ms();
        let mut actions = Actions::default();
        for message in &batch {
            let handled = if message.topic == self.alarm_topic {
                self.transition(message, now_ms, &mut actions, out)
            } else if message.topic == self.retry_topic {
                self.retry(message, now_ms, out)
            } else if let Some(period) = self.periodic.iter().find(|(_, t)| *t == message.topic).map(|(p, _)| *p) {
                self.periodic_round(message, period, out)
            } else {
                Err(Handling::Reject(format!("topic `{}` is not one this guest handles", message.topic)))
            };
            match handled {
                Ok(()) => {}
                Err(Handling::Reject(reason)) => out.reject(message, reason),
                Err(Handling::Retry(reason)) => return Err(ProcessError::new(reason).caused_by(message)),
            }
        }
        Ok(())
    }
}

/// Why a message was not handled.
enum Handling {
    /// The message itself is bad: dead-letter it.
    Reject(String),
    /// Something outside it failed (a lookup): fail the batch so the host retries it.
    Retry(String),
}

impl NotificationGuest {
    /// An alarm transition: one notification per enabled method.
    fn transition(
        &self,
        message: &Message,
        now_ms: i64,
        actions: &mut Actions,
        out: &mut Effects,
    ) -> Result<(), Handling> {
        let alarm = Alarm::parse(&message.value).map_err(Handling::Reject)?;
        match alarm.check(now_ms, self.ttl_seconds) {
            Ok(()) => {}
            Err(Skip::ActionsDisabled) => {
                log::debug(&format!("alarm {}: actions disabled, not notified", alarm.text("alarmId")));
                return Ok(());
            }
            Err(Skip::Unreadable(reason)) => return Err(Handling::Reject(reason)),
            Err(Skip::Expired(age)) => {
                log::warn(&format!(
                    "alarm {} is {age:.0} s old, over the TTL of {} s: not notified",
                    alarm.text("alarmId"),
                    self.ttl_seconds
                ));
                return Ok(());
            }
        }
        // Any JSON, as the original's SQL parameters take it.
        let (definition, state) = (alarm.member("alarmDefinitionId").py_text(), alarm.member("newState").py_text());
        let methods = actions.of(&self.actions_lookup, &definition, &state)?;
        if !methods.is_empty() {
            // The original's notification reads these, raising when it cannot
            // (a `metrics` of any type is taken: the email then fails).
            if alarm.get("metrics").is_none() {
                return Err(Handling::Reject("alarm transition has no `metrics` (KeyError: 'metrics')".to_string()));
            }
            alarm::alarm_seconds(alarm.member("timestamp"))
                .map_err(|e| Handling::Reject(format!("alarm transition: {e}")))?;
        }
        if alarm.get("alarmDescription").is_none() && !methods.is_empty() {
            log::warn(&format!("alarm {} has no alarmDescription: sent as null", alarm.text("alarmId")));
        }
        let stamp = now_ms as f64 / 1000.0;
        let raw_alarm = notice::RawAlarm::indexed(alarm.raw, alarm.fields);
        for m in methods.iter().cloned() {
            if !self.enabled.contains(&m.kind) {
                log::warn(&format!("notification method {} has type {}, which is not enabled: dropped", m.id, m.kind));
                continue;
            }
            let notice = Notice {
                id: m.id,
                kind: m.kind,
                name: m.name,
                address: m.address,
                retry_count: 0,
                raw_alarm: raw_alarm.clone(),
                notification_timestamp: Some(stamp),
                period: m.period,
            };
            // A periodic method starts its chain of rounds, whatever the
            // send's outcome (as the original). The chain's times count from
            // the transition, so a replay that starts it again makes the
            // same rounds, which the ledger sends once.
            let periodic = self.periodic_topic(notice.period).map(|topic| {
                let mut first = notice.clone();
                first.notification_timestamp = Some(notice.alarm_timestamp_ms() as f64 / 1000.0);
                (topic.to_string(), first.to_json())
            });
            // Sent or failed, the record is the same: the original publishes
            // a failure with its count unchanged (the retry engine counts).
            let key = notice.key();
            let record = notice.to_json();
            let follow = |n: Notification| {
                let n = match &periodic {
                    Some((topic, first)) => n.on_sent(topic, first.clone()).on_failed(topic, first.clone()),
                    None => n,
                };
                n.on_sent(&self.notification_topic, record.clone()).on_failed(&self.retry_topic, record)
            };
            self.notify(message, &notice, key, follow, out)?;
        }
        Ok(())
    }

    /// A notification back from the retry topic.
    fn retry(&self, message: &Message, now_ms: i64, out: &mut Effects) -> Result<(), Handling> {
        let mut notice = Notice::from_json(&message.value).map_err(Handling::Reject)?;
        match self.refresh(&mut notice)? {
            Refreshed::Gone => {
                log::info(&format!("notification method {} no longer exists: retry dropped", notice.id));
                return Ok(());
            }
            Refreshed::Current | Refreshed::Unavailable => {}
        }
        let stamp = now_ms as f64 / 1000.0;
        notice.notification_timestamp = Some(stamp);
        let key = notice.key();
        let sent = notice.to_json();
        let attempts = notice.retry_count + 1;
        let mut again = notice.clone();
        again.retry_count = attempts;
        let failed = (attempts < self.max_attempts).then(|| again.to_json());
        let follow = |n: Notification| {
            let n = n.on_sent(&self.notification_topic, sent);
            match failed {
                Some(record) => n.on_failed(&self.retry_topic, record),
                None => n,
            }
        };
        self.notify(message, &notice, key, follow, out)
    }

    /// A periodic notification, due again.
    fn periodic_round(&self, message: &Message, period: i64, out: &mut Effects) -> Result<(), Handling> {
        let mut notice = Notice::from_json(&message.value).map_err(Handling::Reject)?;
        let rows = lookup::query(&self.alarm_state_lookup, &[notice.alarm_id().as_ref()])
            .map_err(|e| Handling::Retry(format!("lookup `{}` failed: {e}", self.alarm_state_lookup)))?;
        let state = rows.first().and_then(|row| text(row, "state", 0));
        if state.as_deref() != Some(notice.alarm_text("newState")) {
            log::debug(&format!(
                "alarm {} is no longer {}: periodic notification ends",
                notice.alarm_id(),
                notice.alarm_text("newState")
            ));
            return Ok(());
        }
        if let Refreshed::Gone = self.refresh(&mut notice)? {
            return Ok(());
        }
        if notice.period != period {
            log::debug(&format!("method {} no longer has period {period}: periodic notification ends", notice.id));
            return Ok(());
        }
        // Rounds are the chain's start plus whole periods (not the clock), so
        // that a replayed round re-creates the same next round.
        let round = notice.notification_timestamp.map(|s| (s * 1000.0).round() as i64).unwrap_or(0);
        let key = format!("{}:periodic:{round}", notice.key());
        // Saturating: a record's time may be anything, even `Infinity`.
        notice.notification_timestamp = Some(round.saturating_add(period.saturating_mul(1000)) as f64 / 1000.0);
        let next = notice.to_json();
        let topic = message.topic.clone();
        // The original re-publishes whatever the send's outcome.
        self.notify(message, &notice, key, |n| n.on_sent(&topic, next.clone()).on_failed(&topic, next), out)
    }

    /// Refresh name, type, address and period from the method lookup.
    fn refresh(&self, notice: &mut Notice) -> Result<Refreshed, Handling> {
        match lookup::query(&self.method_lookup, &[notice.id.as_str()]) {
            Ok(rows) => match rows.first().and_then(|row| method(row, Some(&notice.id))) {
                Some(m) => {
                    notice.kind = m.kind;
                    notice.name = m.name;
                    notice.address = m.address;
                    notice.period = m.period;
                    Ok(Refreshed::Current)
                }
                None => Ok(Refreshed::Gone),
            },
            Err(e) => {
                // As the original: a database error keeps the recorded method.
                log::warn(&format!("lookup `{}` failed ({e}): using the recorded method", self.method_lookup));
                Ok(Refreshed::Unavailable)
            }
        }
    }

    fn periodic_topic(&self, period: i64) -> Option<&str> {
        self.periodic.iter().find(|(p, _)| *p == period && period > 0).map(|(_, t)| t.as_str())
    }

    /// Push the notify effect for `notice`, follow-ups set by `follow`.
    fn notify(
        &self,
        message: &Message,
        notice: &Notice,
        key: String,
        follow: impl FnOnce(Notification) -> Notification,
        out: &mut Effects,
    ) -> Result<(), Handling> {
        if !self.enabled.contains(&notice.kind) {
            log::warn(&format!("notification type {} is not enabled: dropped", notice.kind));
            return Ok(());
        }
        let d = match delivery(notice, &self.plugins) {
            Ok(d) => d,
            Err(Undeliverable::Unsupported(reason)) => return Err(Handling::Reject(reason)),
            Err(Undeliverable::Fails(reason)) => {
                // What the host does when a send fails, without a send.
                log::warn(&format!(
                    "{} notification {} of alarm {} failed: {reason}",
                    notice.kind,
                    notice.id,
                    notice.alarm_id()
                ));
                let n = follow(Notification::new(notice.kind.as_str(), notice.address.as_str(), Vec::new(), key));
                out.fail_notification(message, n, reason);
                return Ok(());
            }
        };
        let mut n = Notification::new(d.channel, d.destination, d.body, key);
        n.attributes = d.attributes;
        // One alarm's notifications to one destination arrive in order.
        n.attributes.push(("order".to_string(), notice.alarm_id().to_string()));
        out.notify(message, follow(n));
        Ok(())
    }
}

/// The `alarm_actions` answers of one batch, by (definition, state): a
/// batch's transitions of one definition ask the host once.
#[derive(Default)]
struct Actions {
    answers: Vec<Answer>,
}

/// One `alarm_actions` answer: definition id, state, methods.
struct Answer {
    definition: String,
    state: String,
    methods: Rc<Vec<Method>>,
}

impl Actions {
    fn of(&mut self, lookup_name: &str, definition: &str, state: &str) -> Result<Rc<Vec<Method>>, Handling> {
        if let Some(answer) = self.answers.iter().find(|a| a.definition == definition && a.state == state) {
            return Ok(answer.methods.clone());
        }
        let rows = lookup::query(lookup_name, &[definition, state])
            .map_err(|e| Handling::Retry(format!("lookup `{lookup_name}` failed: {e}")))?;
        let methods: Rc<Vec<Method>> = Rc::new(rows.iter().filter_map(|row| method(row, None)).collect());
        // Few definitions per batch as a rule; a batch of many keeps its last 64.
        if self.answers.len() >= 64 {
            self.answers.remove(0);
        }
        self.answers.push(Answer {
            definition: definition.to_string(),
            state: state.to_string(),
            methods: methods.clone(),
        });
        Ok(methods)
    }
}

/// What the method lookup said.
enum Refreshed {
    Current,
    Gone,
    Unavailable,
}

/// A text column by name (or position).
fn text(row: &Row, name: &str, position: usize) -> Option<String> {
    let cell = row.iter().find(|(c, _)| c.eq_ignore_ascii_case(name)).or_else(|| row.get(position)).map(|(_, c)| c)?;
    match cell {
        Cell::Text(s) => Some(s.clone()),
        Cell::Integer(i) => Some(i.to_string()),
        Cell::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

/// A method row: `id, type, name, address, period` (the method lookup may
/// leave `id` out: `known_id` then).
fn method(row: &Row, known_id: Option<&str>) -> Option<Method> {
    // Columns by name; by position as the original's queries order them.
    let (id, kind, name, address) = match known_id {
        Some(id) => (id.to_string(), text(row, "type", 1)?, text(row, "name", 0), text(row, "address", 2)?),
        None => (text(row, "id", 0)?, text(row, "type", 1)?, text(row, "name", 2), text(row, "address", 3)?),
    };
    let period = row
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case("period"))
        .and_then(|(_, c)| match c {
            Cell::Integer(p) => Some(*p),
            Cell::Text(t) => t.parse().ok(),
            _ => None,
        })
        .unwrap_or(0);
    Some(Method {
        id,
        kind: kind.to_ascii_lowercase(),
        name: name.map(|n| Json::Str(n.into())).unwrap_or(Json::Null),
        address,
        period,
    })
}

monasca_guest_sdk::export!(NotificationGuest);
