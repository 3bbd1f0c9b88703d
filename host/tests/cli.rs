//! The `monasca-wasm` binary end to end: `test`, `inspect`, `new`, `import-config` and
//! `validate`, with their output formats and exit codes.

use monasca_test_programs::{
    fixture, kafka, unique, HOSTILE, KEYED_COUNTER, METRICS_API, NOTIFICATION, PERSISTER, WRONG_VERSION,
};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn monasca_wasm(args: &[&str]) -> Output {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-cache");
    Command::new(env!("CARGO_BIN_EXE_monasca-wasm"))
        .args(args)
        .arg("--cache-dir")
        .arg(&cache)
        .output()
        .expect("the binary runs")
}

fn stdout_json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8(output.stdout.clone())
        .expect("stdout is UTF-8")
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}")))
        .collect()
}

fn assert_clean_failure(output: &Output) -> String {
    assert!(!output.status.success(), "expected failure");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "{stderr}");
    stderr
}

#[test]
fn test_prints_one_json_effect_per_message_and_a_summary() {
    let input = fixture("metrics.jsonl");
    let output =
        monasca_wasm(&["test", "--module", PERSISTER, "--input", input.to_str().unwrap(), "--topic", "metrics"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let effects = stdout_json_lines(&output);
    let expected = std::fs::read_to_string(fixture("metrics.expected.lp")).unwrap();
    let expected: Vec<&str> = expected.lines().collect();
    assert_eq!(effects.len(), expected.len());
    for (i, effect) in effects.iter().enumerate() {
        assert_eq!(effect["kind"], "store");
        assert_eq!(effect["origin"]["offset"], i as i64);
        assert_eq!(effect["line"], expected[i], "line {}", i + 1);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("27 messages") && stderr.contains("store 27"), "{stderr}");
}

#[test]
fn invalid_lines_are_reject_effects_not_errors() {
    let input = fixture("metrics-invalid.jsonl");
    let output = monasca_wasm(&["test", "-m", PERSISTER, "-i", input.to_str().unwrap(), "-t", "metrics"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let effects = stdout_json_lines(&output);
    assert_eq!(effects.len(), 13);
    for effect in &effects {
        assert_eq!(effect["kind"], "reject");
        assert!(!effect["reason"].as_str().unwrap_or_default().is_empty(), "{effect}");
    }
}

#[test]
fn config_options_reach_the_guest() {
    let input = fixture("metrics.jsonl");
    let output = monasca_wasm(&["test", "-m", PERSISTER, "-i", input.to_str().unwrap(), "--config", "sink=influx-eu"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout_json_lines(&output).iter().all(|e| e["sink"] == "influx-eu"));

    let output =
        monasca_wasm(&["test", "-m", PERSISTER, "-i", input.to_str().unwrap(), "--config", "max-message-bytes=x"]);
    let stderr = assert_clean_failure(&output);
    assert!(stderr.contains("max-message-bytes"), "{stderr}");
}

#[test]
fn errors_are_messages_with_a_non_zero_exit() {
    let input = fixture("metrics.jsonl");
    let missing = monasca_wasm(&["test", "-m", "/nonexistent.wasm", "-i", input.to_str().unwrap()]);
    assert!(assert_clean_failure(&missing).contains("/nonexistent.wasm"));

    let wrong = monasca_wasm(&["test", "-m", WRONG_VERSION, "-i", input.to_str().unwrap()]);
    assert!(assert_clean_failure(&wrong).contains("9.0.0"));

    let no_input = monasca_wasm(&["test", "-m", PERSISTER, "-i", "/nonexistent.jsonl"]);
    assert!(assert_clean_failure(&no_input).contains("/nonexistent.jsonl"));
}

#[test]
fn inspect_shows_world_digest_and_compatibility() {
    let output = monasca_wasm(&["inspect", PERSISTER]);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("package:    monasca:processor@0.4.1"), "{text}");
    assert!(text.contains("world:      stateless"), "{text}");
    assert!(text.contains("monasca:processor/processor@0.4.1 (init, process)"), "{text}");
    assert!(text.contains("compatible: yes"), "{text}");
    let size = std::fs::metadata(PERSISTER).unwrap().len();
    assert!(text.contains(&format!("size:       {size} bytes")), "{text}");

    let output = monasca_wasm(&["inspect", WRONG_VERSION, "--json"]);
    assert!(output.status.success());
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["compatible"], false);
    assert_eq!(report["package"], "monasca:processor@9.0.0");
    assert!(report["reason"].as_str().unwrap().contains("major"));
    assert_eq!(report["sha256"].as_str().unwrap().len(), 64);
}

/// A component that claims the processor world: `init` and `process` as
/// functions of no arguments, and `extra_import` among its imports.
fn pretender(extra_import: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(component
             {extra_import}
             (core module $m (func (export "f")))
             (core instance $i (instantiate $m))
             (func $f (canon lift (core func $i "f")))
             (instance $p (export "init" (func $f)) (export "process" (func $f)))
             (export "monasca:processor/processor@0.4.0" (instance $p)))"#
    ))
    .expect("valid component text")
}

#[test]
fn inspect_refuses_what_run_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("wrong-types", pretender(""), "`init`"),
        (
            "extra-import",
            pretender(r#"(import "wasi:http/outgoing-handler@0.2.0" (instance (export "handle" (func))))"#),
            "wasi:http/outgoing-handler",
        ),
    ];
    for (name, bytes, says) in cases {
        let path = dir.path().join(format!("{name}.wasm"));
        std::fs::write(&path, bytes).unwrap();
        let output = monasca_wasm(&["inspect", path.to_str().unwrap(), "--json"]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["compatible"], false, "{name}: {report}");
        let reason = report["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(says), "{name}: the reason names the cause: {reason}");
        // And `test`, which runs it as `run` does, refuses it too.
        let input = dir.path().join("input.jsonl");
        std::fs::write(&input, "{}\n").unwrap();
        let tested = monasca_wasm(&["test", "-m", path.to_str().unwrap(), "-i", input.to_str().unwrap()]);
        assert!(!tested.status.success(), "{name}: `test` ran what inspect refuses");
    }
}

#[test]
fn guest_log_lines_reach_the_host_log_with_the_module_name() {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-cache");
    let input = fixture("metrics.jsonl");
    let output = Command::new(env!("CARGO_BIN_EXE_monasca-wasm"))
        .args(["test", "-m", HOSTILE, "-i", input.to_str().unwrap(), "-c", "mode=probe", "--pipeline", "probe-pipe"])
        .arg("--cache-dir")
        .arg(&cache)
        .env("RUST_LOG", "info")
        .output()
        .expect("the binary runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("hostile guest probed the sandbox"))
        .unwrap_or_else(|| panic!("guest log line missing from stderr:\n{stderr}"));
    assert!(line.contains("WARN") && line.contains("module=hostile") && line.contains("pipeline=probe-pipe"), "{line}");
}

#[test]
fn test_keeps_a_keyed_guests_state_across_batches_and_ticks_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("counts.txt");
    std::fs::write(&input, "a\t2\nb\t1\na\t3\nb\tx\na\t1\n").unwrap();
    let output = monasca_wasm(&[
        "test",
        "-m",
        KEYED_COUNTER,
        "-i",
        input.to_str().unwrap(),
        "--key-delimiter",
        "\t",
        "--batch-size",
        "2",
        "--tick",
        "--print-state",
        "-c",
        "count_ticks=true",
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let lines: Vec<Value> =
        String::from_utf8_lossy(&output.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let produced: Vec<&str> =
        lines.iter().filter(|l| l["kind"] == "produce").map(|l| l["value"].as_str().unwrap()).collect();
    assert_eq!(produced, ["a 2 1", "b 1 1", "a 5 2", "a 6 3"], "totals carry across batches of 2");
    assert_eq!(lines.iter().filter(|l| l["kind"] == "reject").count(), 1);
    let state: Vec<&str> = lines.iter().filter(|l| l["kind"] == "state").map(|l| l["key"].as_str().unwrap()).collect();
    assert_eq!(state, ["a", "b", "~ticks"], "the tick ran on the same state");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("partition state holds 3 keys"), "{stderr}");
}

#[test]
fn test_runs_an_http_api_guest_with_request_headers_and_prints_its_answers() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("requests.jsonl");
    std::fs::write(
        &input,
        "{\"name\": \"cpu\", \"value\": 1, \"timestamp\": 1}\n{\"name\": \"a=b\", \"value\": 1, \"timestamp\": 1}\n",
    )
    .unwrap();
    let headers = [
        ":method=POST",
        ":path=/v2.0/metrics",
        ":project-id=p1",
        ":roles=monasca-agent",
        "content-type=application/json",
    ];
    let mut args = vec!["test", "-m", METRICS_API, "-i", input.to_str().unwrap(), "-c", "region=r"];
    for h in &headers {
        args.extend(["-H", h]);
    }
    let output = monasca_wasm(&args);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let lines = stdout_json_lines(&output);
    let kinds: Vec<(&str, i64)> = lines
        .iter()
        .map(|l| (l["kind"].as_str().unwrap_or("?"), l["origin"]["offset"].as_i64().unwrap_or(-1)))
        .collect();
    assert_eq!(kinds, [("produce", 0), ("reply", 0), ("reply", 1)], "{lines:?}");
    assert_eq!(lines[1]["status"], 204);
    assert_eq!(lines[2]["status"], 422);
    assert_eq!(
        lines[2]["body"],
        r#"{"title": "Unprocessable Entity", "description": "invalid characters in metric name: a=b"}"#
    );
}

#[test]
fn import_config_writes_a_host_configuration_that_loads() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("host.toml");
    let conf = fixture("import/notification.conf");
    let output = Command::new(env!("CARGO_BIN_EXE_monasca-wasm"))
        .args(["import-config", conf.to_str().unwrap(), "-o", out.to_str().unwrap()])
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("monasca-notification 9.0.0") && stderr.contains("not mapped"), "{stderr}");
    let text = std::fs::read_to_string(&out).unwrap();
    let config = monasca_wasm::config::HostConfig::parse(&text, "host.toml").unwrap();
    config.validate("host.toml", false).unwrap();
    assert_eq!(config.pipelines[0].group_id, "monasca-notification");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the file holds passwords: owner only");
    }

    // Without -o the TOML goes to stdout; --kind overrides the guess.
    let output = Command::new(env!("CARGO_BIN_EXE_monasca-wasm"))
        .args(["import-config", fixture("import/persister.conf").to_str().unwrap(), "--kind", "persister"])
        .output()
        .expect("the binary runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("bootstrap = \"192.168.10.6:9092,192.168.10.7:9092\""), "{stdout}");

    // A file oslo.config cannot read either is an error naming its line.
    let bad = dir.path().join("bad.conf");
    std::fs::write(&bad, "[kafka]\nurl = k:9092\nno separator here\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_monasca-wasm"))
        .args(["import-config", bad.to_str().unwrap()])
        .output()
        .expect("the binary runs");
    let stderr = assert_clean_failure(&output);
    assert!(stderr.contains("line 3"), "{stderr}");
}

