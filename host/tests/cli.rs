//! The `monasca-wasm` binary end to end: `test`, `inspect`, `new` and `import-config`, with
//! their output formats and exit codes.

use monasca_test_programs::{fixture, HOSTILE, KEYED_COUNTER, METRICS_API, PERSISTER, WRONG_VERSION};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

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
