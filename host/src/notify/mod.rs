//! Delivering the guests' `notify` effects. [`Notifiers`] picks the
//! notifier by the notification's channel (`webhook`, `pagerduty`, `slack`,
//! `http`, `email`, `jira`), checks the destination against the allowlist,
//! and bounds the deliveries in flight. The ledger ([`ledger::Ledger`])
//! remembers what was sent; the pipeline's executor consults it around
//! every delivery.

pub mod allow;
mod email;
mod http;
mod jira;
pub mod ledger;
mod plain;
#[cfg(test)]
pub(crate) mod test_http;

use crate::config::{DatabaseConfig, NotifiersConfig};
use crate::databases::Database;
use crate::engine::types::Notification;
use allow::Allowlist;
use ledger::Ledger;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// How one delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered.
    Sent,
    /// Could not be delivered (error answer, timeout, connection): may be retried.
    Failed(String),
    /// Will never be delivered as asked (allowlist, bad destination, no
    /// such notifier): dead-lettered, not retried.
    Refused(String),
}

impl Outcome {
    /// `sent`, `failed` or `refused`, the metric's label.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Failed(_) => "failed",
            Outcome::Refused(_) => "refused",
        }
    }
}

/// Why the notifiers could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A setting is wrong.
    #[error("{0}")]
    Setup(String),
    /// The ledger's database could not be opened.
    #[error(transparent)]
    Database(#[from] crate::databases::DatabaseError),
}

/// The value of a notification's attribute.
pub fn attribute<'a>(n: &'a Notification, key: &str) -> Option<&'a str> {
    n.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The outcomes counted per channel, in this order.
const OUTCOMES: [&str; 4] = ["sent", "failed", "refused", "skipped"];

/// Deliveries by channel and outcome, and ledger skips, for `/metrics`.
#[derive(Debug, Default)]
pub struct NotifyCounts {
    counts: Mutex<BTreeMap<String, [u64; 4]>>,
}

impl NotifyCounts {
    /// Count one delivery (or `skipped`: already sent, per the ledger).
    /// Allocates only for a channel's first count.
    pub fn count(&self, channel: &str, outcome: &'static str) {
        let Some(at) = OUTCOMES.iter().position(|o| *o == outcome) else { return };
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        match counts.get_mut(channel) {
            Some(row) => row[at] += 1,
            None => {
                let mut row = [0; 4];
                row[at] = 1;
                counts.insert(channel.to_string(), row);
            }
        }
    }

    /// (channel, outcome) → count, for the outcomes that happened.
    pub fn read(&self) -> BTreeMap<(String, &'static str), u64> {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts
            .iter()
            .flat_map(|(channel, row)| {
                OUTCOMES.iter().zip(row).filter(|(_, n)| **n > 0).map(|(o, n)| ((channel.clone(), *o), *n))
            })
            .collect()
    }
}

/// The host's notifiers.
pub struct Notifiers {
    allow: Allowlist,
    allow_email: Allowlist,
    http: http::Http,
    email: Option<email::Email>,
    jira: Option<jira::Jira>,
    ledger: Ledger,
    in_flight: Semaphore,
    counts: NotifyCounts,
    /// The most one delivery may take, every request and answer included.
    deadline: Duration,
}

/// A delivery's total deadline, in `[notifiers] timeout_ms`: a Jira
/// notification makes up to three requests, each held to the timeout.
const DEADLINE_TIMEOUTS: u32 = 3;

impl Notifiers {
    /// Set up from `[notifiers]`; the ledger's database is one of `databases`
    /// (opened for writing) or the SQLite file `[notifiers.ledger] path`.
    pub fn new(config: &NotifiersConfig, databases: &BTreeMap<String, DatabaseConfig>) -> Result<Self, NotifyError> {
        let allow = Allowlist::new(config.allow.as_deref())
            .map_err(|e| NotifyError::Setup(format!("[notifiers] allow: {e}")))?;
        let allow_email = Allowlist::new(config.allow_email.as_deref())
            .map_err(|e| NotifyError::Setup(format!("[notifiers] allow_email: {e}")))?;
        let timeout = Duration::from_millis(config.timeout_ms);
        let email =
            config.email.as_ref().map(|c| email::Email::new(c, timeout)).transpose().map_err(NotifyError::Setup)?;
        let jira = config.jira.as_ref().map(jira::Jira::new).transpose().map_err(NotifyError::Setup)?;
        let database = match &config.ledger.database {
            Some(name) => {
                let db = databases.get(name).ok_or_else(|| {
                    NotifyError::Setup(format!("[notifiers.ledger] database `{name}` is not in [databases]"))
                })?;
                Database::open(name, db, true)?
            }
            None => {
                let path = config.ledger.path.clone().unwrap_or_else(|| "monasca-wasm-ledger.sqlite".into());
                Database::sqlite_file("ledger", &path)?
            }
        };
        let ledger = Ledger::new(Arc::new(database), &config.ledger.table).map_err(NotifyError::Setup)?;
        Ok(Notifiers {
            allow,
            allow_email,
            http: http::Http::new(config).map_err(NotifyError::Setup)?,
            email,
            jira,
            ledger,
            in_flight: Semaphore::new(config.max_in_flight.max(1)),
            counts: NotifyCounts::default(),
            deadline: timeout * DEADLINE_TIMEOUTS,
        })
    }

    /// Lines for the start-up summary (no credentials).
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "notifiers: http{}{}, ledger in {}",
            if self.email.is_some() { ", email" } else { "" },
            if self.jira.is_some() { ", jira" } else { "" },
            self.ledger.describe()
        )];
        if self.allow.allows_everything() {
            lines.push("notifiers: no [notifiers] allow list: HTTP notifications may go to any host".to_string());
        }
        lines
    }

    /// The ledger of sent notifications.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Deliveries so far.
    pub fn counts(&self) -> &NotifyCounts {
        &self.counts
    }

    /// Deliver one notification through its channel's notifier.
    pub async fn deliver(&self, n: &Notification) -> Outcome {
        let outcome = match self.in_flight.acquire().await {
            // Boxed: the notifiers' futures are large (an SMTP session, Jira's
            // requests), and a batch holds hundreds of deliveries at once,
            // moved when they are queued.
            Ok(_permit) => match tokio::time::timeout(self.deadline, Box::pin(self.dispatch(n))).await {
                Ok(outcome) => outcome,
                // A server that takes the connection and never answers (an
                // SMTP server stalled after its greeting) holds nothing longer.
                Err(_) => Outcome::Failed(format!(
                    "no answer within {} ms, the delivery's deadline ({DEADLINE_TIMEOUTS} × [notifiers] timeout_ms)",
                    self.deadline.as_millis()
                )),
            },
            Err(_) => Outcome::Failed("the notifiers are shutting down".to_string()),
        };
        self.counts.count(&n.channel, outcome.label());
        outcome
    }

    async fn dispatch(&self, n: &Notification) -> Outcome {
        match n.channel.as_str() {
            "webhook" | "pagerduty" | "slack" | "http" => self.http.send(n, &self.allow).await,
            "email" => match &self.email {
                Some(email) => email.send(n, &self.allow_email).await,
                None => Outcome::Refused("email notification, but no [notifiers.email] is configured".to_string()),
            },
            "jira" => match &self.jira {
                Some(jira) => jira.send(self.http.client(), n, &self.allow).await,
                None => Outcome::Refused("Jira notification, but no [notifiers.jira] is configured".to_string()),
            },
            other => Outcome::Refused(format!("no notifier for channel `{other}`")),
        }
    }
}