/// `monasca-wasm validate --config FILE EXTRA...`: (success, stdout, stderr).
fn validate(config: &Path, extra: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_monasca-wasm"))
        .arg("validate")
        .arg("--config")
        .arg(config)
        .args(extra)
        .output()
        .expect("the binary runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!stderr.contains("panicked"), "{stderr}");
    (output.status.success(), stdout.into_owned(), stderr.into_owned())
}

/// `[engine]` with the tests' module cache.
fn engine_table() -> String {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-cache");
    format!("[engine]\ncache_dir = {:?}\n", cache.display().to_string())
}

/// Create `topics` (2 partitions) on the test broker, and wait until its metadata shows them.
fn create_topics(bootstrap: &str, topics: &[&str]) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let admin: AdminClient<DefaultClientContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("admin client");
    let new: Vec<NewTopic<'_>> = topics.iter().map(|t| NewTopic::new(t, 2, TopicReplication::Fixed(1))).collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in runtime.block_on(admin.create_topics(&new, &options)).expect("create topics") {
        result.expect("topic created");
    }
    let started = Instant::now();
    while !topics.iter().all(|t| topic_exists(bootstrap, t)) {
        assert!(started.elapsed() < Duration::from_secs(30), "topics {topics:?} not in the metadata after 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether the broker's metadata lists `topic` (asked for all topics: nothing is auto-created).
fn topic_exists(bootstrap: &str, topic: &str) -> bool {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let probe: BaseConsumer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("metadata client");
    let metadata = probe.fetch_metadata(None, Duration::from_secs(10)).expect("metadata");
    metadata.topics().iter().any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
}

#[test]
fn validate_reports_every_error_of_the_file_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("host.toml");
    // Three errors in three sections: a value of the wrong type, an unknown
    // key in a sink (a table serde reads whole), an unknown pipeline key.
    let text = format!(
        "[kafka]\nbootstrap = \"embedded\"\n\n[engine]\nmemory_limit_mib = \"lots\"\n\n\
         [sinks.tsdb]\ntype = \"sqlite\"\npath = \"points.sqlite\"\ncolour = \"blue\"\n\n\
         [[pipeline]]\nname = \"persister\"\nmodule = {PERSISTER:?}\ntopics = [\"metrics\"]\n\
         group_id = \"persister\"\nbatch_size = 5\n"
    );
    std::fs::write(&config, text).unwrap();
    let (ok, stdout, stderr) = validate(&config, &["--offline"]);
    assert!(!ok, "{stdout}");
    for expected in [
        "host.toml:5: [engine] memory_limit_mib: invalid type: string \"lots\"",
        "host.toml:10: [sinks.tsdb] colour: unknown field `colour`",
        "host.toml:17: [pipeline[0]] batch_size: unknown field `batch_size`",
    ] {
        assert!(stdout.lines().any(|l| l.contains(expected)), "`{expected}` missing from:\n{stdout}");
    }
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(stderr.starts_with("error: 3 problems in "), "{stderr}");
}

#[test]
fn validate_finds_a_missing_module_and_a_missing_topic_on_a_real_broker() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("host.toml");
    let absent = unique("validate-absent");
    let text = format!(
        "[kafka]\nbootstrap = {:?}\n\n{}\n[[pipeline]]\nname = {:?}\nmodule = \"no-such-guest.wasm\"\n\
         topics = [{absent:?}]\ngroup_id = {:?}\n",
        kafka(),
        engine_table(),
        unique("validate-p"),
        unique("validate-g"),
    );
    std::fs::write(&config, text).unwrap();
    let (ok, stdout, stderr) = validate(&config, &[]);
    assert!(!ok, "{stdout}");
    assert!(
        stdout.lines().any(|l| l.contains("host.toml:9: [pipeline[0]] module: no such file:")),
        "the module is named with its line:\n{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains(&format!("host.toml:10: [pipeline[0]] topics: topic `{absent}` does not exist"))),
        "the topic is named with its line:\n{stdout}"
    );
    assert!(stderr.starts_with("error: 2 problems in "), "{stdout}\n{stderr}");
}

