//! `monasca-wasm import-config`: turn an operator's monasca-persister 9.0.0
//! `persister.conf` or monasca-notification 9.0.0 `notification.conf` into
//! an equivalent host configuration (TOML text), with a `# not mapped:`
//! comment for each option that has no equivalent and why.
//!
//! One job per module:
//! - [`ini`]: the oslo.config INI reader (sections, continuation lines,
//!   repeated keys, errors with line numbers).
//! - `options`: typed reads of the options as oslo.config reads them, and
//!   the bookkeeping that leaves no option of the file unaccounted for.
//! - `emit`: the TOML writer (quoting, comments).
//! - `persister`, `notification` (with `notifiers` and `database`): the
//!   mappings, option by option, with the originals' defaults.
//!
//! The result is checked with the host's own loader ([`HostConfig::parse`]
//! and `validate`) before it is returned: a mapping that made a file the
//! host refuses is a bug, reported as [`ImportError::Generated`].

pub mod ini;

mod database;
mod emit;
mod notification;
mod notifiers;
mod options;
mod persister;

use crate::config::HostConfig;
use emit::TomlWriter;
use ini::{Entry, Ini, IniError};
use options::Options;

/// Which original a file configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// monasca-persister 9.0.0 (`persister.conf`).
    Persister,
    /// monasca-notification 9.0.0 (`notification.conf`).
    Notification,
}

impl Kind {
    /// The original's name.
    pub fn original(self) -> &'static str {
        match self {
            Kind::Persister => "monasca-persister 9.0.0",
            Kind::Notification => "monasca-notification 9.0.0",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Persister => "persister",
            Kind::Notification => "notification",
        })
    }
}

/// An option of the file that has no equivalent in the host configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Its section (lower case, or `DEFAULT`).
    pub section: String,
    /// Its name.
    pub key: String,
    /// Its value as written (continuation lines joined with `\n`).
    pub value: String,
    /// Its line in the file.
    pub line: usize,
    /// Why it is not mapped.
    pub why: String,
}

impl Note {
    fn new(section: &str, entry: &Entry, why: String) -> Self {
        Note { section: section.to_string(), key: entry.key.clone(), value: entry.value.clone(), line: entry.line, why }
    }
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = self.value.replace('\n', "\\n");
        write!(f, "[{}] {} = {} — {}", self.section, self.key, value, self.why)
    }
}

/// Why a file could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Not valid oslo.config INI.
    #[error(transparent)]
    Ini(#[from] IniError),
    /// Neither `--kind` nor the file's sections say which original it is for.
    #[error("cannot tell whether this is a persister.conf or a notification.conf from its sections: give --kind")]
    UnknownKind,
    /// A value the original would refuse too.
    #[error("{place}: {message}")]
    Value {
        /// `line N: [section] key`, or `[section] key` for an option the file does not set.
        place: String,
        /// What is wrong.
        message: String,
    },
    /// A configuration with which the original would do nothing useful.
    #[error("{0}")]
    Unusable(String),
    /// The generated text does not load: a bug of the mapping.
    #[error("the generated configuration does not load ({0}); this is a bug of import-config")]
    Generated(String),
}

/// What a kind's mapping reports besides the text.
#[derive(Debug, Default)]
struct Outcome {
    /// The secrets the output holds, for the header ("the InfluxDB password").
    secrets: Vec<&'static str>,
}

/// An imported configuration.
#[derive(Debug, Clone)]
pub struct Imported {
    /// Which original the file configured.
    pub kind: Kind,
    /// The host configuration, TOML, with its comments.
    pub toml: String,
    /// The options with no equivalent, in file order (each is also a
    /// `# not mapped:` comment at the end of `toml`).
    pub unmapped: Vec<Note>,
}

/// Sections only a persister.conf has.
const PERSISTER_SECTIONS: &[&str] =
    &["kafka_metrics", "kafka_alarm_history", "kafka_events", "influxdb", "repositories", "cassandra", "elasticsearch"];

