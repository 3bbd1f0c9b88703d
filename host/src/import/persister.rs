//! `persister.conf` (monasca-persister 9.0.0) → host configuration: the
//! Kafka brokers, one pipeline per enabled stream (`[kafka_metrics]`,
//! `[kafka_alarm_history]`) with its topic, consumer group, processes and
//! batching, and the InfluxDB sink from `[influxdb]` (`ssl` makes its URL
//! `https`; `verify_ssl = False`, the original's default, is `tls_insecure`).
//! An option left out of the file gets the original's default (written out
//! where ours differs).
//!
//! The original's `[kafka]` section holds the options every stream shares
//! (`max_wait_time_seconds`, `num_processors`, ...): a stream's own section
//! overrides them. Its brokers are each stream's `uri` (there is no
//! `[kafka] uri`).

use super::emit::TomlWriter;
use super::options::Options;
use super::{ImportError, Outcome};

/// The original's shared Kafka options.
const COMMON: &str = "kafka";

/// The sink the pipelines store to (the persister guest's default `sink`).
const SINK: &str = "tsdb";

/// What one stream of the original defaults to.
struct Spec {
    section: &'static str,
    pipeline: &'static str,
    enabled: bool,
    group_id: &'static str,
    topic: &'static str,
    batch_size: i64,
    guest_topic_key: &'static str,
}

const METRICS: Spec = Spec {
    section: "kafka_metrics",
    pipeline: "metrics",
    enabled: true,
    group_id: "1_metrics",
    topic: "metrics",
    batch_size: 20_000,
    guest_topic_key: "metrics-topic",
};

const ALARM_HISTORY: Spec = Spec {
    section: "kafka_alarm_history",
    pipeline: "alarm-history",
    enabled: true,
    group_id: "1_alarm-state-transitions",
    topic: "alarm-state-transitions",
    batch_size: 1,
    guest_topic_key: "alarm-topic",
};

/// A stream the original runs, as read from the file.
struct Stream {
    spec: &'static Spec,
    uri: Vec<String>,
    group_id: String,
    topic: String,
    batch_size: i64,
    max_wait_seconds: i64,
    processors: i64,
}

/// Read a persister.conf and write its host configuration.
pub(super) fn import(o: &mut Options, w: &mut TomlWriter) -> Result<Outcome, ImportError> {
    let mut outcome = Outcome::default();
    let drivers = repositories(o)?;
    let mut streams = Vec::new();
    for spec in [&METRICS, &ALARM_HISTORY] {
        if let Some(stream) = stream(o, spec)? {
            streams.push(stream);
        }
    }
    events(o)?;
    let Some(first) = streams.first() else {
        return Err(ImportError::Unusable(
            "neither [kafka_metrics] nor [kafka_alarm_history] is enabled (with num_processors above 0): \
             the original persists nothing"
                .to_string(),
        ));
    };
    let brokers = first.uri.clone();
    let first_section = first.spec.section;
    streams.retain(|s| {
        let same = s.uri == brokers;
        if !same {
            o.note(
                s.spec.section,
                "uri",
                format!(
                    "one host reads one Kafka cluster ([kafka] bootstrap is [{first_section}] uri): this stream's \
                     pipeline is left out; run it on a second host whose [kafka] bootstrap is this uri"
                ),
            );
        }
        same
    });
    common_notes(o);
    o.note_rest_of("zookeeper", "not needed: Kafka consumer groups assign the partitions here");

    w.table(&["kafka"]);
    w.str("bootstrap", &brokers.join(","));
    w.trailing(&format!("[{first_section}] uri"));
    w.blank();
    influxdb(o, w, &streams, &drivers, &mut outcome)?;
    for stream in &streams {
        w.blank();
        pipeline(w, stream);
    }
    Ok(outcome)
}

/// `[repositories]`: only the InfluxDB drivers have an equivalent. Returns
/// a comment for the sink when a driver is another.
fn repositories(o: &mut Options) -> Result<Vec<String>, ImportError> {
    const SECTION: &str = "repositories";
    let mut others = Vec::new();
    let drivers = [
        ("metrics_driver", "monasca_persister.repositories.influxdb.metrics_repository:MetricInfluxdbRepository"),
        (
            "alarm_state_history_driver",
            "monasca_persister.repositories.influxdb.alarm_state_history_repository:AlarmStateHistInfluxdbRepository",
        ),
    ];
    for (key, default) in drivers {
        let driver = o.string(SECTION, key, default)?;
        if !driver.to_ascii_lowercase().contains("influxdb") {
            o.note(
                SECTION,
                key,
                "only InfluxDB is supported (not Cassandra): the points go to the InfluxDB sink [sinks.tsdb]",
            );
            others.push(format!("[repositories] {key} is {driver}: not supported, so points go to InfluxDB here"));
        }
    }
    o.note(SECTION, "events_driver", "the events persister (Elasticsearch) is not supported");
    let ignore = o.boolean(SECTION, "ignore_parse_point_error", false)?;
    o.note(
        SECTION,
        "ignore_parse_point_error",
        if ignore {
            "not needed: points InfluxDB cannot parse are dead-lettered with its reason, the rest of the batch is stored"
        } else {
            "points InfluxDB cannot parse are dead-lettered with its reason here, the rest of the batch stored \
             (the original stopped on them)"
        },
    );
    Ok(others)
}