#[test]
fn validate_passes_a_configuration_that_run_would_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("host.toml");
    // Offline, the file alone: the embedded quickstart's shape.
    let text = format!(
        "[kafka]\nbootstrap = \"embedded\"\n\n{}\n[sinks.tsdb]\ntype = \"sqlite\"\npath = \"data/points.sqlite\"\n\n\
         [[pipeline]]\nname = \"persister\"\nmodule = {PERSISTER:?}\ntopics = [\"metrics\"]\ngroup_id = \"persister\"\n",
        engine_table()
    );
    std::fs::write(&config, &text).unwrap();
    let (ok, stdout, stderr) = validate(&config, &["--offline"]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.starts_with("ok: 1 pipeline, 1 sink, 0 databases, 0 lookups (offline"), "{stdout}");

    // On the real broker: the input topic exists; the dead-letter topic
    // does not, and the broker would let `run` create it. Nothing is created.
    let (input, dead_letter) = (unique("validate-in"), unique("validate-dlq"));
    create_topics(kafka(), &[&input]);
    let text = text
        .replace("bootstrap = \"embedded\"", &format!("bootstrap = {:?}", kafka()))
        .replace("topics = [\"metrics\"]", &format!("topics = [{input:?}]\ndead_letter_topic = {dead_letter:?}"))
        .replace("group_id = \"persister\"", &format!("group_id = {:?}", unique("validate-g")));
    std::fs::write(&config, &text).unwrap();
    let (ok, stdout, stderr) = validate(&config, &[]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("ok: 1 pipeline, 1 sink") && stdout.contains("2 topics present or creatable"),
        "{stdout}"
    );
    assert!(!topic_exists(kafka(), &dead_letter), "validate created the dead-letter topic");
    assert!(!dir.path().join("data").exists(), "validate created the sink's directory");
}

