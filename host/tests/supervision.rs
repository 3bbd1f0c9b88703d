//! A failing pipeline stops alone, on a real broker with the `monasca-wasm
//! run` binary: the host's other pipelines go on, `/readyz` and `/metrics`
//! say which failed and why, and it starts again after its back-off; with
//! restarts off the host stops, as it did before restarts existed.

mod common;

use common::kafka::{config_head, consume_on, create_topics_on, produce_values, spawn_host, terminate};
use monasca_test_programs::{free_port, kafka, unique, PASSTHROUGH};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

async fn get(url: &str) -> (u16, String) {
    match reqwest::get(url).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

/// A pipeline whose every output is refused by the broker (its output
/// topic's name is not a valid topic name), so each batch fails for good.
fn failing_pipeline(name: &str, input: &str, group: &str, restart: &str) -> String {
    format!(
        "[[pipeline]]\nname = \"{name}\"\nmodule = \"{PASSTHROUGH}\"\ntopics = [\"{input}\"]\ngroup_id = \"{group}\"\n\
         output_topic = \"no such topic: spaces and a colon\"\ndelivery_timeout_ms = 5000\n\
         [pipeline.restart]\n{restart}\n"
    )
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let config = dir.join("host.toml");
    std::fs::write(&config, format!("{}{text}", config_head("supervision-cache"))).expect("config");
    config
}

/// The value of `family{pipeline="<pipeline>"}` in a Prometheus page.
fn sample(page: &str, family: &str, pipeline: &str) -> Option<u64> {
    let prefix = format!("{family}{{pipeline=\"{pipeline}\"}} ");
    page.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_pipeline_restarts_alone_while_the_others_go_on() {
    let (good_in, good_out, bad_in) = (unique("sup-good-in"), unique("sup-good-out"), unique("sup-bad-in"));
    let bad_group = unique("sup-bad");
    create_topics_on(kafka(), &[&good_in, &good_out, &bad_in], 2).await;
    produce_values(kafka(), &bad_in, &["this output is refused"]).await;
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &format!(
            "[admin]\nlisten = \"127.0.0.1:{port}\"\n{}\
             [[pipeline]]\nname = \"good\"\nmodule = \"{PASSTHROUGH}\"\ntopics = [\"{good_in}\"]\ngroup_id = \"{}\"\n\
             output_topic = \"{good_out}\"\n",
            failing_pipeline("bad", &bad_in, &bad_group, "initial_backoff_ms = 200\nmax_backoff_ms = 60000"),
            unique("sup-good")
        ),
    );
    let mut host = spawn_host(&config);
    let base = format!("http://127.0.0.1:{port}");

    // The failing pipeline fails, waits, starts again, fails again...
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut restarts = 0;
    while restarts < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
        restarts = sample(&get(&format!("{base}/metrics")).await.1, "monasca_wasm_pipeline_restarts_total", "bad")
            .unwrap_or(0);
    }
    assert!(restarts >= 2, "the failing pipeline restarted {restarts} times:\n{}", host.stderr());
    // ... while the other pipeline carries every message.
    let values: Vec<String> = (0..2_000).map(|i| format!("good {i}")).collect();
    produce_values(kafka(), &good_in, &values).await;
    let out = consume_on(kafka(), &good_out, values.len()).await;
    assert_eq!(out.len(), values.len(), "the healthy pipeline's output:\n{}", host.stderr());
    assert!(host.running(), "the host stopped:\n{}", host.stderr());

    let (status, body) = get(&format!("{base}/readyz")).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("bad: restarting (last failure: ") || body.contains("bad: running (last failure: "),
        "{body}"
    );
    assert!(!body.contains("good"), "only the failing pipeline is named: {body}");
    let metrics = get(&format!("{base}/metrics")).await.1;
    assert_eq!(sample(&metrics, "monasca_wasm_pipeline_restarts_total", "good"), Some(0), "{metrics}");
    assert_eq!(sample(&metrics, "monasca_wasm_pipeline_up", "good"), Some(1), "{metrics}");

    let (status, stderr) = terminate(host);
    assert!(status.success(), "a host with a restarting pipeline stops cleanly on SIGTERM: {status}\n{stderr}");
    assert!(stderr.contains("restarting it after the back-off"), "{stderr}");
    // Nothing of the failing pipeline's input was committed.
    let committed = common::kafka::committed_offsets(kafka(), &bad_group, &bad_in, 2);
    assert!(committed.values().all(|&o| o == 0), "{committed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_restarts_off_a_failing_pipeline_stops_the_host() {
    let bad_in = unique("sup-off-in");
    create_topics_on(kafka(), &[&bad_in], 1).await;
    produce_values(kafka(), &bad_in, &["this output is refused"]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &failing_pipeline("stops", &bad_in, &unique("sup-off"), "enabled = false"));
    let mut host = spawn_host(&config);
    let deadline = Instant::now() + Duration::from_secs(90);
    while host.running() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = host.child.try_wait().expect("status");
    assert!(status.is_some_and(|s| !s.success()), "the host should stop with an error, status {status:?}");
    let stderr = host.stderr();
    assert!(stderr.contains("pipeline `stops` stopped"), "it says which pipeline and why:\n{stderr}");
    assert!(!stderr.contains("restarting"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_with_an_instance_id_takes_its_partitions_back_at_once_after_kill_9() {
    let (input, output, group) = (unique("static-in"), unique("static-out"), unique("static"));
    create_topics_on(kafka(), &[&input, &output], 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // A dead member's session lasts 45 s: a dynamic member restarting would
    // wait that long for the group to give up on its predecessor.
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("supervision-cache");
    let config = dir.path().join("host.toml");
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbootstrap = \"{}\"\ninstance_id = \"host-a\"\n[kafka.properties]\n\"session.timeout.ms\" = \"45000\"\n\
             [engine]\ncache_dir = \"{}\"\n\
             [[pipeline]]\nname = \"copy\"\nmodule = \"{PASSTHROUGH}\"\ntopics = [\"{input}\"]\ngroup_id = \"{group}\"\n\
             output_topic = \"{output}\"\n",
            kafka(),
            cache.display()
        ),
    )
    .expect("config");
    let first: Vec<String> = (0..500).map(|i| format!("before {i}")).collect();
    produce_values(kafka(), &input, &first).await;
    let mut host = spawn_host(&config);
    assert_eq!(consume_on(kafka(), &output, first.len()).await.len(), first.len(), "{}", host.stderr());
    host.kill();

    let host = spawn_host(&config);
    let restarted = Instant::now();
    let second: Vec<String> = (0..500).map(|i| format!("after {i}")).collect();
    produce_values(kafka(), &input, &second).await;
    let reader = common::counter::Reader::start(&output);
    let deadline = Instant::now() + Duration::from_secs(40);
    while reader.count_matching(|v| v.starts_with("after ")) < second.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = restarted.elapsed();
    let after = reader.count_matching(|v| v.starts_with("after "));
    assert_eq!(
        after,
        second.len(),
        "the restarted host consumed {after} of {} in {took:?}:\n{}",
        second.len(),
        host.stderr()
    );
    assert!(took < Duration::from_secs(30), "it waited {took:?}, as if for the dead member's session");
    let (status, stderr) = terminate(host);
    assert!(status.success(), "{stderr}");
}
