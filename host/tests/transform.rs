//! The transform guest on a real broker with the `monasca-wasm run` binary:
//! its aggregates against monasca-transform 2.0.0's own code (run on pyspark
//! by `scripts/peers/transform_oracle.sh`), and exactly-once output that stays
//! identical record for record whatever happens to the hosts: five SIGKILLs,
//! a host leaving and another dying mid-hour, a hot swap mid-window.

mod common;

use common::kafka::{create_topics_on, spawn_host, terminate, Host};
use common::transform::{by_series, produce, produce_spread, read_all, Run};
use monasca_test_programs::agents::{closer, Agents, HOUR, START};
use monasca_test_programs::{free_port, kafka, unique, TRANSFORM};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// One closer per partition at `ts`, produced after everything else.
async fn close_at(input: &str, partitions: i32, ts: i64) {
    for p in 0..partitions {
        produce(input, Some(p), &[closer(ts, p)]).await;
    }
}

/// The aggregated metric's comparable parts: name, dimensions (sorted),
/// value, value_meta.
fn comparable(v: &Value) -> (String, String, f64, Value) {
    let m = &v["metric"];
    let dims: BTreeMap<String, Value> =
        m["dimensions"].as_object().map(|o| o.clone().into_iter().collect()).unwrap_or_default();
    (
        m["name"].as_str().unwrap_or_default().to_string(),
        serde_json::to_string(&dims).unwrap_or_default(),
        m["value"].as_f64().unwrap_or(f64::NAN),
        m["value_meta"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aggregates_match_monasca_transform_2_0_0() {
    const PARTITIONS: i32 = 3;
    let input = unique("transform-diff-in");
    let run = Run::new("transform-diff", &input, PARTITIONS);
    create_topics_on(kafka(), &[&input, &run.output, &run.dead_letter], PARTITIONS).await;
    create_topics_on(kafka(), &[&run.partials], 1).await;
    let metrics = Agents { hosts: 8, interval_s: 60, hours: 1, seed: 7 }.metrics();
    produce(&input, None, &metrics).await;
    close_at(&input, PARTITIONS, START + HOUR + 700_000).await;
    // Late: points of the closed hour after every partition moved past it.
    let late: Vec<String> = metrics.iter().filter(|m| m.contains("\"mem.total_mb\"")).take(12).cloned().collect();
    for (i, m) in late.iter().enumerate() {
        produce(&input, Some(i as i32 % PARTITIONS), std::slice::from_ref(m)).await;
    }

    // The original on the same hour.
    let dir = tempfile::tempdir().unwrap();
    let given = dir.path().join("input.jsonl");
    let expected_file = dir.path().join("expected.jsonl");
    std::fs::write(&given, metrics.join("\n") + "\n").unwrap();
    let oracle = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/peers/transform_oracle.sh");
    let status = Command::new("bash").arg(&oracle).arg(&given).arg(&expected_file).status().expect("oracle runs");
    assert!(status.success(), "scripts/peers/transform_oracle.sh failed: {status}");
    let expected: Vec<Value> = std::fs::read_to_string(&expected_file)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("oracle output is JSON"))
        .collect();

    let host = spawn_host(&run.config(dir.path(), "host.toml"));
    run.wait_done(Duration::from_secs(180)).await;
    let outputs = read_all(&run.output).await;
    let dead = read_all(&run.dead_letter).await;
    let (status, stderr) = terminate(host);
    assert!(status.success(), "host: {status}\n{stderr}");

    let ours: Vec<Value> = by_series(&outputs).into_values().collect();
    assert!(ours.iter().all(|v| v["metric"]["timestamp"] == START), "every aggregate is stamped with its hour's start");
    let mut theirs: Vec<_> = expected.iter().map(comparable).collect();
    let mut mine: Vec<_> = ours.iter().map(comparable).collect();
    theirs.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    mine.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let names = |v: &[(String, String, f64, Value)]| v.iter().map(|c| format!("{} {}", c.0, c.1)).collect::<Vec<_>>();
    assert_eq!(names(&mine), names(&theirs), "the same aggregated series");
    let specs = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../guests/transform/specs/transform_specs.json"),
    )
    .unwrap();
    for line in specs.lines().filter(|l| !l.trim().is_empty()) {
        let spec: Value = serde_json::from_str(line).unwrap();
        let name = spec["aggregation_params_map"]["aggregated_metric_name"].as_str().unwrap();
        assert!(mine.iter().any(|m| m.0 == name), "no output of the shipped spec {}", spec["metric_id"]);
    }
    for (m, t) in mine.iter().zip(&theirs) {
        let close = (m.2 - t.2).abs() <= 1e-9 * t.2.abs().max(1.0);
        assert!(close, "{} {}: value {} where monasca-transform gives {}", m.0, m.1, m.2, t.2);
        assert_eq!(m.3, t.3, "{} {}: value_meta", m.0, m.1);
    }
    for v in &ours {
        assert_eq!(v["meta"], serde_json::json!({"tenantId": "111111", "region": "useast"}));
    }
    // Every late point was dead-lettered with the reason.
    let reasons: Vec<&String> =
        dead.iter().flat_map(|(_, h)| h.iter().filter(|(k, _)| k == "dlq.reason").map(|(_, v)| v)).collect();
    assert_eq!(reasons.len(), late.len(), "{reasons:?}");
    assert!(reasons.iter().all(|r| r.contains("late metric")), "{reasons:?}");
}

/// Kill `host` once the group has committed `at` input messages (the run
/// must not have ended by then).
async fn kill_at(run: &Run<'_>, host: &mut Host, at: i64, total: i64) {
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut committed = run.committed();
    while committed < at && Instant::now() < deadline && host.running() {
        tokio::time::sleep(Duration::from_millis(50)).await;
        committed = run.committed();
    }
    assert!(host.running(), "the host exited on its own:\n{}", host.stderr());
    assert!(committed >= at && committed < total, "no kill mid-run: {committed} of {total} committed, {at} wanted");
    host.kill();
    eprintln!("== killed host of {} at {committed} committed:\n{}", run.name, host.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_once_output_is_identical_through_kills_departures_and_a_swap() {
    const PARTITIONS: i32 = 6;
    let input = unique("transform-eos-in");
    create_topics_on(kafka(), &[&input], PARTITIONS).await;
    // Two hours and a bit (about 300,000 metrics): the first hour closes mid-run.
    let metrics = Agents { hosts: 44, interval_s: 30, hours: 2, seed: 11 }.metrics();
    let total = metrics.len() as i64 + PARTITIONS as i64;
    assert!(total >= 300_000, "{total} metrics");
    // The two-host run reads an input of its own, fed over a minute as the
    // kill run's is: with the whole input there at once, the host left alone
    // could finish it before the test saw the point to kill it at.
    let hosts_input = unique("transform-eos-hosts-in");
    create_topics_on(kafka(), &[&hosts_input], PARTITIONS).await;
    let mut runs: Vec<Run> = ["transform-kills", "transform-reference", "transform-hosts", "transform-swap"]
        .iter()
        .map(|name| Run::new(name, if *name == "transform-hosts" { &hosts_input } else { &input }, PARTITIONS))
        .collect();
    runs[3].admin_port = Some(free_port());
    for run in &runs {
        create_topics_on(kafka(), &[&run.output, &run.dead_letter], PARTITIONS).await;
        create_topics_on(kafka(), &[&run.partials], 1).await;
    }
    let dir = tempfile::tempdir().unwrap();

    // Five SIGKILLs while the input is being fed.
    let kills = &runs[0];
    let config = kills.config(dir.path(), "kills.toml");
    // Fed over about a minute: each restart waits for the killed host's
    // open transaction to be aborted (up to `transaction.timeout_ms`).
    let feed = |input: String| {
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let wave_size = metrics.len() / 30 + 1;
            for (w, wave) in metrics.chunks(wave_size).enumerate() {
                produce_spread(&input, PARTITIONS, w * wave_size, wave).await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            close_at(&input, PARTITIONS, START + 2 * HOUR + 700_000).await;
        })
    };
    let feeder = feed(input.clone());
    for _ in 1..=5 {
        let mut host = spawn_host(&config);
        let at = kills.committed() + total / 12;
        kill_at(kills, &mut host, at, total).await;
    }
    feeder.await.expect("feeder");
    let last = spawn_host(&config);
    kills.wait_done(Duration::from_secs(300)).await;
    let (status, stderr) = terminate(last);
    eprintln!("== last host of the kill run:\n{stderr}");
    assert!(status.success(), "last host of the kill run: {status}\n{stderr}");

    // The reference: one host, never interrupted, on the whole input.
    let reference = &runs[1];
    let host = spawn_host(&reference.config(dir.path(), "reference.toml"));
    reference.wait_done(Duration::from_secs(300)).await;
    terminate(host);
    let expected = by_series(&read_all(&reference.output).await);
    // Two windows per spec and group: hour 1 and 2 of every series.
    assert!(expected.len() >= 2 * 28, "{} aggregates", expected.len());
    let seen = by_series(&read_all(&kills.output).await);
    assert!(seen == expected, "the kill run differs:\n{}", differences(&seen, &expected));

    // Two hosts: one leaves (SIGTERM) and one dies (SIGKILL) mid-run; a third finishes.
    let hosts = &runs[2];
    let feeder = feed(hosts_input.clone());
    let (mut a, mut b) =
        (spawn_host(&hosts.config(dir.path(), "a.toml")), spawn_host(&hosts.config(dir.path(), "b.toml")));
    let deadline = Instant::now() + Duration::from_secs(180);
    while hosts.committed() < total / 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(hosts.committed() < total && a.running() && b.running(), "{}\n{}", a.stderr(), b.stderr());
    let (status, stderr) = terminate(a);
    assert!(status.success(), "host a did not leave cleanly: {status}\n{stderr}");
    kill_at(hosts, &mut b, total * 2 / 3, total).await;
    let c = spawn_host(&hosts.config(dir.path(), "c.toml"));
    feeder.await.expect("feeder");
    hosts.wait_done(Duration::from_secs(300)).await;
    // The last window closes on a timer call once its partition is idle:
    // give it that time before stopping the host (the output must come,
    // exactly as expected, within a minute).
    let mut seen = by_series(&read_all(&hosts.output).await);
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen != expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(2)).await;
        seen = by_series(&read_all(&hosts.output).await);
    }
    terminate(c);
    assert!(seen == expected, "the two-host run differs:\n{}", differences(&seen, &expected));

    // A hot swap mid-window (the same module again: new instances, the state kept by the host).
    let swap = &runs[3];
    let host = spawn_host(&swap.config(dir.path(), "swap.toml"));
    let deadline = Instant::now() + Duration::from_secs(180);
    while swap.committed() < total / 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let response = reqwest::Client::new()
        .put(format!(
            "http://127.0.0.1:{}/v1/pipelines/{}/module?name=transform-again",
            swap.admin_port.unwrap_or(0),
            swap.name
        ))
        .bearer_auth("transform-test-token")
        .body(std::fs::read(TRANSFORM).expect("module"))
        .send()
        .await
        .expect("admin API answers");
    assert_eq!(response.status(), 200, "deploy refused: {}", response.text().await.unwrap_or_default());
    assert!(swap.committed() < total, "the swap came after the run");
    swap.wait_done(Duration::from_secs(300)).await;
    terminate(host);
    let seen = by_series(&read_all(&swap.output).await);
    assert!(seen == expected, "the swapped run differs:\n{}", differences(&seen, &expected));
}

/// The first differences between two outputs, for a failure message.
fn differences(seen: &BTreeMap<String, Value>, expected: &BTreeMap<String, Value>) -> String {
    let mut out = Vec::new();
    for (k, v) in expected {
        match seen.get(k) {
            None => out.push(format!("missing {k}")),
            Some(s) if s != v => out.push(format!("{k}: {s} instead of {v}")),
            _ => {}
        }
    }
    out.extend(seen.keys().filter(|k| !expected.contains_key(*k)).map(|k| format!("extra {k}")));
    let n = out.len();
    out.truncate(8);
    format!("{n} differences, e.g.\n{}", out.join("\n"))
}
