//! monasca-notification's plugins (`[notification_types] enabled` and each
//! `[<type>_notifier]` section) → `[notifiers]` (timeout, proxy, CA file),
//! `[notifiers.email]`, a commented-out `[notifiers.jira]`, the ledger, and
//! the guest's `enabled-types`, `grafana-url` and `pagerduty-url`.
//!
//! The original configures each plugin on its own; the host has one
//! timeout, one proxy and one trust store for every HTTP notifier. Where the
//! plugins differ, the comments say which value was taken.

use super::database;
use super::emit::TomlWriter;
use super::options::Options;
use super::{ImportError, Outcome};

/// The original's plugin labels and class paths (`[notification_types] enabled`
/// takes either).
const KNOWN: [(&str, &str); 6] = [
    ("email", "monasca_notification.plugins.email_notifier:emailnotifier"),
    ("pagerduty", "monasca_notification.plugins.pagerduty_notifier:pagerdutynotifier"),
    ("webhook", "monasca_notification.plugins.webhook_notifier:webhooknotifier"),
    ("hipchat", "monasca_notification.plugins.hipchat_notifier:hipchatnotifier"),
    ("slack", "monasca_notification.plugins.slack_notifier:slacknotifier"),
    ("jira", "monasca_notification.plugins.jira_notifier:jiranotifier"),
];

/// The types the notification guest sends.
const SUPPORTED: [&str; 5] = ["email", "pagerduty", "webhook", "slack", "jira"];

/// SMTP settings from `[email_notifier]`.
struct Email {
    server: String,
    port: u16,
    from_addr: String,
    user: Option<String>,
    password: Option<String>,
}

