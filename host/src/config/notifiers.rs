//! `[notifiers]`: how the guests' notifications are delivered (HTTP, email,
//! Jira) and remembered (the ledger).

use super::Secret;
use serde::Deserialize;
use std::path::PathBuf;

/// `[notifiers]`: delivery of the guests' notifications.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifiersConfig {
    /// Destinations HTTP notifiers may reach: host names (`hooks.example.org`),
    /// `host:port`, IP addresses, `*.example.org` for a domain's hosts, or
    /// `*` for any. Unset: every destination is allowed (a warning says so
    /// at start-up). A refused destination is dead-lettered with the reason.
    #[serde(default)]
    pub allow: Option<Vec<String>>,
    /// Recipient domains email may go to, same patterns (`example.org`,
    /// `*.example.org`, `*`). Unset: any.
    #[serde(default)]
    pub allow_email: Option<Vec<String>>,
    /// Timeout of one delivery (connect, send, answer), ms (monasca-notification: 5 s).
    #[serde(default = "default_notify_timeout_ms")]
    pub timeout_ms: u64,
    /// Deliveries in flight at once, across the host.
    #[serde(default = "default_notify_in_flight")]
    pub max_in_flight: usize,
    /// Proxy for HTTP notifiers, e.g. `http://proxy.example.org:3128`
    /// (monasca-notification's `[slack_notifier] proxy`); none by default.
    #[serde(default)]
    pub proxy: Option<String>,
    /// A PEM file of extra CA certificates HTTP notifiers trust
    /// (monasca-notification's `ca_certs`).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Accept any TLS certificate (monasca-notification's `insecure`). Off.
    #[serde(default)]
    pub insecure: bool,
    /// `[notifiers.email]`: SMTP; without it, email notifications fail.
    #[serde(default)]
    pub email: Option<EmailConfig>,
    /// `[notifiers.jira]`: Jira credentials; without them, Jira notifications fail.
    #[serde(default)]
    pub jira: Option<JiraConfig>,
    /// `[notifiers.ledger]`: where sent notifications are remembered.
    #[serde(default)]
    pub ledger: LedgerConfig,
}

impl Default for NotifiersConfig {
    fn default() -> Self {
        NotifiersConfig {
            allow: None,
            allow_email: None,
            timeout_ms: default_notify_timeout_ms(),
            max_in_flight: default_notify_in_flight(),
            proxy: None,
            ca_file: None,
            insecure: false,
            email: None,
            jira: None,
            ledger: LedgerConfig::default(),
        }
    }
}

fn default_notify_timeout_ms() -> u64 {
    5_000
}
fn default_notify_in_flight() -> usize {
    128
}

/// `[notifiers.email]`: the SMTP server (monasca-notification's `[email_notifier]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// SMTP server host.
    pub server: String,
    /// SMTP port.
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// The `From:` address (`from_addr`).
    pub from_addr: String,
    /// Log in with this user (with `password`); `MONASCA_WASM_SMTP_USER` wins.
    #[serde(default)]
    pub user: Option<String>,
    /// Password; `MONASCA_WASM_SMTP_PASSWORD` wins. Never logged.
    #[serde(default)]
    pub password: Option<Secret>,
    /// `none` (plain, the original's behaviour), `starttls` (upgrade, required)
    /// or `tls` (implicit TLS, usually port 465).
    #[serde(default)]
    pub tls: SmtpTls,
}

fn default_smtp_port() -> u16 {
    25
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP.
    #[default]
    None,
    /// STARTTLS, required.
    Starttls,
    /// Implicit TLS.
    Tls,
}

/// `[notifiers.jira]`: Jira credentials (monasca-notification's `[jira_notifier]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JiraConfig {
    /// The Jira server, e.g. `https://jira.example.org`: Jira notifications
    /// go there only (a method's address must be on this server), so the
    /// credentials never reach another host.
    pub url: String,
    /// Jira user; `MONASCA_WASM_JIRA_USER` wins.
    #[serde(default)]
    pub user: Option<String>,
    /// Password or API token; `MONASCA_WASM_JIRA_PASSWORD` wins. Never logged.
    #[serde(default)]
    pub password: Option<Secret>,
}

/// `[notifiers.ledger]`: the record of sent notifications, by idempotency key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// A name from `[databases]` (MariaDB/MySQL, PostgreSQL or SQLite opened
    /// for writing): shared by every host of the group. Unset: a SQLite file,
    /// `monasca-wasm-ledger.sqlite` next to the configuration (one host only).
    #[serde(default)]
    pub database: Option<String>,
    /// Table name; created when missing.
    #[serde(default = "default_ledger_table")]
    pub table: String,
    /// The SQLite file used when `database` is unset (relative to the configuration).
    #[serde(default)]
    pub path: Option<PathBuf>,
}

fn default_ledger_table() -> String {
    "notification_ledger".to_string()
}
