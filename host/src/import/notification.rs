//! `notification.conf` (monasca-notification 9.0.0) → host configuration:
//! the Kafka brokers, the database and its lookups, the notifiers, and the
//! three pipelines the original's engines become (alarm transitions,
//! retries, one per periodic topic), each with the guest's options. An
//! option left out of the file gets the original's default.
//!
//! The original's engines all consume with `[kafka] group`; so do the
//! pipelines (each reads other topics), so the host resumes at the offsets
//! the original committed.

use super::database::{self, Database};
use super::emit::TomlWriter;
use super::notifiers::{self, Plugins};
use super::options::Options;
use super::{ImportError, Outcome};

/// `[kafka]`, `[alarm_processor]`, `[notification_processor]`, `[retry_engine]`.
struct Engines {
    brokers: Vec<String>,
    group: String,
    alarm_topic: String,
    notification_topic: String,
    retry_topic: String,
    periodic: Vec<(u64, String)>,
    processors: i64,
    ttl_seconds: i64,
    retry_interval: i64,
    max_attempts: i64,
}

/// Read a notification.conf and write its host configuration.
pub(super) fn import(o: &mut Options, w: &mut TomlWriter) -> Result<Outcome, ImportError> {
    let mut outcome = Outcome::default();
    let engines = engines(o)?;
    let plugins = notifiers::import(o)?;
    let db = database::import(o)?;
    other_notes(o)?;
    if db.dialect != database::Dialect::Sqlite {
        outcome.secrets.push("the database password (in its URL)");
    }

    w.table(&["kafka"]);
    w.str("bootstrap", &engines.brokers.join(","));
    w.trailing("[kafka] url");
    w.blank();
    db.write(w);
    w.blank();
    plugins.write(w, &mut outcome);
    write_pipelines(w, &engines, &plugins, &db);
    Ok(outcome)
}

fn engines(o: &mut Options) -> Result<Engines, ImportError> {
    const K: &str = "kafka";
    let brokers = o.list(K, "url", &["127.0.0.1:9092"])?;
    if brokers.is_empty() {
        return Err(o.invalid(K, "url", "names no broker"));
    }
    let mut periodic = Vec::new();
    for (period, topic) in o.dict(K, "periodic", &[("60", "60-seconds-notifications")])? {
        match period.parse::<u64>() {
            Ok(seconds) if seconds > 0 && !topic.is_empty() => periodic.push((seconds, topic)),
            _ => {
                return Err(o.invalid(
                    K,
                    "periodic",
                    format!("`{period}:{topic}` is not a period in seconds and a topic"),
                ))
            }
        }
    }
    let engines = Engines {
        brokers,
        group: o.string(K, "group", "monasca-notification")?,
        alarm_topic: o.string(K, "alarm_topic", "alarm-state-transitions")?,
        notification_topic: o.string(K, "notification_topic", "alarm-notifications")?,
        retry_topic: o.string(K, "notification_retry_topic", "retry-notifications")?,
        periodic,
        processors: o.int_min("notification_processor", "number", 4, 1)?,
        ttl_seconds: o.int("alarm_processor", "ttl", 14_400)?,
        retry_interval: o.int_min("retry_engine", "interval", 30, 30)?,
        max_attempts: o.int("retry_engine", "max_attempts", 5)?,
    };
    if engines.group.is_empty() {
        return Err(o.invalid(K, "group", "is empty"));
    }
    let mut inputs: Vec<&str> = vec![engines.alarm_topic.as_str(), engines.retry_topic.as_str()];
    inputs.extend(engines.periodic.iter().map(|(_, topic)| topic.as_str()));
    for (i, topic) in inputs.iter().enumerate() {
        if topic.is_empty() || inputs[..i].contains(topic) {
            return Err(ImportError::Unusable(format!(
                "the alarm, retry and periodic topics must be distinct and not empty (`{topic}`)"
            )));
        }
    }
    if engines.ttl_seconds <= 0 {
        o.note(
            "alarm_processor",
            "ttl",
            "with this ttl the original skipped every alarm; ttl-seconds = 0 here means no limit instead",
        );
    }
    if engines.max_attempts < 0 {
        o.note("retry_engine", "max_attempts", "below 0: written as 0 (no retry)");
    }
    o.note("kafka", "max_offset_lag", "not used by monasca-notification 9.0.0 either");
    o.note(
        "kafka",
        "legacy_kafka_client_enabled",
        "the host uses librdkafka with Kafka consumer groups: the legacy client and its ZooKeeper are not needed",
    );
    o.note("alarm_processor", "number", "deprecated and not used by the original");
    Ok(engines)
}

