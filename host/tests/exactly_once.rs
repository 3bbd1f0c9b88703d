//! Exactly-once pipelines across hosts, on a real broker with the
//! `monasca-wasm run` binary: hosts joining, leaving on SIGTERM and dying on
//! SIGKILL while the input flows; a host paused with SIGSTOP whose partitions
//! moved on (it commits nothing, then rejoins); a module swapped mid-run. The output read committed is always
//! exactly an uninterrupted run's.

mod common;

use common::counter::{counter_config, differences, feed_keyed, inputs, wait_count, CounterHost, Reader, KEYS};
use common::kafka::{create_topics_on, spawn_host, terminate};
use monasca_test_programs::{free_port, kafka, unique, KEYED_COUNTER_V2, PASSTHROUGH};
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counter_output_is_identical_with_hosts_leaving_dying_and_joining() {
    const N: usize = 150_000;
    let (input, output, group) = (unique("hosts-in"), unique("hosts-out"), unique("hosts"));
    create_topics_on(kafka(), &[&input, &output], PARTITIONS).await;
    let (inputs, expected) = inputs(N);
    let dir = tempfile::tempdir().unwrap();
    let config = |file: &str| counter_config(dir.path(), file, &input, &output, &group, &CounterHost::default());
    let reader = Reader::start(&output);
    let (mut a, mut b) = (spawn_host(&config("a.toml")), spawn_host(&config("b.toml")));
    let feeder = feed_keyed(&input, &inputs, 30, Duration::from_millis(400));

    wait_count(&reader, N / 5, Duration::from_secs(120)).await;
    assert!(a.running() && b.running(), "a host stopped early:\n{}\n{}", a.stderr(), b.stderr());
    let (status, stderr) = terminate(a);
    assert!(status.success(), "host a did not leave cleanly on SIGTERM: {status}\n{stderr}");
    wait_count(&reader, 2 * N / 5, Duration::from_secs(120)).await;
    let mut c = spawn_host(&config("c.toml"));
    wait_count(&reader, 3 * N / 5, Duration::from_secs(120)).await;
    assert!(b.running(), "host b stopped early:\n{}", b.stderr());
    b.kill();
    feeder.await.expect("feeder");
    reader.wait_for(N, Duration::from_secs(180)).await;
    assert!(c.running(), "host c stopped:\n{}", c.stderr());
    let (status, stderr) = terminate(c);
    assert!(status.success(), "host c did not stop cleanly: {status}\n{stderr}");

    let seen = reader.stop();
    let wrong = differences(&seen, &expected);
    assert!(wrong.is_empty(), "{} of {KEYS} keys differ, e.g. {:?}", wrong.len(), &wrong[..wrong.len().min(5)]);
    assert_eq!(seen.values().map(Vec::len).sum::<usize>(), N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn passthrough_loses_and_repeats_nothing_as_hosts_come_and_go() {
    const N: usize = 150_000;
    let (input, output, group) = (unique("pass-eos-in"), unique("pass-eos-out"), unique("pass-eos"));
    create_topics_on(kafka(), &[&input, &output], PARTITIONS).await;
    // Unique keys: each must come out exactly once.
    let inputs: Vec<(String, String)> = (0..N).map(|i| (format!("m{i:06}"), format!("v{i}"))).collect();
    let dir = tempfile::tempdir().unwrap();
    let host = CounterHost { module: PASSTHROUGH, ..Default::default() };
    let config = |file: &str| counter_config(dir.path(), file, &input, &output, &group, &host);
    let reader = Reader::start(&output);
    let mut hosts = vec![spawn_host(&config("h0.toml"))];
    let feeder = feed_keyed(&input, &inputs, 30, Duration::from_millis(400));
    // Join, join, leave (SIGTERM), die (SIGKILL), join, each a fifth of the way further.
    for step in 1..=5 {
        wait_count(&reader, step * N / 6, Duration::from_secs(120)).await;
        match step {
            1 | 2 | 5 => hosts.push(spawn_host(&config(&format!("h{step}.toml")))),
            3 => {
                let (status, stderr) = terminate(hosts.remove(0));
                assert!(status.success(), "a host did not leave cleanly: {status}\n{stderr}");
            }
            _ => hosts.remove(0).kill(),
        }
    }
    feeder.await.expect("feeder");
    reader.wait_for(N, Duration::from_secs(180)).await;
    for host in hosts {
        let (status, stderr) = terminate(host);
        assert!(status.success(), "a host did not stop cleanly: {status}\n{stderr}");
    }
    let seen = reader.stop();
    let missing = inputs.iter().filter(|(k, _)| !seen.contains_key(k)).count();
    let repeated: Vec<(&String, usize)> =
        seen.iter().filter(|(_, v)| v.len() > 1).map(|(k, v)| (k, v.len())).take(5).collect();
    assert_eq!(missing, 0, "inputs missing from the committed output");
    assert!(repeated.is_empty(), "inputs repeated in the committed output, e.g. {repeated:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_host_whose_partitions_moved_commits_nothing_and_restarts() {
    const N: usize = 60_000;
    let (input, output, group) = (unique("zombie-in"), unique("zombie-out"), unique("zombie"));
    create_topics_on(kafka(), &[&input, &output], PARTITIONS).await;
    let inputs: Vec<(String, String)> = (0..N).map(|i| (format!("z{i:06}"), format!("v{i}"))).collect();
    let dir = tempfile::tempdir().unwrap();
    let host = CounterHost { module: PASSTHROUGH, ..Default::default() };
    let reader = Reader::start(&output);
    let zombie = spawn_host(&counter_config(dir.path(), "zombie.toml", &input, &output, &group, &host));
    let feeder = feed_keyed(&input, &inputs, 20, Duration::from_millis(500));
    wait_count(&reader, N / 10, Duration::from_secs(120)).await;
    // Paused mid-flow, with work in its open transaction.
    let pid = zombie.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    let successor = spawn_host(&counter_config(dir.path(), "successor.toml", &input, &output, &group, &host));
    // The successor takes every partition once the paused host's session (6 s) ends.
    let before = reader.count();
    wait_count(&reader, before + N / 10, Duration::from_secs(120)).await;
    assert!(std::process::Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
    // Resumed, it finds itself fenced: its open transaction is aborted, and
    // its pipeline starts again as a new member of the group.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !zombie.stderr().contains("restarting it after the back-off") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let said = zombie.stderr();
    assert!(said.contains("restarting it after the back-off"), "the resumed host should restart its pipeline:\n{said}");
    assert!(said.contains("fenced") || said.contains("aborted"), "it says why:\n{said}");
    feeder.await.expect("feeder");
    reader.wait_for(N, Duration::from_secs(120)).await;
    for (host, name) in [(zombie, "the resumed host"), (successor, "the successor")] {
        let (status, stderr) = terminate(host);
        assert!(status.success(), "{name} did not stop cleanly: {status}\n{stderr}");
    }
    let seen = reader.stop();
    let missing = inputs.iter().filter(|(k, _)| !seen.contains_key(k)).count();
    let repeated = seen.values().filter(|v| v.len() > 1).count();
    assert_eq!((missing, repeated), (0, 0), "missing and repeated inputs in the committed output");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn state_carries_over_a_hot_swap_mid_run() {
    const N: usize = 100_000;
    let (input, output, group) = (unique("swap-state-in"), unique("swap-state-out"), unique("swap-state"));
    create_topics_on(kafka(), &[&input, &output], PARTITIONS).await;
    let (inputs, expected) = inputs(N);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let host = CounterHost { admin_port: Some(port), ..Default::default() };
    let running = spawn_host(&counter_config(dir.path(), "host.toml", &input, &output, &group, &host));
    let reader = Reader::start(&output);
    let feeder = feed_keyed(&input, &inputs, 20, Duration::from_millis(300));
    wait_count(&reader, N / 3, Duration::from_secs(120)).await;
    let response = reqwest::Client::new()
        .put(format!("http://127.0.0.1:{port}/v1/pipelines/{group}/module?name=keyed-counter-v2"))
        .bearer_auth("state-test-token")
        .body(std::fs::read(KEYED_COUNTER_V2).expect("v2"))
        .send()
        .await
        .expect("admin API answers");
    assert_eq!(response.status(), 200, "deploy refused: {}", response.text().await.unwrap_or_default());
    feeder.await.expect("feeder");
    reader.wait_for(N, Duration::from_secs(120)).await;
    // Idle partitions holding state get timer calls (every second by
    // default); /metrics shows them and the state held per partition.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let metrics =
        reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.expect("metrics").text().await.unwrap();
    let sum = |family: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(family) && l.contains(&format!("pipeline=\"{group}\"")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert!(sum("monasca_wasm_timer_calls_total") > 0.0, "no timer calls:\n{metrics}");
    assert_eq!(sum("monasca_wasm_state_keys{"), KEYS as f64, "keys held across the partitions:\n{metrics}");
    assert!(sum("monasca_wasm_transactions_total") > 0.0 && sum("monasca_wasm_state_restores_total") > 0.0);
    let (status, stderr) = terminate(running);
    assert!(status.success(), "the host did not stop cleanly: {status}\n{stderr}");
    let versions = reader.versions();
    let seen = reader.stop();
    assert!(versions.get("v1").is_some_and(|n| *n > 0) && versions.get("v2").is_some_and(|n| *n > 0), "{versions:?}");
    let wrong = differences(&seen, &expected);
    assert!(
        wrong.is_empty(),
        "{} of {KEYS} keys differ after the swap, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
}