/// A stream's shared option: its own section, else `[kafka]`, else `default`.
fn common_int(o: &mut Options, section: &str, key: &str, default: i64) -> Result<i64, ImportError> {
    if o.present(section, key) {
        o.touch(COMMON, key);
        o.int(section, key, default)
    } else {
        o.int(COMMON, key, default)
    }
}

/// One stream, or `None` when the original would not run it.
fn stream(o: &mut Options, spec: &'static Spec) -> Result<Option<Stream>, ImportError> {
    let section = spec.section;
    let enabled = o.boolean(section, "enabled", spec.enabled)?;
    if !enabled {
        o.note_rest_of(section, "the stream is disabled (enabled = False)");
        return Ok(None);
    }
    let processors = common_int(o, section, "num_processors", 1)?;
    if processors < 1 {
        let why = "num_processors below 1: the original starts no process for this stream, so there is no pipeline";
        let from = if o.present(section, "num_processors") { section } else { COMMON };
        o.note(from, "num_processors", why);
        o.note_rest_of(section, "the stream does not run (num_processors below 1)");
        return Ok(None);
    }
    let stream = Stream {
        spec,
        uri: o.list(section, "uri", &["127.0.0.1:9092"])?,
        group_id: o.string(section, "group_id", spec.group_id)?,
        topic: o.string(section, "topic", spec.topic)?,
        batch_size: o.int(section, "batch_size", spec.batch_size)?,
        max_wait_seconds: common_int(o, section, "max_wait_time_seconds", 30)?,
        processors,
    };
    if stream.uri.is_empty() {
        return Err(o.invalid(section, "uri", "names no broker"));
    }
    for (key, value) in [("topic", &stream.topic), ("group_id", &stream.group_id)] {
        if value.is_empty() {
            return Err(o.invalid(section, key, "is empty"));
        }
    }
    o.note(section, "zookeeper_path", "not needed: Kafka consumer groups assign the partitions here");
    for (key, why) in COMMON_UNMAPPED {
        o.note(section, key, *why);
    }
    Ok(Some(stream))
}

/// The shared options that have no equivalent, and why.
const COMMON_UNMAPPED: &[(&str, &str)] = &[
    ("consumer_id", "not used by the original's Kafka consumer either; the host names its own clients"),
    ("client_id", "not used by the original's Kafka consumer either; the host names its own clients"),
    (
        "fetch_size_bytes",
        "a size of the legacy kafka-python client; librdkafka sizes its fetches (`fetch.max.bytes` in [kafka.properties])",
    ),
    (
        "buffer_size",
        "a size of the legacy kafka-python client; librdkafka sizes its fetches (`fetch.max.bytes` in [kafka.properties])",
    ),
    (
        "max_buffer_size",
        "a size of the legacy kafka-python client; librdkafka sizes its fetches (`fetch.max.bytes` in [kafka.properties])",
    ),
    (
        "legacy_kafka_client_enabled",
        "the host uses librdkafka with Kafka consumer groups: the legacy client and its ZooKeeper are not needed",
    ),
];

/// `[kafka]`'s options without an equivalent (the streams read the others).
fn common_notes(o: &mut Options) {
    for (key, why) in COMMON_UNMAPPED {
        o.note(COMMON, key, *why);
    }
    o.note(
        COMMON,
        "uri",
        "not an option of monasca-persister 9.0.0 (it ignores it): the brokers are each stream's uri \
         ([kafka_metrics] uri, [kafka_alarm_history] uri)",
    );
}

/// `[kafka_events]`, `[elasticsearch]`, `[cassandra]`: not supported.
fn events(o: &mut Options) -> Result<(), ImportError> {
    let enabled = o.boolean("kafka_events", "enabled", false)?;
    let why = if enabled {
        "the events persister (Elasticsearch) is not supported"
    } else {
        "the events persister is disabled (and not supported here)"
    };
    o.note("kafka_events", "enabled", why);
    o.note_rest_of("kafka_events", why);
    o.note_rest_of("elasticsearch", "the events persister (Elasticsearch) is not supported");
    o.note_rest_of("cassandra", "Cassandra is not supported: the points go to InfluxDB");
    Ok(())
}