/// Sections only a notification.conf has.
const NOTIFICATION_SECTIONS: &[&str] = &[
    "notification_types",
    "email_notifier",
    "webhook_notifier",
    "pagerduty_notifier",
    "slack_notifier",
    "jira_notifier",
    "hipchat_notifier",
    "retry_engine",
    "alarm_processor",
    "notification_processor",
    "database",
    "mysql",
    "postgresql",
    "orm",
    "statsd",
    "keystone",
    "queues",
];

/// `[kafka]` options only one of the two has.
const PERSISTER_KAFKA: &[&str] = &["num_processors", "max_wait_time_seconds", "consumer_id", "fetch_size_bytes"];
const NOTIFICATION_KAFKA: &[&str] =
    &["url", "group", "alarm_topic", "notification_topic", "notification_retry_topic", "periodic"];

/// Which original a file configures, from its sections (`None`: cannot tell).
pub fn guess_kind(ini: &Ini) -> Option<Kind> {
    let count = |sections: &[&str], kafka: &[&str]| {
        sections.iter().filter(|s| ini.section(s).is_some()).count()
            + kafka.iter().filter(|k| ini.get("kafka", k).is_some()).count()
    };
    let persister = count(PERSISTER_SECTIONS, PERSISTER_KAFKA);
    let notification = count(NOTIFICATION_SECTIONS, NOTIFICATION_KAFKA);
    match persister.cmp(&notification) {
        std::cmp::Ordering::Greater => Some(Kind::Persister),
        std::cmp::Ordering::Less => Some(Kind::Notification),
        std::cmp::Ordering::Equal => None,
    }
}

/// Import a file's text. `source` names it in the output's header; `kind`
/// is guessed from the sections when `None`.
pub fn import(text: &str, kind: Option<Kind>, source: &str) -> Result<Imported, ImportError> {
    let ini = Ini::parse(text)?;
    let kind = match kind {
        Some(kind) => kind,
        None => guess_kind(&ini).ok_or(ImportError::UnknownKind)?,
    };
    let mut options = Options::new(&ini);
    let mut body = TomlWriter::new();
    let outcome = match kind {
        Kind::Persister => persister::import(&mut options, &mut body)?,
        Kind::Notification => notification::import(&mut options, &mut body)?,
    };
    let original = kind.original();
    let unmapped = options.finish(|section| {
        if section == "DEFAULT" {
            "oslo.log and oslo.config's own options: the host logs to stderr (RUST_LOG, --log-format)".to_string()
        } else {
            format!("not an option of {original} (it ignores it too)")
        }
    });

    let mut w = TomlWriter::new();
    w.comment(&format!(
        "monasca-wasm host configuration, generated by `monasca-wasm import-config`\n\
         from {source} (a {original} configuration file).\n\
         Options left out of that file have the original's defaults, written out where ours differ.\n\
         Each value's comment names the option it came from; options with no equivalent are listed\n\
         at the end as `not mapped`."
    ));
    if !outcome.secrets.is_empty() {
        w.comment(&format!(
            "This file holds secrets copied from {source} ({}): keep it readable\n\
             by the host's user only, or move them to the environment variables named in\n\
             docs/configuration.md.",
            outcome.secrets.join(", ")
        ));
    }
    w.blank();
    w.append(body);
    if !unmapped.is_empty() {
        w.blank();
        w.comment(&format!("Options of {source} with no equivalent here ({}):", unmapped.len()));
        for note in &unmapped {
            w.comment(&format!("not mapped: {note}"));
        }
    }
    let toml = w.finish();
    let config =
        HostConfig::parse(&toml, "the generated configuration").map_err(|e| ImportError::Generated(e.to_string()))?;
    config.validate("the generated configuration", false).map_err(|e| ImportError::Generated(e.to_string()))?;
    Ok(Imported { kind, toml, unmapped })
}

#[cfg(test)]
mod tests;