/// Sections with no equivalent at all.
fn other_notes(o: &mut Options) -> Result<(), ImportError> {
    let auth = o.boolean("keystone", "auth_required", false)?;
    if auth {
        o.note(
            "keystone",
            "auth_required",
            "Keystone tokens on webhooks are not supported: webhooks are sent without X-Auth-Token",
        );
        o.note_rest_of("keystone", "for webhooks' Keystone tokens, which are not supported");
    } else {
        o.note_rest_of("keystone", "not used: auth_required is off");
    }
    o.note_rest_of("zookeeper", "not needed: Kafka consumer groups assign the partitions and keep the offsets");
    o.note_rest_of(
        "statsd",
        "self-monitoring: the host serves Prometheus metrics at /metrics instead (add an [admin] table)",
    );
    o.note_rest_of("queues", "sizes of the original's internal queues: nothing like them here");
    Ok(())
}

/// The guest's options, the same for the three roles.
fn guest_config(w: &mut TomlWriter, e: &Engines, p: &Plugins) {
    w.table(&["pipeline", "config"]);
    w.str("alarm-topic", &e.alarm_topic);
    w.str("notification-topic", &e.notification_topic);
    w.trailing("[kafka] notification_topic");
    w.str("retry-topic", &e.retry_topic);
    w.trailing("[kafka] notification_retry_topic");
    let periodic: Vec<String> = e.periodic.iter().map(|(period, topic)| format!("{period}:{topic}")).collect();
    w.str("periodic", &periodic.join(","));
    w.trailing("[kafka] periodic");
    w.str("enabled-types", &p.enabled.join(","));
    w.trailing("[notification_types] enabled");
    w.str("ttl-seconds", &e.ttl_seconds.max(0).to_string());
    w.trailing("[alarm_processor] ttl");
    w.str("max-attempts", &e.max_attempts.max(0).to_string());
    w.trailing("[retry_engine] max_attempts");
    if let Some(url) = &p.grafana_url {
        w.str("grafana-url", url);
        w.trailing("[email_notifier] grafana_url");
    }
    if let Some(url) = &p.pagerduty_url {
        w.str("pagerduty-url", url);
        w.trailing("[pagerduty_notifier] url");
    }
}

/// The start of a `[[pipeline]]`.
fn pipeline_head(w: &mut TomlWriter, name: &str, topic: &str, from: &str, e: &Engines) {
    w.blank();
    w.array_table(&["pipeline"]);
    w.str("name", name);
    w.str("module", "notification.wasm");
    w.trailing("the notification guest (guests/notification), relative to this file");
    w.strs("topics", &[topic.to_string()]);
    w.trailing(from);
    w.str("group_id", &e.group);
    w.trailing("[kafka] group: the original's, so its committed offsets carry over");
    w.str("dead_letter_topic", &format!("{topic}.dead-letter"));
}

fn write_pipelines(w: &mut TomlWriter, e: &Engines, p: &Plugins, db: &Database) {
    use database::{ALARM_ACTIONS, ALARM_STATE, NOTIFICATION_METHOD};
    pipeline_head(w, "notification", &e.alarm_topic, "[kafka] alarm_topic", e);
    w.int("concurrency", e.processors);
    w.trailing("[notification_processor] number");
    guest_config(w, e, p);
    for lookup in [ALARM_ACTIONS, ALARM_STATE, NOTIFICATION_METHOD] {
        db.write_lookup(w, lookup);
    }

    pipeline_head(w, "notification-retry", &e.retry_topic, "[kafka] notification_retry_topic", e);
    w.int("concurrency", 1);
    w.trailing("the original's retry engine is one process");
    w.int("delay_seconds", e.retry_interval);
    w.trailing("[retry_engine] interval");
    guest_config(w, e, p);
    db.write_lookup(w, NOTIFICATION_METHOD);

    for (period, topic) in &e.periodic {
        pipeline_head(w, &format!("notification-periodic-{period}"), topic, "[kafka] periodic", e);
        w.int("concurrency", 1);
        w.trailing("the original's periodic engine is one process per period");
        w.int("delay_seconds", i64::try_from(*period).unwrap_or(i64::MAX));
        w.trailing("the period");
        guest_config(w, e, p);
        db.write_lookup(w, ALARM_STATE);
        db.write_lookup(w, NOTIFICATION_METHOD);
    }
}

