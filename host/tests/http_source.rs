//! A pipeline with an HTTP source, run by the `monasca-wasm run` binary on a
//! real broker with the metrics-api guest: what a client sends is answered
//! as monasca-api answers it, a 204 means the records are in Kafka, a
//! refused request publishes nothing, and the host's own limits (token,
//! body size, slow body, queue) hold.

mod common;

use common::kafka::{config_head, consume_on, create_topics_on, spawn_host, terminate, Host};
use monasca_test_programs::{kafka, unique, EVENTS_API, HOSTILE, LOG_API, METRICS_API};
use rdkafka::message::{Headers as _, Message as _};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const AGENT: &str = "agent-token-0123456789";
const ADMIN: &str = "admin-token-0123456789";

struct Api {
    host: Host,
    url: String,
    metrics: String,
    dlq: String,
    _dir: tempfile::TempDir,
}

/// One `[[pipeline]]` serving `module` over HTTP on a free port, with the
/// agent and admin tokens; `config` and `http` are extra lines of its
/// `[pipeline.config]` and `[pipeline.http]`.
fn api_pipeline(name: &str, module: &str, dlq: &str, config: &str, http: &str) -> String {
    format!(
        r#"
[[pipeline]]
name = "{name}"
module = "{module}"
dead_letter_topic = "{dlq}"
[pipeline.config]
{config}
[pipeline.http]
listen = "127.0.0.1:0"
{http}
[[pipeline.http.tokens]]
token = "{AGENT}"
project_id = "p-agent"
roles = ["monasca-agent"]
[[pipeline.http.tokens]]
token = "{ADMIN}"
project_id = "p-admin"
roles = ["monasca-agent", "admin"]
"#
    )
}

