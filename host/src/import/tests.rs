//! The shipped sample files (`tests/fixtures/import/`) imported end to end:
//! the output loads with the host's own loader and carries the operator's
//! values; what cannot be mapped is a comment.

use super::*;
use crate::config::{DatabaseConfig, SinkConfig};
use std::path::Path;

/// Import `text` as `kind` and parse the result: the configuration, the
/// TOML text and the unmapped notes (for the kinds' own tests).
pub(super) fn imported(text: &str, kind: Kind) -> (HostConfig, String, Vec<String>) {
    let out = import(text, Some(kind), "original.conf").unwrap_or_else(|e| panic!("{e}"));
    let config = HostConfig::parse(&out.toml, "generated").unwrap_or_else(|e| panic!("{e}\n{}", out.toml));
    (config, out.toml, out.unmapped.iter().map(|n| n.to_string()).collect())
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/import").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Import a fixture (its kind guessed) and load the result as `run` would parse it.
fn load(name: &str) -> (Imported, HostConfig) {
    let imported = import(&fixture(name), None, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    let config = HostConfig::parse(&imported.toml, name).unwrap_or_else(|e| panic!("{e}\n{}", imported.toml));
    config.validate(name, false).unwrap_or_else(|e| panic!("{e}\n{}", imported.toml));
    (imported, config)
}

fn secret(secret: &Option<crate::config::Secret>) -> Option<&str> {
    secret.as_ref().map(|s| s.0.as_str())
}

#[test]
fn the_persister_sample_becomes_an_equivalent_host_configuration() {
    let (imported, config) = load("persister.conf");
    assert_eq!(imported.kind, Kind::Persister);
    assert_eq!(config.kafka.bootstrap, "192.168.10.6:9092,192.168.10.7:9092");
    let [metrics, alarms] = &config.pipelines[..] else { panic!("two pipelines:\n{}", imported.toml) };
    assert_eq!((metrics.topics.as_slice(), metrics.group_id.as_str()), (&["metrics".to_string()][..], "1_metrics"));
    assert_eq!((metrics.concurrency, metrics.batch.max_messages, metrics.batch.max_wait_ms), (4, 30_000, 15_000));
    assert_eq!(metrics.config["metrics-topic"], "metrics");
    assert_eq!(
        (alarms.topics[0].as_str(), alarms.group_id.as_str()),
        ("alarm-state-transitions", "1_alarm-state-transitions")
    );
    assert_eq!((alarms.concurrency, alarms.batch.max_messages, alarms.batch.max_wait_ms), (2, 1, 15_000));
    assert!(config.pipelines.iter().all(|p| p.config["sink"] == "tsdb"));
    let Some(SinkConfig::Influxdb(influx)) = config.sinks.get("tsdb") else { panic!("an InfluxDB sink") };
    assert_eq!(influx.url, "http://192.168.10.5:8086");
    assert_eq!((influx.database.as_str(), influx.db_per_tenant), ("mon", true));
    assert_eq!((influx.default_retention_hours, influx.batch_points), (2160, 5000));
    assert_eq!((influx.user.as_deref(), secret(&influx.password)), (Some("mon_persister"), Some("s3cr3t-p@ss")));
    assert!(imported.toml.contains("holds secrets copied from persister.conf (the InfluxDB password)"));

    let noted: Vec<String> = imported.unmapped.iter().map(|n| format!("[{}] {}", n.section, n.key)).collect();
    assert_eq!(
        noted,
        [
            "[DEFAULT] debug",
            "[DEFAULT] log_config_append",
            "[DEFAULT] default_log_levels",
            "[repositories] ignore_parse_point_error",
            "[zookeeper] uri",
            "[zookeeper] partition_interval_recheck_seconds",
            "[kafka] fetch_size_bytes",
            "[kafka] legacy_kafka_client_enabled",
            "[kafka_metrics] zookeeper_path",
            "[kafka_events] enabled",
        ]
    );
}

#[test]
fn the_notification_sample_becomes_an_equivalent_host_configuration() {
    let (imported, config) = load("notification.conf");
    assert_eq!(imported.kind, Kind::Notification);
    assert_eq!(config.kafka.bootstrap, "192.168.10.6:9092,192.168.10.7:9092");
    let names: Vec<&str> = config.pipelines.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["notification", "notification-retry", "notification-periodic-60", "notification-periodic-300"]);
    let topics: Vec<&str> = config.pipelines.iter().map(|p| p.topics[0].as_str()).collect();
    assert_eq!(
        topics,
        ["alarm-state-transitions", "retry-notifications", "60-seconds-notifications", "300-seconds-notifications"]
    );
    assert!(config.pipelines.iter().all(|p| p.group_id == "monasca-notification"));
    let delays: Vec<u64> = config.pipelines.iter().map(|p| p.delay_seconds).collect();
    assert_eq!(delays, [0, 60, 60, 300]);
    assert_eq!(config.pipelines[0].concurrency, 4);
    for p in &config.pipelines {
        assert_eq!(p.config["enabled-types"], "email,webhook,pagerduty,slack,jira");
        assert_eq!(p.config["max-attempts"], "3");
        assert_eq!(p.config["grafana-url"], "http://grafana.example.org:3000");
        assert_eq!(p.config["pagerduty-url"], "https://events.pagerduty.com/generic/2010-04-15/create_event.json");
        assert_eq!(p.config["periodic"], "60:60-seconds-notifications,300:300-seconds-notifications");
    }

    let Some(DatabaseConfig::Mysql { url }) = config.databases.get("mon") else { panic!("a MySQL database") };
    assert_eq!(url.0, "mysql://notification:n0t1f1c%40t10n@192.168.10.4:3306/mon");
    let alarm_actions = &config.pipelines[0].lookups["alarm_actions"];
    assert_eq!(alarm_actions.database, "mon");
    assert_eq!(
        alarm_actions.query,
        "SELECT id, type, name, address, period FROM alarm_action AS aa JOIN notification_method AS nm \
         ON aa.action_id = nm.id WHERE aa.alarm_definition_id = ? AND aa.alarm_state = ?"
    );
    assert_eq!(config.pipelines[0].lookups["alarm_state"].ttl_seconds, 0);
    assert_eq!(
        config.pipelines[1].lookups["notification_method"].query,
        database::query(database::Dialect::Mysql, "notification_method")
    );

    let notifiers = config.notifiers.as_ref().expect("[notifiers]");
    assert_eq!(notifiers.timeout_ms, 15_000, "the largest plugin timeout");
    assert_eq!(notifiers.proxy.as_deref(), Some("http://proxy.example.org:3128"));
    assert_eq!(notifiers.ca_file.as_deref(), Some(Path::new("/etc/ssl/certs/ca-certificates.crt")));
    assert!(!notifiers.insecure);
    let email = notifiers.email.as_ref().expect("[notifiers.email]");
    assert_eq!(
        (email.server.as_str(), email.port, email.from_addr.as_str()),
        ("smtp.example.org", 587, "monasca@example.org")
    );
    assert_eq!((email.user.as_deref(), secret(&email.password)), (Some("monasca"), Some("smtp-s3cret")));
    assert!(notifiers.jira.is_none(), "Jira needs a url the file does not hold");
    assert!(imported.toml.contains("# user = \"monasca-bot\""), "{}", imported.toml);
    assert_eq!(notifiers.ledger.database.as_deref(), Some("mon"));

    let noted: Vec<String> = imported.unmapped.iter().map(|n| format!("[{}] {}", n.section, n.key)).collect();
    for expected in [
        "[DEFAULT] log_config_append",
        "[kafka] max_offset_lag",
        "[notification_types] enabled",
        "[jira_notifier] user",
        "[jira_notifier] password",
        "[jira_notifier] custom_formatter",
        "[hipchat_notifier] timeout",
        "[alarm_processor] number",
        "[zookeeper] periodic_path",
        "[statsd] enable",
        "[queues] alarms_size",
    ] {
        assert!(noted.iter().any(|n| n == expected), "{expected} not noted: {noted:?}");
    }
    assert!(!noted.iter().any(|n| n.starts_with("[mysql]") || n.starts_with("[email_notifier]")), "{noted:?}");
    assert!(!noted.iter().any(|n| n == "[slack_notifier] proxy" || n == "[jira_notifier] proxy"), "{noted:?}");
}

#[test]
fn an_unmappable_option_becomes_a_comment_with_its_reason() {
    let (imported, _) = load("notification.conf");
    assert!(
        imported.toml.contains(
            "# not mapped: [zookeeper] url = 192.168.10.4:2181 — not needed: Kafka consumer groups assign the \
             partitions and keep the offsets\n"
        ),
        "{}",
        imported.toml
    );
    assert!(imported.toml.contains(
        "# not mapped: [notification_types] enabled = email,webhook,pagerduty,slack,jira,hipchat — left out"
    ));
    let (imported, _) = load("persister.conf");
    assert!(imported
        .toml
        .contains("# not mapped: [DEFAULT] default_log_levels = kafka=WARN,\\nmonasca_common=INFO — oslo.log"));
    let header = imported.toml.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("# monasca-wasm host configuration, generated by `monasca-wasm import-config`"),
        "{header}"
    );
}

#[test]
fn the_kind_is_guessed_from_the_sections() {
    let guess = |text: &str| guess_kind(&Ini::parse(text).unwrap());
    assert_eq!(guess(&fixture("persister.conf")), Some(Kind::Persister));
    assert_eq!(guess(&fixture("notification.conf")), Some(Kind::Notification));
    assert_eq!(guess("[kafka]\nnum_processors = 2\n"), Some(Kind::Persister));
    assert_eq!(guess("[kafka]\nurl = k:9092\n"), Some(Kind::Notification));
    assert_eq!(guess("[DEFAULT]\ndebug = true\n"), None);
    assert!(matches!(import("[DEFAULT]\ndebug = true\n", None, "x.conf"), Err(ImportError::UnknownKind)));
    let error = import("[kafka]\nnot an option line\n", None, "x.conf").unwrap_err().to_string();
    assert!(error.starts_with("line 2: "), "{error}");
}