/// `[influxdb]` → `[sinks.tsdb]`.
fn influxdb(
    o: &mut Options,
    w: &mut TomlWriter,
    streams: &[Stream],
    drivers: &[String],
    outcome: &mut Outcome,
) -> Result<(), ImportError> {
    const S: &str = "influxdb";
    let address = o.opt_string(S, "ip_address")?;
    let port = o.port(S, "port", 8086)?;
    let ssl = o.boolean(S, "ssl", false)?;
    let verify = o.boolean(S, "verify_ssl", false)?;
    let user = o.string(S, "user", "mon_persister")?;
    let password = o.opt_string(S, "password")?;
    let database = o.string(S, "database_name", "mon")?;
    let db_per_tenant = o.boolean(S, "db_per_tenant", false)?;
    let retention = o.int(S, "default_retention_hours", 0)?;
    let batch_size = o.int(S, "batch_size", 10_000)?;
    if database.is_empty() {
        return Err(o.invalid(S, "database_name", "is empty"));
    }
    if !ssl {
        o.note(S, "verify_ssl", "has no effect without ssl = True (the original ignores it too)");
    }

    w.table(&["sinks", SINK]);
    for comment in drivers {
        w.comment(comment);
    }
    w.str("type", "influxdb");
    let host = match &address {
        Some(a) if a.contains(':') && !a.starts_with('[') => format!("[{a}]"),
        Some(a) => a.clone(),
        None => "127.0.0.1".to_string(),
    };
    let scheme = if ssl { "https" } else { "http" };
    w.str("url", &format!("{scheme}://{host}:{port}"));
    w.trailing(match address {
        Some(_) => "[influxdb] ip_address, port; ssl = True makes it https",
        None => "[influxdb] ip_address is not set (the original could not connect): 127.0.0.1 assumed",
    });
    if ssl && !verify {
        w.bool("tls_insecure", true);
        w.trailing("[influxdb] verify_ssl = False (its default): the original did not check the certificate");
    }
    w.str("database", &database);
    w.trailing("[influxdb] database_name");
    w.bool("db_per_tenant", db_per_tenant);
    w.trailing("[influxdb] db_per_tenant: <database>_<tenant>");
    w.int("default_retention_hours", retention.clamp(0, u32::MAX.into()));
    w.trailing("[influxdb] default_retention_hours: for the databases the sink creates");
    if batch_size > 0 {
        w.int("batch_points", batch_size);
        w.trailing("[influxdb] batch_size: points per request (our default is 5000)");
    } else {
        let whole = streams.iter().map(|s| s.batch_size).max().unwrap_or(1).max(1);
        w.int("batch_points", whole);
        w.trailing("[influxdb] batch_size is 0: the original wrote each batch in one request");
    }
    w.str("user", &user);
    w.trailing("[influxdb] user; MONASCA_WASM_INFLUXDB_USER wins");
    if let Some(password) = password {
        w.str("password", &password);
        w.trailing("[influxdb] password; MONASCA_WASM_INFLUXDB_PASSWORD wins");
        outcome.secrets.push("the InfluxDB password");
    }
    Ok(())
}

/// One `[[pipeline]]` for a stream.
fn pipeline(w: &mut TomlWriter, s: &Stream) {
    let section = s.spec.section;
    w.array_table(&["pipeline"]);
    w.str("name", s.spec.pipeline);
    w.str("module", "persister.wasm");
    w.trailing("the persister guest (guests/persister), relative to this file");
    w.strs("topics", std::slice::from_ref(&s.topic));
    w.trailing(&format!("[{section}] topic"));
    w.str("group_id", &s.group_id);
    w.trailing(&format!("[{section}] group_id: the original's group, so its committed offsets carry over"));
    w.str("dead_letter_topic", &format!("{}.dead-letter", s.topic));
    w.trailing("new here: messages that cannot be stored (the original logged and dropped them)");
    w.int("concurrency", s.processors);
    w.trailing(&format!("[{section}] num_processors: partitions processed at once (our default is 2)"));
    w.table(&["pipeline", "batch"]);
    w.int("max_messages", s.batch_size.max(1));
    w.trailing(&format!("[{section}] batch_size (our default is 1000)"));
    w.int("max_wait_ms", s.max_wait_seconds.max(0).saturating_mul(1000));
    w.trailing(&format!(
        "[{section}] max_wait_time_seconds (our default is 0: a batch is cut as soon as the partition's queue is empty)"
    ));
    w.table(&["pipeline", "config"]);
    w.str("sink", SINK);
    w.str(s.spec.guest_topic_key, &s.topic);
}

#[cfg(test)]
mod tests {
    use crate::config::{HostConfig, SinkConfig};
    use crate::import::{import, Kind};

    fn imported(text: &str) -> (HostConfig, String, Vec<String>) {
        crate::import::tests::imported(text, Kind::Persister)
    }