#[cfg(test)]
mod tests {
    use crate::config::HostConfig;
    use crate::import::{import, Kind};

    fn imported(text: &str) -> (HostConfig, String, Vec<String>) {
        crate::import::tests::imported(text, Kind::Notification)
    }

    #[test]
    fn an_empty_file_gets_the_originals_defaults() {
        let (config, toml, notes) = imported("");
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(config.kafka.bootstrap, "127.0.0.1:9092");
        let names: Vec<&str> = config.pipelines.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["notification", "notification-retry", "notification-periodic-60"], "{toml}");
        assert!(config.pipelines.iter().all(|p| p.group_id == "monasca-notification"));
        let [alarms, retry, periodic] = &config.pipelines[..] else { panic!("three pipelines") };
        assert_eq!((alarms.topics[0].as_str(), alarms.concurrency), ("alarm-state-transitions", 4));
        assert_eq!((retry.topics[0].as_str(), retry.delay_seconds), ("retry-notifications", 30));
        assert_eq!((periodic.topics[0].as_str(), periodic.delay_seconds), ("60-seconds-notifications", 60));
        assert_eq!(alarms.config["enabled-types"], "email,pagerduty,webhook");
        assert_eq!((alarms.config["ttl-seconds"].as_str(), alarms.config["max-attempts"].as_str()), ("14400", "5"));
        assert_eq!(alarms.lookups.len(), 3);
        assert_eq!(retry.lookups.keys().collect::<Vec<_>>(), ["notification_method"]);
        assert_eq!(periodic.lookups.keys().collect::<Vec<_>>(), ["alarm_state", "notification_method"]);
        let notifiers = config.notifiers.as_ref().expect("[notifiers]");
        assert_eq!((notifiers.timeout_ms, notifiers.ledger.database.as_deref()), (5000, Some("mon")));
        assert!(notifiers.email.is_none(), "no SMTP server in an empty file");
        assert!(toml.contains("email is enabled but [email_notifier] server is not set"), "{toml}");
    }

    #[test]
    fn periodic_topics_each_get_a_pipeline() {
        let (config, _, _) = imported("[kafka]\nperiodic = 60:p60,300:p300\n[retry_engine]\ninterval = 45\n");
        let names: Vec<&str> = config.pipelines.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["notification", "notification-retry", "notification-periodic-60", "notification-periodic-300"]
        );
        assert_eq!(config.pipelines[1].delay_seconds, 45);
        assert_eq!(config.pipelines[3].delay_seconds, 300);
        assert!(config.pipelines.iter().all(|p| p.config["periodic"] == "60:p60,300:p300"));
        let (config, _, _) = imported("[kafka]\nperiodic =\n");
        assert_eq!(config.pipelines.len(), 2);
    }

    #[test]
    fn values_the_original_refuses_are_refused() {
        for text in [
            "[retry_engine]\ninterval = 10\n",
            "[notification_processor]\nnumber = 0\n",
            "[kafka]\nperiodic = x:topic\n",
            "[kafka]\nnotification_retry_topic = alarm-state-transitions\n",
            "[database]\nrepo_driver = mongo\n",
        ] {
            assert!(import(text, Some(Kind::Notification), "n").is_err(), "{text}");
        }
    }

    #[test]
    fn postgresql_lookups_use_its_placeholders() {
        let (config, _, _) = imported("[database]\nrepo_driver = postgresql\n");
        let query = &config.pipelines[0].lookups["alarm_actions"].query;
        assert!(query.ends_with("aa.alarm_definition_id = $1 AND aa.alarm_state::text = $2"), "{query}");
        assert!(matches!(config.databases["mon"], crate::config::DatabaseConfig::Postgresql { .. }));
    }

    #[test]
    fn keystone_statsd_and_zookeeper_become_comments() {
        let text = "[keystone]\nauth_required = true\nauth_url = http://ks/v3\n[statsd]\nport = 8125\n\
                    [zookeeper]\nurl = zk:2181\n[alarm_processor]\nttl = 0\n";
        let (config, _, notes) = imported(text);
        assert_eq!(config.pipelines[0].config["ttl-seconds"], "0");
        let keys: Vec<&str> = notes.iter().map(|n| n.split(" = ").next().unwrap_or_default()).collect();
        assert_eq!(
            keys,
            [
                "[keystone] auth_required",
                "[keystone] auth_url",
                "[statsd] port",
                "[zookeeper] url",
                "[alarm_processor] ttl"
            ]
        );
    }
}
