//! The admin server of `monasca-wasm run` on a real broker: health,
//! readiness, Prometheus metrics that follow the pipeline's counters, and
//! the pipelines as JSON.

mod common;

use common::kafka::{create_topics_on, produce_values, spawn_host, terminate};
use monasca_test_programs::{free_port, kafka, unique, PASSTHROUGH};
use std::time::{Duration, Instant};

async fn get(url: &str) -> (u16, String) {
    match reqwest::get(url).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_pipelines_follow_the_running_pipeline() {
    let (input, output) = (unique("admin-in"), unique("admin-out"));
    create_topics_on(kafka(), &[&input, &output], 2).await;
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("host.toml");
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbootstrap = \"{}\"\n[admin]\nlisten = \"127.0.0.1:{port}\"\n[sinks.tsdb]\ntype = \"null\"\n\
             [[pipeline]]\nname = \"copy\"\nmodule = \"{PASSTHROUGH}\"\ntopics = [\"{input}\"]\ngroup_id = \"{}\"\n\
             output_topic = \"{output}\"\n",
            kafka(),
            unique("admin")
        ),
    )
    .expect("config");
    let host = spawn_host(&config);
    let base = format!("http://127.0.0.1:{port}");

    // Health answers as soon as the server is up; readiness once the pipeline runs.
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(&format!("{base}/healthz")).await.0 != 200 {
        assert!(Instant::now() < deadline, "/healthz never answered 200:\n{}", host.stderr());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(get(&format!("{base}/readyz")).await, (200, "ready\n".to_string()));

    let values: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
    produce_values(kafka(), &input, &values).await;
    let wanted = "monasca_wasm_records_produced_total{pipeline=\"copy\"} 1000\n";
    let deadline = Instant::now() + Duration::from_secs(60);
    let metrics = loop {
        let (status, text) = get(&format!("{base}/metrics")).await;
        assert_eq!(status, 200, "{text}");
        if text.contains(wanted) {
            break text;
        }
        assert!(Instant::now() < deadline, "the metrics never showed 1000 produced records:\n{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(metrics.contains("# TYPE monasca_wasm_messages_consumed_total counter\n"), "{metrics}");
    assert!(metrics.contains("monasca_wasm_messages_consumed_total{pipeline=\"copy\"} 1000\n"), "{metrics}");
    assert!(metrics.contains("monasca_wasm_module_info{pipeline=\"copy\",module=\"passthrough\",digest=\"sha256:"));
    assert!(metrics.contains("monasca_wasm_pipeline_up{pipeline=\"copy\"} 1\n"), "{metrics}");
    // Latency histograms count the batches; the lag table covers both partitions.
    let count_of = |text: &str, name: &str| -> u64 {
        let prefix = format!("{name}_count{{pipeline=\"copy\"}} ");
        text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    assert!(metrics.contains("# TYPE monasca_wasm_batch_duration_seconds histogram\n"), "{metrics}");
    assert!(count_of(&metrics, "monasca_wasm_batch_duration_seconds") > 0, "{metrics}");
    assert!(count_of(&metrics, "monasca_wasm_guest_call_duration_seconds") > 0, "{metrics}");
    assert!(
        metrics.contains("monasca_wasm_batch_duration_seconds_bucket{pipeline=\"copy\",le=\"+Inf\"} "),
        "{metrics}"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, text) = get(&format!("{base}/metrics")).await;
        let lag_lines: Vec<&str> =
            text.lines().filter(|l| l.starts_with("monasca_wasm_consumer_lag_messages{pipeline=\"copy\"")).collect();
        if lag_lines.len() == 2 {
            assert!(lag_lines.iter().all(|l| l.ends_with(" 0")), "everything was consumed: {lag_lines:?}");
            break;
        }
        assert!(Instant::now() < deadline, "no lag for both partitions:\n{text}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let (status, body) = get(&format!("{base}/v1/pipelines")).await;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let pipeline = &json["pipelines"][0];
    assert_eq!(pipeline["name"], "copy");
    assert_eq!(pipeline["state"], "running");
    assert_eq!(pipeline["module"]["name"], "passthrough");
    assert!(pipeline["module"]["digest"].as_str().is_some_and(|d| d.starts_with("sha256:") && d.len() == 71));
    assert_eq!(pipeline["counters"]["produced"], 1000);
    assert_eq!(pipeline["module"]["world"], "monasca:processor@0.4.1");
    let partitions = pipeline["partitions"].as_array().expect("partitions");
    assert_eq!(partitions.len(), 2, "{pipeline}");
    assert!(partitions.iter().all(|p| p["topic"] == input.as_str() && p["lag"] == 0), "{pipeline}");
    let (_, metrics) = get(&format!("{base}/metrics")).await;
    assert!(metrics.contains("monasca_wasm_sink_errors_total{sink=\"tsdb\"} 0\n"), "{metrics}");
    assert!(metrics.contains("monasca_wasm_sink_retries_total{sink=\"tsdb\"} 0\n"), "{metrics}");
    assert_eq!(get(&format!("{base}/nothing-here")).await.0, 404);

    let (status, stderr) = terminate(host);
    assert!(status.success(), "{stderr}");
}