    #[test]
    fn an_empty_file_gets_the_originals_defaults() {
        let (config, toml, notes) = imported("");
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(config.kafka.bootstrap, "127.0.0.1:9092");
        let [metrics, alarms] = &config.pipelines[..] else { panic!("two pipelines: {toml}") };
        assert_eq!((metrics.topics[0].as_str(), metrics.group_id.as_str()), ("metrics", "1_metrics"));
        assert_eq!((metrics.batch.max_messages, metrics.batch.max_wait_ms, metrics.concurrency), (20_000, 30_000, 1));
        assert_eq!(alarms.group_id, "1_alarm-state-transitions");
        assert_eq!((alarms.batch.max_messages, alarms.config["alarm-topic"].as_str()), (1, "alarm-state-transitions"));
        let Some(SinkConfig::Influxdb(sink)) = config.sinks.get("tsdb") else { panic!("an InfluxDB sink: {toml}") };
        assert_eq!(sink.url, "http://127.0.0.1:8086");
        assert_eq!(
            (sink.database.as_str(), sink.batch_points, sink.user.as_deref()),
            ("mon", 10_000, Some("mon_persister"))
        );
        assert!(toml.contains("ip_address is not set"), "{toml}");
    }

    #[test]
    fn shared_kafka_options_apply_unless_a_stream_overrides_them() {
        let text = "[kafka]\nmax_wait_time_seconds = 5\nnum_processors = 3\n\
                    [kafka_alarm_history]\nmax_wait_time_seconds = 1\nuri = k1:9092,k2:9092\n\
                    [kafka_metrics]\nuri = k1:9092, k2:9092\n";
        let (config, _, notes) = imported(text);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(config.kafka.bootstrap, "k1:9092,k2:9092");
        assert_eq!(config.pipelines[0].batch.max_wait_ms, 5000);
        assert_eq!(config.pipelines[1].batch.max_wait_ms, 1000);
        assert!(config.pipelines.iter().all(|p| p.concurrency == 3));
    }

    #[test]
    fn disabled_streams_and_other_clusters_are_left_out() {
        let (config, _, notes) = imported("[kafka_alarm_history]\nenabled = false\ntopic = x\n");
        assert_eq!(config.pipelines.len(), 1);
        assert_eq!(notes, ["[kafka_alarm_history] topic = x — the stream is disabled (enabled = False)"]);
        let (config, _, notes) = imported("[kafka_alarm_history]\nuri = other:9092\n");
        assert_eq!(config.pipelines.len(), 1);
        assert!(notes[0].starts_with("[kafka_alarm_history] uri = other:9092 — one host reads one Kafka cluster"));
        let error = import("[kafka_metrics]\nenabled = no\n[kafka_alarm_history]\nnum_processors = 0\n", None, "p")
            .unwrap_err()
            .to_string();
        assert!(error.contains("persists nothing"), "{error}");
    }

    #[test]
    fn ssl_becomes_https_and_an_unchecked_certificate_says_so() {
        let sink = |text: &str| {
            let (config, toml, _) = imported(text);
            match config.sinks.get("tsdb") {
                Some(SinkConfig::Influxdb(sink)) => sink.clone(),
                _ => panic!("an InfluxDB sink: {toml}"),
            }
        };
        let unchecked = sink("[influxdb]\nip_address = influx.example.org\nssl = true\n");
        assert_eq!((unchecked.url.as_str(), unchecked.tls_insecure), ("https://influx.example.org:8086", true));
        let checked = sink("[influxdb]\nssl = true\nverify_ssl = true\nip_address = ::1\n");
        assert_eq!((checked.url.as_str(), checked.tls_insecure), ("https://[::1]:8086", false));
        let plain = sink("[influxdb]\nip_address = influx.example.org\n");
        assert_eq!((plain.url.as_str(), plain.tls_insecure), ("http://influx.example.org:8086", false));
    }

    #[test]
    fn other_drivers_and_options_become_comments() {
        let text = "[repositories]\nmetrics_driver = monasca_persister.repositories.cassandra.metrics_repository:\
                    MetricCassandraRepository\n[zookeeper]\nuri = zk:2181\n[kafka_metrics]\nlegacy_kafka_client_enabled = true\n\
                    [influxdb]\nverify_ssl = true\n[DEFAULT]\ndebug = true\n";
        let (_, toml, notes) = imported(text);
        assert!(toml.contains("# [repositories] metrics_driver is monasca_persister.repositories.cassandra"), "{toml}");
        let keys: Vec<&str> = notes.iter().map(|n| n.split(" = ").next().unwrap_or_default()).collect();
        assert_eq!(
            keys,
            [
                "[repositories] metrics_driver",
                "[zookeeper] uri",
                "[kafka_metrics] legacy_kafka_client_enabled",
                "[influxdb] verify_ssl",
                "[DEFAULT] debug"
            ]
        );
    }
}
