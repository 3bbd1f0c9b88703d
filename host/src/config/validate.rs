//! The checks of a parsed configuration that parsing cannot make: at least
//! one pipeline, unique names, topics or an HTTP source, sane limits,
//! lookups that name a database and only read, sinks that can work, and
//! (at start-up) that modules exist and tokens from the environment are set.
//! [`HostConfig::problems`] finds every one; [`HostConfig::validate`] stops
//! at the first, as `run` does.

use super::{ConfigError, Delivery, HostConfig, KeyPath, SinkConfig};

/// A value that parses but cannot work: where it is, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The key, from the top of the file (`pipeline[0].batch`).
    pub path: KeyPath,
    /// Why it cannot work.
    pub message: String,
}

impl HostConfig {
    /// Check what parsing cannot: at least one pipeline, unique names,
    /// non-empty topics, sane limits, and (when `check_files`) that modules
    /// exist. The first problem, as an error naming its key.
    pub fn validate(&self, origin: &str, check_files: bool) -> Result<(), ConfigError> {
        match self.problems(check_files).into_iter().next() {
            None => Ok(()),
            Some(first) => Err(ConfigError::Invalid {
                path: origin.to_string(),
                key: first.path.to_string(),
                message: first.message,
            }),
        }
    }

    /// Every problem [`HostConfig::validate`] looks for, in the order it
    /// looks (so the first is the one `validate` reports).
    pub fn problems(&self, check_files: bool) -> Vec<Invalid> {
        let mut found = Vec::new();
        let mut invalid = |path: KeyPath, message: &str| found.push(Invalid { path, message: message.to_string() });
        if self.kafka.bootstrap.trim().is_empty() {
            invalid(KeyPath::top("kafka").child("bootstrap"), "must name brokers or be \"embedded\"");
        }
        if self.pipelines.is_empty() {
            invalid(KeyPath::top("pipeline"), "at least one [[pipeline]] is needed");
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, p) in self.pipelines.iter().enumerate() {
            let at = KeyPath::top("pipeline").at(i);
            if p.name.is_empty() || !names.insert(p.name.as_str()) {
                invalid(at.child("name"), "must be non-empty and unique");
            }
            if let Some(http) = &p.http {
                if !p.topics.is_empty() {
                    invalid(at.child("topics"), "a pipeline reads either topics or [pipeline.http], not both");
                }
                if p.delivery == Delivery::ExactlyOnce {
                    invalid(at.child("delivery"), "an HTTP source is at-least-once");
                }
                if !p.group_id.is_empty() {
                    invalid(at.child("group_id"), "a pipeline with [pipeline.http] consumes no group");
                }
                if let Some((field, message)) = http.problem(check_files) {
                    invalid(at.child("http").dotted(field), &message);
                }
            } else {
                if p.topics.is_empty() || p.topics.iter().any(|t| t.is_empty()) {
                    invalid(at.child("topics"), "must list at least one topic (or have [pipeline.http])");
                }
                if p.group_id.is_empty() {
                    invalid(at.child("group_id"), "must not be empty");
                }
            }
            if p.batch.max_messages == 0 || p.batch.max_bytes == 0 {
                invalid(at.child("batch"), "max_messages and max_bytes must be at least 1");
            }
            if p.concurrency == 0 {
                invalid(at.child("concurrency"), "must be at least 1");
            }
            if p.transaction.commit_interval_ms == 0 || p.transaction.timeout_ms < 1000 {
                invalid(at.child("transaction"), "commit_interval_ms must be at least 1 and timeout_ms at least 1000");
            }
            if p.state.max_keys == 0 || p.state.max_bytes == 0 || p.state.restore_timeout_s == 0 {
                invalid(at.child("state"), "max_keys, max_bytes and restore_timeout_s must be at least 1");
            }
            if check_files && !p.module.is_file() {
                invalid(at.child("module"), &format!("no such file: {}", p.module.display()));
            }
            for (name, lookup) in &p.lookups {
                let at = at.child("lookups").child(name);
                if !self.databases.contains_key(&lookup.database) {
                    invalid(at.child("database"), &format!("no [databases.{}]", lookup.database));
                }
                let first = lookup.query.split_whitespace().next().unwrap_or_default().to_ascii_lowercase();
                if first != "select" && first != "with" {
                    invalid(at.child("query"), "must be a read-only SELECT");
                }
            }
        }
        for (name, sink) in &self.sinks {
            let at = KeyPath::top("sinks").child(name);
            match sink {
                SinkConfig::Influxdb(c) => {
                    if !(c.url.starts_with("http://") || c.url.starts_with("https://")) {
                        invalid(at.child("url"), "must start with http:// or https://");
                    }
                    if c.database.is_empty() {
                        invalid(at.child("database"), "must not be empty");
                    }
                    if c.batch_points == 0 || c.max_in_flight == 0 || c.timeout_ms == 0 {
                        invalid(
                            at.child("batch_points"),
                            "batch_points, max_in_flight and timeout_ms must be at least 1",
                        );
                    }
                }
                SinkConfig::Sqlite(c) if c.path.as_os_str().is_empty() => {
                    invalid(at.child("path"), "must name a file");
                }
                SinkConfig::Sqlite(_) | SinkConfig::Null => {}
            }
        }
        if let Some(g) = &self.generator {
            if g.topic.is_empty() {
                invalid(KeyPath::top("generator").child("topic"), "must not be empty");
            }
        }
        if let Some(n) = &self.notifiers {
            if let Some(name) = n.ledger.database.as_ref().filter(|d| !self.databases.contains_key(*d)) {
                invalid(KeyPath::top("notifiers").child("ledger").child("database"), &format!("no [databases.{name}]"));
            }
            if n.timeout_ms == 0 || n.max_in_flight == 0 {
                invalid(
                    KeyPath::top("notifiers").child("timeout_ms"),
                    "timeout_ms and max_in_flight must be at least 1",
                );
            }
        }
        found
    }
}