/// Monasca's `mon` tables that the notification guest's lookups read, for
/// SQLite, with one alarm definition whose ALARM action is a webhook.
const MON_SQLITE: &str = "
    CREATE TABLE alarm_definition (
        id TEXT NOT NULL PRIMARY KEY, tenant_id TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
        severity TEXT NOT NULL DEFAULT 'LOW', actions_enabled INTEGER NOT NULL DEFAULT 1);
    CREATE TABLE alarm (
        id TEXT NOT NULL PRIMARY KEY, alarm_definition_id TEXT NOT NULL REFERENCES alarm_definition (id),
        state TEXT NOT NULL CHECK (state IN ('UNDETERMINED', 'OK', 'ALARM')));
    CREATE TABLE notification_method (
        id TEXT NOT NULL PRIMARY KEY, tenant_id TEXT NOT NULL, name TEXT, type TEXT NOT NULL,
        address TEXT, period INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE alarm_action (
        alarm_definition_id TEXT NOT NULL REFERENCES alarm_definition (id),
        alarm_state TEXT NOT NULL CHECK (alarm_state IN ('UNDETERMINED', 'OK', 'ALARM')),
        action_id TEXT NOT NULL REFERENCES notification_method (id),
        PRIMARY KEY (alarm_definition_id, alarm_state, action_id));
    INSERT INTO alarm_definition (id, tenant_id, name) VALUES ('cli-definition', 'tenant', 'High CPU usage');
    INSERT INTO notification_method VALUES ('cli-method', 'tenant', 'ops', 'WEBHOOK', 'http://127.0.0.1:9/cli-hook', 0);
    INSERT INTO alarm_action VALUES ('cli-definition', 'ALARM', 'cli-method');
";

/// A notification pipeline whose lookups query `mon.sqlite` beside the file.
fn notification_host(dir: &Path) -> std::path::PathBuf {
    let db = rusqlite::Connection::open(dir.join("mon.sqlite")).expect("create the database");
    db.execute_batch(MON_SQLITE).expect("schema and rows");
    drop(db);
    let config = dir.join("host.toml");
    let text = format!(
        "[kafka]\nbootstrap = \"embedded\"\n\n{}\n[databases.mon]\ntype = \"sqlite\"\npath = \"mon.sqlite\"\n\n\
         [[pipeline]]\nname = \"notification\"\nmodule = {NOTIFICATION:?}\ntopics = [\"alarm-state-transitions\"]\n\
         group_id = \"monasca-notification\"\n\
         [pipeline.config]\nttl-seconds = \"0\"\n\
         [pipeline.lookups.alarm_actions]\ndatabase = \"mon\"\n\
         query = \"SELECT id, type, name, address, period FROM alarm_action AS aa JOIN notification_method AS nm \
         ON aa.action_id = nm.id WHERE aa.alarm_definition_id = ?1 AND aa.alarm_state = ?2\"\n\
         [pipeline.lookups.alarm_state]\ndatabase = \"mon\"\nttl_seconds = 0\nquery = \"SELECT state FROM alarm WHERE id = ?1\"\n\
         [pipeline.lookups.notification_method]\ndatabase = \"mon\"\n\
         query = \"SELECT name, type, address, period FROM notification_method WHERE id = ?1\"\n",
        engine_table()
    );
    std::fs::write(&config, text).unwrap();
    config
}

#[test]
fn test_runs_a_pipelines_guest_with_its_lookups_from_the_host_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let config = notification_host(dir.path());
    // The first recorded transition (to ALARM), of our definition.
    let first = fixture_first_line("notification/alarm-transitions.jsonl");
    let mut alarm: Value = serde_json::from_str(&first).expect("a JSON transition");
    alarm["alarm-transitioned"]["alarmDefinitionId"] = Value::from("cli-definition");
    let alarm_id = alarm["alarm-transitioned"]["alarmId"].as_str().expect("an alarm id").to_string();
    assert_eq!(alarm["alarm-transitioned"]["newState"], "ALARM");
    let input = dir.path().join("alarms.jsonl");
    std::fs::write(&input, format!("{alarm}\n")).unwrap();

    let output = monasca_wasm(&[
        "test",
        "--host-config",
        config.to_str().unwrap(),
        "--pipeline",
        "notification",
        "--input",
        input.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let lines = stdout_json_lines(&output);
    let notify: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "notify").collect();
    assert_eq!(notify.len(), 1, "{lines:#?}");
    assert_eq!(notify[0]["channel"], "webhook");
    assert_eq!(notify[0]["destination"], "http://127.0.0.1:9/cli-hook");
    let body: Value = serde_json::from_str(notify[0]["body"].as_str().expect("a text body")).expect("a JSON body");
    assert_eq!(body["alarm_id"], alarm_id.as_str());
    assert_eq!(body["alarm_definition_id"], "cli-definition");

    // Without the host configuration the guest has no lookups: it fails the batch.
    let output = monasca_wasm(&[
        "test",
        "-m",
        NOTIFICATION,
        "-i",
        input.to_str().unwrap(),
        "-t",
        "alarm-state-transitions",
        "-c",
        "ttl-seconds=0",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("alarm_actions"), "{stderr}");
}

#[test]
fn validate_prepares_every_lookup_on_its_database() {
    let dir = tempfile::tempdir().unwrap();
    let config = notification_host(dir.path());
    let (ok, stdout, stderr) = validate(&config, &[]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.starts_with("ok: 1 pipeline, 1 sink, 1 database, 3 lookups"), "{stdout}");

    let text = std::fs::read_to_string(&config).unwrap().replace("FROM alarm WHERE", "FROM alarms WHERE");
    std::fs::write(&config, text).unwrap();
    let (ok, stdout, _) = validate(&config, &[]);
    assert!(!ok, "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("[pipeline[0].lookups.alarm_state] query:") && l.contains("no such table: alarms")),
        "{stdout}"
    );
}

/// The first line of a fixture, as text.
fn fixture_first_line(name: &str) -> String {
    let text = std::fs::read_to_string(fixture(name)).expect("fixture");
    text.split('\n').next().unwrap_or_default().to_string()
}