/// What the plugin sections amount to.
pub(super) struct Plugins {
    /// The guest's `enabled-types`, in the file's order.
    pub(super) enabled: Vec<&'static str>,
    /// `[email_notifier] grafana_url`.
    pub(super) grafana_url: Option<String>,
    /// `[pagerduty_notifier] url`, when the file sets it.
    pub(super) pagerduty_url: Option<String>,
    timeouts: Vec<(&'static str, i64)>,
    proxy: Option<(&'static str, String)>,
    ca_file: Option<String>,
    slack_unchecked: bool,
    email: Option<Email>,
    email_missing: Option<String>,
    jira: Option<(Option<String>, Option<String>)>,
}

/// Read `[notification_types]` and the plugin sections.
pub(super) fn import(o: &mut Options) -> Result<Plugins, ImportError> {
    let enabled = enabled_types(o)?;
    let mut p = Plugins {
        enabled,
        grafana_url: None,
        pagerduty_url: None,
        timeouts: Vec::new(),
        proxy: None,
        ca_file: None,
        slack_unchecked: false,
        email: None,
        email_missing: None,
        jira: None,
    };
    for (label, _) in KNOWN {
        let section = format!("{label}_notifier");
        if label == "hipchat" {
            o.note_rest_of(&section, "HipChat is not supported (Atlassian discontinued it)");
        } else if !p.enabled.contains(&label) {
            o.note_rest_of(
                &section,
                &format!("{label} is not in [notification_types] enabled: the original ignores it too"),
            );
        } else {
            let timeout = o.int_min(&section, "timeout", 5, 1)?;
            p.timeouts.push((label, timeout));
        }
    }
    if p.has("email") {
        email(o, &mut p)?;
    }
    if p.has("pagerduty") {
        p.pagerduty_url = o.opt_string("pagerduty_notifier", "url")?;
    }
    let mut proxies: Vec<(&'static str, String)> = Vec::new();
    if p.has("slack") {
        const S: &str = "slack_notifier";
        let insecure = o.boolean(S, "insecure", true)?;
        let ca_certs = o.opt_string(S, "ca_certs")?;
        match (&ca_certs, insecure) {
            (Some(_), true) => o.note(S, "insecure", "ignored by the original too when ca_certs is set"),
            (None, true) if o.present(S, "insecure") => o.note(
                S,
                "insecure",
                "[notifiers] insecure = true would stop checking certificates for every HTTP notifier, not only \
                 Slack's: Slack's certificate is checked here (set it yourself if you mean that)",
            ),
            (None, true) => p.slack_unchecked = true,
            (_, false) => {}
        }
        p.ca_file = ca_certs;
        if let Some(proxy) = o.opt_string(S, "proxy")? {
            proxies.push((S, proxy));
        }
        o.note(
            S,
            "message_template",
            "Slack message templates (Jinja) are not supported: the original's default message is sent",
        );
    }
    if p.has("jira") {
        const S: &str = "jira_notifier";
        let user = o.opt_string(S, "user")?;
        let password = o.opt_string(S, "password")?;
        let why = "written commented out in [notifiers.jira], which needs the Jira server's url (the original took \
                   it from each method's address): fill it in and uncomment the table";
        o.note(S, "user", why);
        o.note(S, "password", why);
        p.jira = Some((user, password));
        if let Some(proxy) = o.opt_string(S, "proxy")? {
            proxies.push((S, proxy));
        }
        o.note(
            S,
            "custom_formatter",
            "Jira custom formatters (Jinja) are not supported: the original's default issue is made",
        );
    }
    if let Some((first_section, first)) = proxies.first().cloned() {
        for (section, proxy) in &proxies[1..] {
            if *proxy != first {
                o.note(
                    section,
                    "proxy",
                    format!("one proxy for every HTTP notifier here: [notifiers] proxy is [{first_section}] proxy"),
                );
            }
        }
        p.proxy = Some((first_section, first));
    }
    Ok(p)
}

/// `[notification_types] enabled`: labels or class paths; the types the
/// guest does not send are left out, with a note.
fn enabled_types(o: &mut Options) -> Result<Vec<&'static str>, ImportError> {
    const S: &str = "notification_types";
    let listed = o.list(S, "enabled", &["email", "pagerduty", "webhook"])?;
    let mut enabled: Vec<&'static str> = Vec::new();
    let mut left_out = Vec::new();
    for item in &listed {
        let lower = item.to_ascii_lowercase();
        let label = KNOWN.iter().find(|(label, path)| lower == *label || lower == *path).map(|(label, _)| *label);
        match label.and_then(|l| SUPPORTED.iter().copied().find(|s| *s == l)) {
            Some(supported) if !enabled.contains(&supported) => enabled.push(supported),
            Some(_) => {}
            None if label == Some("hipchat") => left_out.push(format!("{item} (HipChat is not supported)")),
            None => left_out.push(format!("{item} (not a plugin this host has)")),
        }
    }
    if !left_out.is_empty() {
        o.note(S, "enabled", format!("left out of the guest's enabled-types: {}", left_out.join(", ")));
    }
    Ok(enabled)
}

fn email(o: &mut Options, p: &mut Plugins) -> Result<(), ImportError> {
    const S: &str = "email_notifier";
    let server = o.opt_string(S, "server")?;
    let port = o.port(S, "port", 25)?;
    let from_addr = o.opt_string(S, "from_addr")?;
    let user = o.opt_string(S, "user")?;
    let password = o.opt_string(S, "password")?;
    p.grafana_url = o.opt_string(S, "grafana_url")?;
    match (server, from_addr) {
        (Some(server), Some(from_addr)) => p.email = Some(Email { server, port, from_addr, user, password }),
        (server, _) => {
            let missing = if server.is_none() { "server" } else { "from_addr" };
            let why =
                format!("email is enabled but [email_notifier] {missing} is not set, so there is no [notifiers.email]");
            for key in ["server", "from_addr", "port", "user", "password"] {
                o.note(S, key, why.clone());
            }
            p.email_missing = Some(format!(
                "email is enabled but [email_notifier] {missing} is not set: the original could not send mail either. \
                 Email notifications fail until [notifiers.email] is written (server, from_addr)."
            ));
        }
    }
    Ok(())
}

impl Plugins {
    /// Whether the guest sends this type.
    fn has(&self, label: &str) -> bool {
        self.enabled.contains(&label)
    }

    /// `[notifiers]` and its tables.
    pub(super) fn write(&self, w: &mut TomlWriter, outcome: &mut Outcome) {
        w.table(&["notifiers"]);
        w.comment(
            "allow = [\"*.example.org\"]  # the original could reach any destination; listing them refuses the others",
        );
        let longest = self.timeouts.iter().map(|(_, t)| *t).max().unwrap_or(5);
        w.int("timeout_ms", longest.saturating_mul(1000));
        if self.timeouts.iter().all(|(_, t)| *t == longest) {
            w.trailing("[*_notifier] timeout");
        } else {
            let each: Vec<String> = self.timeouts.iter().map(|(label, t)| format!("{label} {t} s")).collect();
            w.trailing(&format!(
                "one timeout for every channel here: the largest of the original's ({})",
                each.join(", ")
            ));
        }
        if let Some((section, proxy)) = &self.proxy {
            w.str("proxy", proxy);
            w.trailing(&format!(
                "[{section}] proxy: here every HTTP notification goes through it (the original: only its https:// ones)"
            ));
        }
        if let Some(ca) = &self.ca_file {
            w.str("ca_file", ca);
            w.trailing("[slack_notifier] ca_certs: trusted besides the usual authorities, for every HTTP notifier");
        }
        if self.slack_unchecked {
            w.comment(
                "The original did not check Slack's certificate ([slack_notifier] insecure defaults to True);\n\
                 here it is checked. `insecure = true` would stop checking it for every HTTP notifier.",
            );
        }
        if let Some(email) = &self.email {
            w.blank();
            w.table(&["notifiers", "email"]);
            w.str("server", &email.server);
            w.trailing("[email_notifier] server: plain SMTP, as the original (tls = \"starttls\" requires STARTTLS)");
            w.int("port", email.port.into());
            w.str("from_addr", &email.from_addr);
            if let Some(user) = &email.user {
                w.str("user", user);
                w.trailing("[email_notifier] user; MONASCA_WASM_SMTP_USER wins");
            }
            if let Some(password) = &email.password {
                w.str("password", password);
                w.trailing("[email_notifier] password; MONASCA_WASM_SMTP_PASSWORD wins");
                outcome.secrets.push("the SMTP password");
            }
        } else if let Some(missing) = &self.email_missing {
            w.comment(missing);
        }
        if let Some((user, password)) = &self.jira {
            w.blank();
            w.comment(
                "Jira is enabled, but the host needs the Jira server's url, which notification.conf does not hold",
            );
            w.comment("(the original took it from each Jira method's address). Set it and uncomment:");
            w.comment("[notifiers.jira]");
            w.comment("url = \"https://jira.example.org\"");
            if let Some(user) = user {
                w.comment(&format!("user = {}", super::emit::quote(user)));
            }
            if let Some(password) = password {
                w.comment(&format!("password = {}", super::emit::quote(password)));
                outcome.secrets.push("the Jira password (commented out)");
            }
        }
        w.blank();
        w.table(&["notifiers", "ledger"]);
        w.str("database", database::NAME);
        w.trailing(
            "new here: remembers sent notifications so a replayed batch sends none twice; \
             its table is created there (remove this line for a SQLite file, one host only)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::ini::Ini;

    fn plugins(text: &str) -> (Plugins, Vec<String>) {
        let ini = Ini::parse(text).unwrap();
        let mut o = Options::new(&ini);
        let p = import(&mut o).unwrap_or_else(|e| panic!("{e}"));
        (p, o.finish(|_| "unknown".to_string()).iter().map(|n| n.to_string()).collect())
    }

    #[test]
    fn enabled_types_take_labels_and_class_paths() {
        let (p, notes) = plugins(
            "[notification_types]\nenabled = webhook, monasca_notification.plugins.slack_notifier:SlackNotifier, \
             hipchat, carrier-pigeon, webhook\n",
        );
        assert_eq!(p.enabled, ["webhook", "slack"]);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("hipchat (HipChat is not supported)") && notes[0].contains("carrier-pigeon"));
        assert_eq!(plugins("").0.enabled, ["email", "pagerduty", "webhook"]);
    }

    #[test]
    fn sections_of_types_not_enabled_are_ignored_with_a_note() {
        let (p, notes) =
            plugins("[slack_notifier]\nproxy = http://proxy:3128\n[email_notifier]\nserver = smtp\nfrom_addr = a@b\n");
        assert!(p.proxy.is_none() && p.email.is_some());
        assert_eq!(notes, ["[slack_notifier] proxy = http://proxy:3128 — slack is not in [notification_types] enabled: the original ignores it too"]);
    }

    #[test]
    fn one_timeout_proxy_and_trust_store_for_every_channel() {
        let text = "[notification_types]\nenabled = slack,jira,webhook\n[slack_notifier]\ntimeout = 10\n\
                    proxy = http://p1:3128\nca_certs = /etc/ca.pem\n[jira_notifier]\nproxy = http://p2:3128\nuser = j\n\
                    password = pw\n";
        let (p, notes) = plugins(text);
        assert_eq!(p.timeouts, [("webhook", 5), ("slack", 10), ("jira", 5)]);
        assert_eq!(p.proxy, Some(("slack_notifier", "http://p1:3128".to_string())));
        assert_eq!(p.ca_file.as_deref(), Some("/etc/ca.pem"));
        assert!(!p.slack_unchecked);
        assert!(notes.iter().any(|n| n.starts_with("[jira_notifier] proxy = http://p2:3128 — one proxy")), "{notes:?}");
        assert!(
            notes.iter().any(|n| n.starts_with("[jira_notifier] password = pw — written commented out")),
            "{notes:?}"
        );
        let mut w = TomlWriter::new();
        let mut outcome = Outcome::default();
        p.write(&mut w, &mut outcome);
        let text = w.finish();
        assert!(text.contains("timeout_ms = 10000  # one timeout for every channel here"), "{text}");
        assert!(text.contains("# password = \"pw\""), "{text}");
        assert!(outcome.secrets.iter().any(|s| s.contains("Jira")));
    }

    #[test]
    fn email_needs_a_server_and_a_sender() {
        let (p, notes) = plugins("[email_notifier]\nserver = smtp\nuser = u\n");
        assert!(p.email.is_none() && p.email_missing.as_deref().is_some_and(|m| m.contains("from_addr")));
        assert_eq!(notes.len(), 2, "{notes:?}");
        let (p, _) = plugins("[notification_types]\nenabled = slack\n");
        assert!(p.slack_unchecked, "the original's Slack default did not check certificates");
    }
}