/// Start a host on `bootstrap` with `pipelines`; the URL of each pipeline
/// named in `names`, in that order.
async fn start_host(
    bootstrap: &str,
    kafka_properties: &str,
    pipelines: &str,
    names: &[&str],
) -> (Host, Vec<String>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config: PathBuf = dir.path().join("host.toml");
    let head = config_head("http-cache")
        .replace(kafka(), bootstrap)
        .replace("[engine]", &format!("{kafka_properties}\n[engine]"));
    std::fs::write(&config, format!("{head}{pipelines}")).expect("config");
    let mut host = spawn_host(&config);
    let started = Instant::now();
    let mut urls = Vec::new();
    for name in names {
        let marker = format!("pipeline `{name}`: serving HTTP on ");
        let url = loop {
            let stderr = host.stderr();
            if let Some(at) = stderr.find(&marker) {
                break stderr[at + marker.len()..].split_whitespace().next().unwrap_or_default().to_string();
            }
            assert!(host.running(), "the host exited:\n{stderr}");
            assert!(started.elapsed() < Duration::from_secs(60), "no HTTP listener after 60 s:\n{stderr}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        urls.push(url);
    }
    (host, urls, dir)
}

/// Start a host serving the metrics API on a free port; `extra` goes into
/// `[pipeline.http]`.
async fn start(extra: &str) -> Api {
    let (metrics, dlq) = (unique("api-metrics"), unique("api-dlq"));
    create_topics_on(kafka(), &[&metrics, &dlq], 3).await;
    let config = format!("topic = \"{metrics}\"\nregion = \"RegionOne\"");
    let pipeline = api_pipeline("metrics-api", METRICS_API, &dlq, &config, extra);
    let (host, mut urls, dir) = start_host(kafka(), "", &pipeline, &["metrics-api"]).await;
    Api { host, url: urls.remove(0), metrics, dlq, _dir: dir }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client")
}

async fn post(url: &str, token: &str, query: &str, body: &str) -> (u16, String) {
    let response = client()
        .post(format!("{url}/v2.0/metrics{query}"))
        .header("X-Auth-Token", token)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

fn metric(name: &str, i: usize) -> String {
    format!(r#"{{"name": "{name}", "value": {i}, "timestamp": 1700000000000, "dimensions": {{"hostname": "h{i}"}}}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn posted_metrics_are_in_kafka_when_the_answer_is_204() {
    let api = start("").await;
    let mut expected = Vec::new();
    let mut requests = Vec::new();
    for i in 0..50 {
        // Single metrics and lists, sent together so that they share batches.
        let body = if i % 2 == 0 { metric("cpu", i) } else { format!("[{}, {}]", metric("mem", i), metric("disk", i)) };
        expected.push(body.clone());
        let url = api.url.clone();
        requests.push(tokio::spawn(async move { post(&url, AGENT, "", &body).await }));
    }
    for r in requests {
        assert_eq!(r.await.expect("task"), (204, String::new()));
    }
    let records = consume_on(kafka(), &api.metrics, 75).await;
    let values: Vec<serde_json::Value> =
        records.iter().map(|m| serde_json::from_slice(m.payload().unwrap_or_default()).expect("JSON record")).collect();
    assert_eq!(values.len(), 75);
    for v in &values {
        assert_eq!(v["meta"], serde_json::json!({"tenantId": "p-agent", "region": "RegionOne"}), "{v}");
        assert!(v["creation_time"].as_i64().is_some_and(|t| t > 1_700_000_000), "{v}");
    }
    let names = |n: &str| values.iter().filter(|v| v["metric"]["name"] == n).count();
    assert_eq!((names("cpu"), names("mem"), names("disk")), (25, 25, 25));
    let (status, stderr) = terminate(api.host);
    assert!(status.success(), "{stderr}");
}

fn record_values(records: &[rdkafka::message::OwnedMessage]) -> Vec<serde_json::Value> {
    records.iter().map(|m| serde_json::from_slice(m.payload().unwrap_or_default()).expect("JSON record")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_requests_publish_nothing_and_identity_cannot_be_forged() {
    let api = start("").await;
    let url = api.url.as_str();
    let good = metric("cpu", 1);
    // No token, a wrong one: the host answers 401 before the guest.
    let anonymous = client().post(format!("{url}/v2.0/metrics")).body(good.clone()).send().await.expect("request");
    assert_eq!(anonymous.status().as_u16(), 401);
    assert!(anonymous.headers().contains_key("www-authenticate"));
    assert_eq!(post(url, "wrong-token-0123456789", "", &good).await.0, 401);
    // The guest's refusals, as monasca-api words them.
    assert_eq!(
        post(url, AGENT, "", r#"{"name": "a=b", "value": 1, "timestamp": 1}"#).await,
        (422, r#"{"title": "Unprocessable Entity", "description": "invalid characters in metric name: a=b"}"#.into())
    );
    assert_eq!(post(url, AGENT, "", "{not json").await.0, 400);
    let typed = client()
        .post(format!("{url}/v2.0/metrics"))
        .header("X-Auth-Token", AGENT)
        .header("Content-Type", "text/plain")
        .body(good.clone())
        .send()
        .await
        .expect("request");
    assert_eq!(typed.status().as_u16(), 400);
    // A client cannot make itself admin with keystonemiddleware's headers.
    let forged = client()
        .post(format!("{url}/v2.0/metrics?tenant_id=victim"))
        .header("X-Auth-Token", AGENT)
        .header("X-Roles", "admin,monasca-agent")
        .header("X-Project-Id", "victim")
        .header("Content-Type", "application/json")
        .body(metric("forged", 1))
        .send()
        .await
        .expect("request");
    assert_eq!(forged.status().as_u16(), 204);
    // A real delegate can.
    assert_eq!(post(url, ADMIN, "?tenant_id=other", &metric("delegated", 1)).await.0, 204);

    let values = record_values(&consume_on(kafka(), &api.metrics, 2).await);
    let tenants: Vec<(String, String)> = values
        .iter()
        .map(|v| {
            (v["metric"]["name"].as_str().unwrap_or("?").into(), v["meta"]["tenantId"].as_str().unwrap_or("?").into())
        })
        .collect();
    assert_eq!(tenants.len(), 2, "only the two accepted requests are published: {tenants:?}");
    assert!(tenants.contains(&("forged".into(), "p-agent".into())), "{tenants:?}");
    assert!(tenants.contains(&("delegated".into(), "other".into())), "{tenants:?}");
    assert!(consume_on(kafka(), &api.dlq, 0).await.is_empty(), "client errors are answered, not dead-lettered");
    let (status, stderr) = terminate(api.host);
    assert!(status.success(), "{stderr}");
}

/// Send `head` and then `body` in pieces on a raw connection; what the host answers.
async fn raw(addr: &str, head: &str, body: &[&[u8]], pause: Duration) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("write");
    for piece in body {
        if stream.write_all(piece).await.is_err() {
            break;
        }
        tokio::time::sleep(pause).await;
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_hosts_limits_hold_against_big_slow_and_silent_clients() {
    let api = start("max_body_bytes = 1024\nbody_timeout_ms = 500\nheader_timeout_ms = 500").await;
    let addr = api.url.trim_start_matches("http://").to_string();
    let head = |extra: &str| {
        format!(
            "POST /v2.0/metrics HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {AGENT}\r\nContent-Type: application/json\r\n{extra}\r\n"
        )
    };
    // Declared too large: 413 without reading it.
    let big = raw(&addr, &head("Content-Length: 5000\r\n"), &[], Duration::ZERO).await;
    assert!(big.starts_with("HTTP/1.1 413"), "{big}");
    // Chunked past the limit: 413 once the limit is crossed.
    let chunk = format!("400\r\n{}\r\n", "x".repeat(0x400));
    let chunks: Vec<&[u8]> = vec![chunk.as_bytes(); 3];
    let chunked = raw(&addr, &head("Transfer-Encoding: chunked\r\n"), &chunks, Duration::ZERO).await;
    assert!(chunked.starts_with("HTTP/1.1 413"), "{chunked}");
    // A body that trickles: 408 after body_timeout_ms.
    let started = Instant::now();
    let pieces: Vec<&[u8]> = vec![b"[".as_slice(); 10];
    let slow = raw(&addr, &head("Content-Length: 100\r\n"), &pieces, Duration::from_millis(200)).await;
    assert!(slow.starts_with("HTTP/1.1 408"), "{slow}");
    assert!(started.elapsed() < Duration::from_secs(5), "answered after {:?}", started.elapsed());
    // A connection that never sends its headers is closed.
    let started = Instant::now();
    let silent = raw(&addr, "", &[], Duration::ZERO).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a silent connection stayed open {:?}: {silent}",
        started.elapsed()
    );
    // The healthcheck needs no token.
    let health = client().get(format!("{}/healthcheck", api.url)).send().await.expect("healthcheck");
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(health.text().await.unwrap_or_default(), r#"{"kafka": "OK"}"#);
    // Nothing of the above was published.
    assert!(consume_on(kafka(), &api.metrics, 0).await.is_empty());
    let (status, stderr) = terminate(api.host);
    assert!(status.success(), "{stderr}");
}

async fn send(url: &str, token: &str, body: String) -> u16 {
    match client()
        .post(url)
        .header("X-Auth-Token", token)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
    {
        Ok(response) => response.status().as_u16(),
        Err(e) => panic!("{url}: no answer: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logs_and_events_reach_their_topics_through_the_host() {
    let (logs, events, dlq) = (unique("api-logs"), unique("api-events"), unique("api-dlq"));
    create_topics_on(kafka(), &[&logs, &events, &dlq], 3).await;
    let pipelines = api_pipeline("log-api", LOG_API, &dlq, &format!("topics = \"{logs}\"\nregion = \"r1\""), "")
        + &api_pipeline("events-api", EVENTS_API, &dlq, &format!("topics = \"{events}\""), "");
    let (host, urls, _dir) = start_host(kafka(), "", &pipelines, &["log-api", "events-api"]).await;
    let (log_url, event_url) = (format!("{}/v3.0/logs", urls[0]), format!("{}/v1.0/events", urls[1]));
    let log = r#"{"dimensions": {"hostname": "h1"}, "logs": [{"message": "m1", "dimensions": {"component": "c"}}, {"message": "m2"}]}"#;
    assert_eq!(send(&log_url, ADMIN, log.into()).await, 204);
    assert_eq!(send(&log_url, AGENT, log.into()).await, 401, "monasca-agent may not post logs");
    assert_eq!(send(&log_url, ADMIN, r#"{"dimensions": {"_x": "1"}, "logs": []}"#.into()).await, 422);
    let event = r#"{"timestamp": "2024-01-01T00:00:00Z", "events": [{"event": {"event_type": "x"}, "dimensions": {"a": "b"}}]}"#;
    assert_eq!(send(&event_url, ADMIN, event.into()).await, 200);
    assert_eq!(send(&event_url, ADMIN, r#"{"timestamp": 1, "events": []}"#.into()).await, 422);

    let logged = record_values(&consume_on(kafka(), &logs, 2).await);
    let messages: Vec<(&str, &serde_json::Value)> =
        logged.iter().map(|v| (v["log"]["message"].as_str().unwrap_or("?"), &v["log"]["dimensions"])).collect();
    assert_eq!(messages.len(), 2, "{logged:?}");
    assert!(messages.contains(&("m1", &serde_json::json!({"component": "c", "hostname": "h1"}))), "{messages:?}");
    assert!(messages.contains(&("m2", &serde_json::json!({"hostname": "h1"}))), "kept with the global dimensions");
    assert!(logged.iter().all(|v| v["meta"] == serde_json::json!({"region": "r1", "tenantId": "p-admin"})));
    let published = record_values(&consume_on(kafka(), &events, 1).await);
    assert_eq!(published.len(), 1);
    assert_eq!(
        published[0]["event"],
        serde_json::json!({"event_type": "x", "timestamp": "2024-01-01T00:00:00Z", "dimensions": {"a": "b"}})
    );
    assert_eq!(published[0]["meta"], serde_json::json!({"project_id": "p-admin"}));
    let (status, stderr) = terminate(host);
    assert!(status.success(), "{stderr}");
}

/// 20 clients post logs and metrics while the broker goes away for six
/// seconds (every connection dropped, none accepted) and comes back: every
/// request answered 2xx is in its topic exactly once, every other one was
/// answered 503, and no record is there twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_outage_answers_503_and_loses_or_doubles_no_acknowledged_record() {
    use monasca_test_programs::proxy::KafkaProxy;
    use monasca_test_programs::{free_port, kafka_behind_proxy};
    let broker_port = free_port();
    let proxy = KafkaProxy::start(broker_port).await.expect("proxy");
    let proxy_port = proxy.port();
    tokio::task::spawn_blocking(move || kafka_behind_proxy(broker_port, proxy_port)).await.expect("broker");
    let bootstrap = format!("127.0.0.1:{proxy_port}");
    let (metrics, logs, dlq) = (unique("outage-metrics"), unique("outage-logs"), unique("outage-dlq"));
    create_topics_on(&bootstrap, &[&metrics, &logs, &dlq], 3).await;
    let http = "ack_timeout_ms = 3000\nretry_after_s = 1";
    let pipelines = api_pipeline("metrics-api", METRICS_API, &dlq, &format!("topic = \"{metrics}\""), http)
        + &api_pipeline("log-api", LOG_API, &dlq, &format!("topics = \"{logs}\""), http);
    let (host, urls, _dir) = start_host(&bootstrap, "", &pipelines, &["metrics-api", "log-api"]).await;

    let started = Instant::now();
    let mut clients = Vec::new();
    for client in 0..20usize {
        let url = if client % 2 == 0 { format!("{}/v2.0/metrics", urls[0]) } else { format!("{}/v3.0/logs", urls[1]) };
        clients.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            let mut i = 0;
            while started.elapsed() < Duration::from_secs(18) {
                let id = format!("c{client}-{i}");
                let body = if client % 2 == 0 {
                    format!(r#"{{"name": "m", "value": 1, "timestamp": 1, "dimensions": {{"id": "{id}"}}}}"#)
                } else {
                    format!(r#"{{"logs": [{{"message": "{id}", "dimensions": {{"hostname": "h"}}}}]}}"#)
                };
                answers.push((id, send(&url, ADMIN, body).await));
                i += 1;
            }
            answers
        }));
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    proxy.set_down(true);
    tokio::time::sleep(Duration::from_secs(6)).await;
    proxy.set_down(false);
    let mut answers = Vec::new();
    for c in clients {
        answers.extend(c.await.expect("client"));
    }
    let accepted: Vec<&String> = answers.iter().filter(|(_, s)| (200..300).contains(s)).map(|(id, _)| id).collect();
    let refused: Vec<u16> = answers.iter().map(|(_, s)| *s).filter(|s| !(200..300).contains(s)).collect();
    assert!(refused.iter().all(|s| *s == 503), "failed requests must get 503: {refused:?}");
    assert!(!refused.is_empty(), "the outage refused nothing: the test proved nothing");
    assert!(accepted.len() > 100, "only {} requests accepted", accepted.len());

    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    let records = consume_on(&bootstrap, &metrics, 0).await.into_iter().chain(consume_on(&bootstrap, &logs, 0).await);
    for record in records {
        let v: serde_json::Value = serde_json::from_slice(record.payload().unwrap_or_default()).expect("JSON");
        let id = v["metric"]["dimensions"]["id"].as_str().or(v["log"]["message"].as_str()).unwrap_or("?").to_string();
        *seen.entry(id).or_default() += 1;
    }
    let doubled: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "records in Kafka twice: {doubled:?}");
    let lost: Vec<_> = accepted.iter().filter(|id| !seen.contains_key(id.as_str())).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged requests are not in Kafka, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    eprintln!("outage: {} accepted, {} answered 503, {} records", accepted.len(), refused.len(), seen.len());
    let (status, stderr) = terminate(host);
    assert!(status.success(), "{stderr}");
}

/// A request the guest fails on (it panics on it) is answered 500 and
/// dead-lettered with the reason; the requests batched with it are
/// answered as if it had not been there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_the_guest_fails_on_is_answered_500_and_dead_lettered() {
    let (out, dlq) = (unique("poison-out"), unique("poison-dlq"));
    create_topics_on(kafka(), &[&out, &dlq], 1).await;
    let pipeline = api_pipeline("poisoned", HOSTILE, &dlq, "mode = \"poison\"", "").replace(
        &format!("dead_letter_topic = \"{dlq}\""),
        &format!("dead_letter_topic = \"{dlq}\"\noutput_topic = \"{out}\""),
    );
    let (host, urls, _dir) = start_host(kafka(), "", &pipeline, &["poisoned"]).await;
    let url = format!("{}/anything", urls[0]);
    let sends: Vec<_> = ["ok-1", "POISON-2", "ok-3", "ok-4"]
        .into_iter()
        .map(|body| {
            let url = url.clone();
            tokio::spawn(async move { (body, send(&url, AGENT, body.to_string()).await) })
        })
        .collect();
    for s in sends {
        let (body, status) = s.await.expect("task");
        assert_eq!(status, if body.starts_with("POISON") { 500 } else { 204 }, "{body}");
    }
    let produced: Vec<String> = consume_on(kafka(), &out, 3)
        .await
        .iter()
        .map(|m| String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned())
        .collect();
    let mut sorted = produced.clone();
    sorted.sort();
    assert_eq!(sorted, ["ok-1", "ok-3", "ok-4"]);
    let letters = consume_on(kafka(), &dlq, 1).await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].payload(), Some(b"POISON-2".as_slice()));
    let reason = letters[0]
        .headers()
        .and_then(|h| (0..h.count()).map(|i| h.get(i)).find(|h| h.key == "dlq.reason").and_then(|h| h.value))
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default();
    assert!(reason.contains("POISON") || reason.contains("panic"), "{reason}");
    let (status, stderr) = terminate(host);
    assert!(status.success(), "{stderr}");
}

/// A stand-in for Keystone's token API: the service user `monasca` logs in
/// with `secret`; `GET /v3/auth/tokens` knows the tokens of `users` (token,
/// project, roles, expires_at) and counts the validations it answers.
struct StubKeystone {
    url: String,
    validations: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl StubKeystone {
    async fn start(users: Vec<(&'static str, &'static str, &'static str, &'static str)>) -> Self {
        use axum::http::{HeaderMap, StatusCode};
        use axum::routing::get;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let validations = std::sync::Arc::new(AtomicUsize::new(0));
        let counted = validations.clone();
        let login = |body: axum::Json<serde_json::Value>| async move {
            let password = &body["auth"]["identity"]["password"]["user"];
            if password["name"] != "monasca" || password["password"] != "secret" {
                return (StatusCode::UNAUTHORIZED, HeaderMap::new(), String::new());
            }
            let mut headers = HeaderMap::new();
            headers.insert("x-subject-token", "service-token".parse().unwrap());
            (StatusCode::CREATED, headers, r#"{"token": {"expires_at": "2999-01-01T00:00:00.000000Z"}}"#.to_string())
        };
        let validate = move |headers: HeaderMap| {
            let users = users.clone();
            let counted = counted.clone();
            async move {
                if headers.get("x-auth-token").and_then(|v| v.to_str().ok()) != Some("service-token") {
                    return (StatusCode::UNAUTHORIZED, String::new());
                }
                counted.fetch_add(1, Ordering::SeqCst);
                let subject = headers.get("x-subject-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
                match users.iter().find(|u| u.0 == subject) {
                    Some((_, project, role, expires)) => (
                        StatusCode::OK,
                        serde_json::json!({ "token": {
                            "expires_at": expires, "project": { "id": project },
                            "roles": [{ "name": role }], "user": { "id": "u1" } } })
                        .to_string(),
                    ),
                    None => (StatusCode::NOT_FOUND, String::new()),
                }
            }
        };
        let app = axum::Router::new().route("/v3/auth/tokens", get(validate).post(login));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        StubKeystone { url, validations, task }
    }

    fn validations(&self) -> usize {
        self.validations.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keystone_tokens_are_validated_once_and_their_project_is_the_tenant() {
    let keystone = StubKeystone::start(vec![
        ("ks-agent", "ks-project", "monasca-agent", "2999-01-01T00:00:00.000000Z"),
        ("ks-expired", "ks-project", "monasca-agent", "2001-01-01T00:00:00.000000Z"),
    ])
    .await;
    let (metrics, dlq) = (unique("ks-metrics"), unique("ks-dlq"));
    create_topics_on(kafka(), &[&metrics, &dlq], 1).await;
    let http = format!(
        "[pipeline.http.keystone]\nurl = \"{}\"\nusername = \"monasca\"\npassword = \"secret\"\nproject_name = \"service\"\n",
        keystone.url
    );
    // After the tokens' tables: `[pipeline.http.keystone]` belongs to the last pipeline.
    let pipeline = api_pipeline("metrics-api", METRICS_API, &dlq, &format!("topic = \"{metrics}\""), "") + &http;
    let (host, urls, _dir) = start_host(kafka(), "", &pipeline, &["metrics-api"]).await;
    let url = urls[0].as_str();
    for i in 0..5 {
        assert_eq!(post(url, "ks-agent", "", &metric("ks", i)).await.0, 204);
    }
    assert_eq!(keystone.validations(), 1, "a valid token is asked about once");
    assert_eq!(post(url, "ks-expired", "", &metric("ks", 9)).await.0, 401);
    assert_eq!(post(url, "ks-unknown", "", &metric("ks", 9)).await.0, 401);
    assert_eq!(post(url, "ks-unknown", "", &metric("ks", 9)).await.0, 401);
    assert_eq!(keystone.validations(), 3, "a refused token is remembered too");
    assert_eq!(post(url, AGENT, "", &metric("static", 1)).await.0, 204, "static tokens still work");
    // Keystone gone: a token it has not vouched for yet gets 503, not 401.
    keystone.task.abort();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _) = post(url, "ks-new", "", &metric("ks", 10)).await;
    assert_eq!(status, 503);
    assert_eq!(post(url, "ks-agent", "", &metric("ks", 11)).await.0, 204, "a remembered token needs no Keystone");

    let values = record_values(&consume_on(kafka(), &metrics, 7).await);
    assert_eq!(values.len(), 7);
    let ks = values.iter().filter(|v| v["meta"]["tenantId"] == "ks-project").count();
    assert_eq!(ks, 6, "the Keystone token's project is the tenant");
    let (status, stderr) = terminate(host);
    assert!(status.success(), "{stderr}");
}
