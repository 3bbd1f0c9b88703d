//! Hot-swapping modules in a running host (`monasca-wasm run`, real broker),
//! through the admin API and the `deploy`/`status` commands: nothing is lost
//! or reordered across 20 swaps, each output carries the version of the
//! module its batch ran on, bad modules are refused while the running one
//! keeps running, mutating calls need the token, and a restarted host comes
//! back on the module deployed last.

mod common;

use common::kafka::{config_head, consume_on, create_topics_on, produce_all_on, spawn_host, terminate, Host};
use monasca_test_programs::{
    free_port, kafka, unique, COUNTER_BAD, COUNTER_V1, COUNTER_V2, HOSTILE, TAGGER_V1, TAGGER_V2, WRONG_VERSION,
    WRONG_WORLD,
};
use rdkafka::message::{Headers, Message};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

const TOKEN: &str = "swap-test-token";

/// A host running `tagger-v1` on `input` → `output`, with the admin API on
/// `port` and its module store in `dir`.
fn write_config(dir: &Path, port: u16, input: &str, output: &str, group: &str) -> std::path::PathBuf {
    write_config_with_mode(dir, port, input, output, group, "poison")
}

/// The same, with the hostile guest's `mode` (the taggers ignore it).
fn write_config_with_mode(
    dir: &Path,
    port: u16,
    input: &str,
    output: &str,
    group: &str,
    mode: &str,
) -> std::path::PathBuf {
    let config = dir.join("host.toml");
    std::fs::write(
        &config,
        format!(
            "{}[admin]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n[sinks.tsdb]\ntype = \"null\"\n\
             [[pipeline]]\nname = \"tagged\"\nmodule = \"{TAGGER_V1}\"\ntopics = [\"{input}\"]\ngroup_id = \"{group}\"\n\
             output_topic = \"{output}\"\n[pipeline.config]\nmode = \"{mode}\"\n",
            config_head("hot-swap-cache")
        ),
    )
    .expect("config");
    config
}

async fn wait_ready(base: &str, host: &Host) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/readyz")).await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the host never became ready:\n{}", host.stderr());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Produce `values` to `input` in `slices` slices with a pause after each, in
/// the background; where each value landed.
fn feed_in_slices(
    input: &str,
    values: &[String],
    slices: usize,
    pause: Duration,
) -> tokio::task::JoinHandle<HashMap<String, (i32, i64)>> {
    let (input, values) = (input.to_string(), values.to_vec());
    tokio::spawn(async move {
        let mut placed = HashMap::new();
        for slice in values.chunks(values.len().div_ceil(slices).max(1)) {
            placed.extend(produce_all_on(kafka(), &input, slice).await);
            tokio::time::sleep(pause).await;
        }
        placed
    })
}

async fn put_module(base: &str, token: Option<&str>, name: &str, bytes: Vec<u8>) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new().put(format!("{base}/v1/pipelines/tagged/module?name={name}")).body(bytes);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("admin API answers");
    let status = response.status().as_u16();
    (status, serde_json::from_slice(&response.bytes().await.unwrap_or_default()).unwrap_or(serde_json::Value::Null))
}

async fn running_digest(base: &str) -> String {
    let body = reqwest::get(format!("{base}/v1/pipelines")).await.expect("pipelines").text().await.expect("text");
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    json["pipelines"][0]["module"]["digest"].as_str().unwrap_or_default().to_string()
}

fn digest_of(path: &str) -> String {
    format!("sha256:{}", monasca_wasm::engine::digest_hex(&std::fs::read(path).expect("module")))
}

fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_monasca-wasm")).args(args).output().expect("monasca-wasm runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_swaps_under_load_lose_nothing_and_tag_every_output_with_its_module() {
    const N: usize = 200_000;
    const SWAPS: usize = 20;
    let (input, output, group) = (unique("swap-in"), unique("swap-out"), unique("swap"));
    create_topics_on(kafka(), &[&input, &output], 3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let host = spawn_host(&write_config(dir.path(), port, &input, &output, &group));
    wait_ready(&base, &host).await;

    // Feed the input in slices while swapping v2, v1, v2, ... every ~300 ms.
    let values: Vec<String> = (0..N).map(|i| format!("swap-{i:06}")).collect();
    let feeder = feed_in_slices(&input, &values, 40, Duration::from_millis(150));
    let (v1, v2) = (std::fs::read(TAGGER_V1).expect("v1"), std::fs::read(TAGGER_V2).expect("v2"));
    let mut last = "v1";
    for swap in 0..SWAPS {
        let (name, bytes) = if swap % 2 == 0 { ("tagger-v2", v2.clone()) } else { ("tagger-v1", v1.clone()) };
        let (status, answer) = put_module(&base, Some(TOKEN), name, bytes).await;
        assert_eq!(status, 200, "swap {swap}: {answer}\n{}", host.stderr());
        assert_eq!(answer["module"]["name"], name);
        last = if swap % 2 == 0 { "v2" } else { "v1" };
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let placed = feeder.await.expect("feeder");
    // One more slice after the last swap: it must all carry the last version.
    let tail: Vec<String> = (0..2000).map(|i| format!("tail-{i:04}")).collect();
    let tail_placed = produce_all_on(kafka(), &input, &tail).await;

    let received = consume_on(kafka(), &output, N + tail.len()).await;
    let mut seen: HashSet<String> = HashSet::new();
    let mut last_offset: HashMap<(i32, i32), i64> = HashMap::new();
    let mut versions: HashMap<i32, Vec<String>> = HashMap::new();
    for m in &received {
        let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
        assert!(seen.insert(value.clone()), "{value} arrived twice");
        let version = m
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "guest-version").and_then(|h| h.value))
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_else(|| panic!("{value} has no guest-version header"));
        let (in_partition, in_offset) = placed.get(&value).or_else(|| tail_placed.get(&value)).copied().expect("known");
        let previous = last_offset.insert((m.partition(), in_partition), in_offset);
        assert!(previous.is_none_or(|p| p < in_offset), "order broken in partition {in_partition} at {value}");
        if value.starts_with("tail-") {
            assert_eq!(version, last, "{value} was produced after the last swap");
        }
        let runs = versions.entry(in_partition).or_default();
        if runs.last() != Some(&version) {
            runs.push(version);
        }
    }
    assert_eq!(seen.len(), N + tail.len(), "every input reaches the output once");
    let all: HashSet<&String> = versions.values().flatten().collect();
    assert!(all.contains(&"v1".to_string()) && all.contains(&"v2".to_string()), "both versions ran: {versions:?}");
    for (partition, runs) in &versions {
        // A partition switches at batch boundaries, at most once per swap.
        assert!(runs.len() <= SWAPS + 1, "partition {partition} switched {} times", runs.len() - 1);
    }
    assert!(versions.values().any(|runs| runs.len() >= 3), "swaps happened mid-stream: {versions:?}");

    let metrics = reqwest::get(format!("{base}/metrics")).await.expect("metrics").text().await.expect("text");
    assert!(
        metrics.contains(&format!("monasca_wasm_module_swaps_total{{pipeline=\"tagged\"}} {SWAPS}\n")),
        "{metrics}"
    );
    let (status, stderr) = terminate(host);
    assert!(status.success(), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_modules_and_missing_tokens_are_refused_and_a_restart_keeps_the_deployed_module() {
    let (input, output, group) = (unique("deploy-in"), unique("deploy-out"), unique("deploy"));
    create_topics_on(kafka(), &[&input, &output], 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = write_config(dir.path(), port, &input, &output, &group);
    let host = spawn_host(&config);
    wait_ready(&base, &host).await;
    let v1 = digest_of(TAGGER_V1);
    assert_eq!(running_digest(&base).await, v1);

    // No token, a wrong one: 401, and nothing changes.
    let v2_bytes = std::fs::read(TAGGER_V2).expect("v2");
    assert_eq!(put_module(&base, None, "v2", v2_bytes.clone()).await.0, 401);
    assert_eq!(put_module(&base, Some("wrong"), "v2", v2_bytes.clone()).await.0, 401);
    let rollback =
        reqwest::Client::new().post(format!("{base}/v1/pipelines/tagged/rollback")).send().await.expect("rollback");
    assert_eq!(rollback.status(), 401);

    // Not wasm, the wrong world, the wrong major version: 400 saying why.
    for (bytes, why) in [
        (b"definitely not wasm".to_vec(), "not a WebAssembly"),
        (std::fs::read(WRONG_WORLD).expect("wrong world"), "world"),
        (std::fs::read(WRONG_VERSION).expect("wrong version"), "version"),
    ] {
        let (status, answer) = put_module(&base, Some(TOKEN), "bad", bytes).await;
        assert_eq!(status, 400, "{answer}");
        let reason = answer["error"].as_str().unwrap_or_default();
        assert!(reason.to_lowercase().contains(&why.to_lowercase()), "{why}: {reason}");
        assert_eq!(running_digest(&base).await, v1, "the running module keeps running");
    }
    // A module that fails its canary (the hostile guest, in the pipeline's
    // `mode = "poison"`, panics on a message holding POISON): refused, exit 1.
    let canary_dir = tempfile::tempdir().expect("tempdir");
    let (good, bad) = (canary_dir.path().join("good.jsonl"), canary_dir.path().join("bad.jsonl"));
    std::fs::write(&good, "one\ntwo\n").expect("canary");
    std::fs::write(&bad, "one\nPOISON\n").expect("canary");
    let admin = ["--admin", base.as_str(), "--token", TOKEN];
    let refused = cli(&[
        &["deploy", "--pipeline", "tagged", "--module", HOSTILE, "--canary", bad.to_str().expect("path")][..],
        &admin,
    ]
    .concat());
    assert_eq!(refused.status.code(), Some(1), "{}", String::from_utf8_lossy(&refused.stderr));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("canary failed"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(running_digest(&base).await, v1);

    // `deploy` with a passing canary, then `status` shows it.
    let deployed = cli(&[
        &["deploy", "--pipeline", "tagged", "--module", TAGGER_V2, "--canary", good.to_str().expect("path")][..],
        &admin,
    ]
    .concat());
    assert!(deployed.status.success(), "{}", String::from_utf8_lossy(&deployed.stderr));
    let said = String::from_utf8_lossy(&deployed.stdout);
    assert!(said.contains("deployed tagger_v2") && said.contains("canary passed"), "{said}");
    let v2 = digest_of(TAGGER_V2);
    assert_eq!(running_digest(&base).await, v2);
    let status = cli(&["status", "--admin", &base]);
    assert!(status.status.success());
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(table.contains("tagged") && table.contains("tagger_v2") && table.contains("tagger_v1"), "{table}");

    // A restart comes back on the deployed module, and says so.
    let (status, _) = terminate(host);
    assert!(status.success());
    let host = spawn_host(&config);
    wait_ready(&base, &host).await;
    assert_eq!(running_digest(&base).await, v2, "{}", host.stderr());
    assert!(host.stderr().contains("running the module deployed to it"), "{}", host.stderr());
    let values: Vec<String> = (0..100).map(|i| format!("after-restart-{i}")).collect();
    produce_all_on(kafka(), &input, &values).await;
    let received = consume_on(kafka(), &output, values.len()).await;
    for m in &received {
        let version = m.headers().and_then(|h| h.iter().find(|h| h.key == "guest-version").and_then(|h| h.value));
        assert_eq!(version, Some(&b"v2"[..]));
    }

    // Roll back to the configuration's module (kept in the store at the first deployment).
    let rolled = cli(&[&["rollback", "--pipeline", "tagged"][..], &admin].concat());
    assert!(rolled.status.success(), "{}", String::from_utf8_lossy(&rolled.stderr));
    assert_eq!(running_digest(&base).await, v1);
    let (status, stderr) = terminate(host);
    assert!(status.success(), "{stderr}");

    // Nobody listening: exit code 2.
    let unreachable = cli(&["status", "--admin", &format!("http://127.0.0.1:{}", free_port())]);
    assert_eq!(unreachable.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_are_refused_without_a_configured_token() {
    let (input, output) = (unique("notoken-in"), unique("notoken-out"));
    create_topics_on(kafka(), &[&input, &output], 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = write_config(dir.path(), port, &input, &output, &unique("notoken"));
    let text = std::fs::read_to_string(&config).expect("config").replace(&format!("token = \"{TOKEN}\"\n"), "");
    std::fs::write(&config, text).expect("config");
    let host = spawn_host(&config);
    wait_ready(&base, &host).await;
    let (status, answer) = put_module(&base, Some(TOKEN), "v2", std::fs::read(TAGGER_V2).expect("v2")).await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer["error"].as_str().unwrap_or_default().contains("no admin token"), "{answer}");
    let (status, stderr) = terminate(host);
    assert!(status.success(), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_module_that_fails_every_batch_is_rolled_back_and_loses_nothing() {
    const N: usize = 30_000;
    let (input, output, group) = (unique("rollback-in"), unique("rollback-out"), unique("rollback"));
    create_topics_on(kafka(), &[&input, &output], 3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // `mode = "panic"`: the hostile guest panics on every batch.
    let host = spawn_host(&write_config_with_mode(dir.path(), port, &input, &output, &group, "panic"));
    wait_ready(&base, &host).await;
    let v1 = digest_of(TAGGER_V1);

    let values: Vec<String> = (0..N).map(|i| format!("rb-{i:05}")).collect();
    let feeder = feed_in_slices(&input, &values, 20, Duration::from_millis(100));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, answer) = put_module(&base, Some(TOKEN), "hostile", std::fs::read(HOSTILE).expect("hostile")).await;
    assert_eq!(status, 200, "{answer}");
    let placed = feeder.await.expect("feeder");

    let received = consume_on(kafka(), &output, N).await;
    let got: HashSet<String> =
        received.iter().map(|m| String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()).collect();
    assert_eq!(got.len(), received.len(), "no duplicates");
    assert_eq!(got.len(), N, "every message reached the output");
    assert!(got.iter().all(|v| placed.contains_key(v)));
    for m in &received {
        let version = m.headers().and_then(|h| h.iter().find(|h| h.key == "guest-version").and_then(|h| h.value));
        assert_eq!(version, Some(&b"v1"[..]), "only the old module produced");
    }
    assert_eq!(running_digest(&base).await, v1, "rolled back to the previous module");
    let metrics = reqwest::get(format!("{base}/metrics")).await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("monasca_wasm_module_rollbacks_total{pipeline=\"tagged\"} 1\n"), "{metrics}");
    assert!(metrics.contains("monasca_wasm_messages_dead_lettered_total{pipeline=\"tagged\"} 0\n"), "{metrics}");
    // A manual rollback now would reinstall the failing module: refused,
    // saying why (the CLI takes the address and token from the host's file).
    let manual = cli(&["rollback", "--pipeline", "tagged", "--config", dir.path().join("host.toml").to_str().unwrap()]);
    let said = String::from_utf8_lossy(&manual.stderr);
    assert_eq!(manual.status.code(), Some(1), "{said}");
    assert!(said.contains("rolled back automatically") && said.contains("deploy it again"), "{said}");
    assert_eq!(running_digest(&base).await, v1);
    let (status, stderr) = terminate(host);
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("module rolled back") && stderr.contains("failed 3 batches in a row"), "{stderr}");
}

/// Send `head` (a request line and headers) on a fresh connection and no
/// body; the status line and body of the answer, read within 10 s.
async fn raw_request(port: u16, head: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("send");
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("an answer before the body is sent")
        .expect("read");
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_refused_before_their_body_is_read_and_past_the_limit() {
    let (input, output) = (unique("upload-in"), unique("upload-out"));
    create_topics_on(kafka(), &[&input, &output], 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = write_config(dir.path(), port, &input, &output, &unique("upload"));
    let text = std::fs::read_to_string(&config).expect("config").replace("[admin]\n", "[admin]\nmax_upload_mib = 1\n");
    std::fs::write(&config, text).expect("config");
    let host = spawn_host(&config);
    wait_ready(&base, &host).await;

    // A gigabyte announced, no token, nothing sent: refused at once.
    let answer =
        raw_request(port, "PUT /v1/pipelines/tagged/module HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n")
            .await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("{\"error\":"), "errors are JSON: {answer}");
    // With the token (any case of `Bearer`), past the limit: 413, also before the body.
    let answer = raw_request(
        port,
        &format!(
            "PUT /v1/pipelines/tagged/module HTTP/1.1\r\nHost: x\r\nAuthorization: bEaReR {TOKEN}\r\n\
             Content-Length: 1073741824\r\n\r\n"
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("max_upload_mib"), "{answer}");
    // A body streamed without a length stops at the limit too.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
        let head = format!(
            "PUT /v1/pipelines/tagged/module HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
             Transfer-Encoding: chunked\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.expect("send");
        let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "x".repeat(64 * 1024));
        for _ in 0..64 {
            // The host may answer and close before all 4 MiB are sent.
            if stream.write_all(chunk.as_bytes()).await.is_err() {
                break;
            }
        }
        let mut answer = vec![0u8; 4096];
        let n =
            tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer)).await.expect("answer").unwrap_or(0);
        let answer = String::from_utf8_lossy(&answer[..n]);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    }
    // Unknown routes answer JSON as well.
    let missing = reqwest::get(format!("{base}/v1/nothing-here")).await.expect("answered");
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.expect("JSON");
    assert!(body["error"].is_string(), "{body}");
    assert_eq!(running_digest(&base).await, digest_of(TAGGER_V1));
    let (status, stderr) = terminate(host);
    assert!(status.success(), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stateful_guest_hands_its_counts_to_the_new_version_and_a_version_that_cannot_is_refused() {
    let (input, output, group) = (unique("state-in"), unique("state-out"), unique("state"));
    create_topics_on(kafka(), &[&input, &output], 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = write_config(dir.path(), port, &input, &output, &group);
    let text = std::fs::read_to_string(&config).expect("config").replace(TAGGER_V1, COUNTER_V1);
    std::fs::write(&config, text).expect("config");
    let host = spawn_host(&config);
    wait_ready(&base, &host).await;

    // Three keys, 100 messages each, counted by v1.
    let keys = ["alpha", "beta", "gamma"];
    let round = |n: usize| -> Vec<String> { (0..n).map(|i| keys[i % keys.len()].to_string()).collect() };
    produce_all_counted(&input, &round(300)).await;
    let first = consume_on(kafka(), &output, 300).await;
    assert_eq!(first.len(), 300);
    assert!(text_of(&first).contains(&"v1 gamma 100".to_string()));

    // A version that refuses the state: 422, and v1 keeps counting.
    let (status, answer) =
        put_module(&base, Some(TOKEN), "counter-bad", std::fs::read(COUNTER_BAD).expect("bad")).await;
    assert_eq!(status, 422, "{answer}");
    assert!(answer["error"].as_str().unwrap_or_default().contains("cannot read the state"), "{answer}");
    assert_eq!(running_digest(&base).await, digest_of(COUNTER_V1));

    // v2 takes the counts over: its first outputs continue from 100.
    let (status, answer) = put_module(&base, Some(TOKEN), "counter-v2", std::fs::read(COUNTER_V2).expect("v2")).await;
    assert_eq!(status, 200, "{answer}");
    produce_all_counted(&input, &round(30)).await;
    let all = consume_on(kafka(), &output, 330).await;
    let after: Vec<String> = text_of(&all).into_iter().filter(|t| t.starts_with("v2 ")).collect();
    assert_eq!(after.len(), 30, "{after:?}");
    for key in keys {
        assert!(after.contains(&format!("v2 {key} 101")) && after.contains(&format!("v2 {key} 110")), "{after:?}");
    }
    let (status, stderr) = terminate(host);
    assert!(status.success(), "{stderr}");
}

/// Produce `values` (one after another, so a key's counts follow the order).
async fn produce_all_counted(topic: &str, values: &[String]) {
    common::kafka::produce_values(kafka(), topic, values).await;
}

fn text_of(messages: &[rdkafka::message::OwnedMessage]) -> Vec<String> {
    messages.iter().map(|m| String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_moved_into_the_watched_directory_is_deployed() {
    let (input, output) = (unique("watch-in"), unique("watch-out"));
    create_topics_on(kafka(), &[&input, &output], 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = write_config(dir.path(), port, &input, &output, &unique("watch"));
    let text = std::fs::read_to_string(&config)
        .expect("config")
        .replace("[pipeline.config]", "watch_dir = \"watched\"\n[pipeline.config]");
    std::fs::write(&config, text).expect("config");
    let host = spawn_host(&config);
    wait_ready(&base, &host).await;
    let watched = dir.path().join("watched");
    let wait_for = |digest: String| {
        let base = base.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            while running_digest(&base).await != digest {
                assert!(Instant::now() < deadline, "{digest} was never deployed");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };

    // Written under a dot-name, then renamed into place.
    std::fs::copy(TAGGER_V2, watched.join(".incoming")).expect("copy");
    std::fs::rename(watched.join(".incoming"), watched.join("tagger_v2.wasm")).expect("rename");
    wait_for(digest_of(TAGGER_V2)).await;

    // A bad file is refused and logged; the running module stays.
    std::fs::write(watched.join(".incoming"), b"not wasm").expect("write");
    std::fs::rename(watched.join(".incoming"), watched.join("broken.wasm")).expect("rename");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !host.stderr().contains("watched module refused") {
        assert!(Instant::now() < deadline, "the bad module was not reported:\n{}", host.stderr());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(running_digest(&base).await, digest_of(TAGGER_V2));
    let (status, stderr) = terminate(host);
    assert!(status.success(), "{stderr}");
}
