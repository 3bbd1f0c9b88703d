//! The log and events APIs against the originals: monasca-log-api 2.11.0 and
//! monasca-events-api 8.0.0 from PyPI, run under gunicorn by
//! `scripts/peers/ingest_peers.sh` with their Kafka producer pointed at the
//! test broker and Keystone replaced by the same static tokens our host has.
//! Generated requests (valid and not: roles, content types, tenants, bodies
//! with dimensions and messages of every kind) go to both, one after
//! another; the status codes must be the same, and the records in Kafka
//! must be the same, byte for byte, apart from `creation_time`.
//!
//! Not generated, as the guests differ there on purpose (docs/configuration.md
//! lists why): lone surrogates, `Accept` negotiation, bodies over the size
//! limits, Kafka failures. Where the original drops the connection without
//! an answer (a crash its web server cannot report), ours must answer 500.

mod common;

use common::kafka::{config_head, consume_on, create_topics_on, spawn_host, terminate};
use monasca_test_programs::{kafka, unique, EVENTS_API, LOG_API};
use rdkafka::message::Message as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// (token, project, roles) known to both sides.
const TOKENS: &[(&str, &str, &[&str])] = &[
    ("user-token-0123456789", "p-user", &["monasca-user"]),
    ("admin-token-0123456789", "p-admin", &["admin"]),
    ("agent-token-0123456789", "p-agent", &["monasca-agent"]),
    ("mixed-token-0123456789", "p-mixed", &["Monasca-User", "Admin"]),
];

/// A small deterministic generator (xorshift), so that a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A JSON string literal of a generated text: plain words, every character
/// the rules care about, escapes, non-ASCII, and lengths around 255.
fn text(rng: &mut Rng) -> String {
    let pieces = [
        "host",
        "web-1",
        "a",
        "_x",
        "a b",
        "a=b",
        "a<b",
        "{x}",
        "(p)",
        "a,b",
        "it's",
        "q\\\"q",
        "back\\\\slash",
        "semi;",
        "amp&",
        "tab\\t",
        "nl\\n",
        "\\u0001",
        "\\u2028",
        "é",
        "中文",
        "😀",
        "\\u00e9",
        "/path",
        "",
        "0",
        "x.y:z",
    ];
    let mut out = String::from("\"");
    match rng.below(12) {
        0 => out.push_str(&"é".repeat(255 + rng.below(3))),
        1 => out.push_str(&"a".repeat(254 + rng.below(4))),
        _ => {
            for _ in 0..1 + rng.below(3) {
                out.push_str(pieces[rng.below(pieces.len())]);
            }
        }
    }
    out.push('"');
    out
}

/// A generated JSON value (numbers in Python's every form, NaN included).
fn value(rng: &mut Rng, depth: usize) -> String {
    match rng.below(if depth > 2 { 8 } else { 11 }) {
        0..=3 => text(rng),
        4 => rng.pick(&["0", "-0", "1", "1.5", "1E3", "1e20", "-0.0", "12345678901234567890123", "0.1"]).to_string(),
        5 => rng.pick(&["true", "false", "null"]).to_string(),
        6 => {
            if rng.chance(30) {
                "NaN".into()
            } else {
                "2".into()
            }
        }
        7 => "[]".into(),
        8 => format!("[{}, {}]", value(rng, depth + 1), value(rng, depth + 1)),
        9 => format!("{{{}: {}}}", text(rng), value(rng, depth + 1)),
        _ => "{}".into(),
    }
}

/// A dimensions object: mostly valid names and values, sometimes not; a key
/// may repeat (the last value wins, as in Python).
fn dimensions(rng: &mut Rng) -> String {
    if rng.chance(6) {
        return rng.pick(&["null", "[\"a\"]", "\"abc\"", "\"\"", "5", "[]"]).to_string();
    }
    let members: Vec<String> = (0..rng.below(4))
        .map(|_| {
            let key = if rng.chance(75) {
                format!("\"{}\"", rng.pick(&["hostname", "service", "component", "zone"]))
            } else {
                text(rng)
            };
            let v =
                if rng.chance(80) { text(rng) } else { rng.pick(&["1", "null", "true", "[\"a\"]", "[]"]).to_string() };
            format!("{key}: {v}")
        })
        .collect();
    format!("{{{}}}", members.join(", "))
}

fn log_body(rng: &mut Rng) -> String {
    match rng.below(20) {
        0 => return "{not json".into(),
        1 => return "null".into(),
        2 => return "[]".into(),
        3 => return "\"abc\"".into(),
        4 => return "{\"logs\": null}".into(),
        _ => {}
    }
    let logs: Vec<String> = (0..rng.below(4))
        .map(|_| {
            if rng.chance(8) {
                return value(rng, 2);
            }
            let mut members = Vec::new();
            if rng.chance(90) {
                members.push(format!("\"message\": {}", value(rng, 1)));
            }
            if rng.chance(60) {
                members.push(format!("\"dimensions\": {}", dimensions(rng)));
            }
            if rng.chance(30) {
                members.push(format!("\"application_type\": {}", text(rng)));
            }
            format!("{{{}}}", members.join(", "))
        })
        .collect();
    let mut body = Vec::new();
    if rng.chance(50) {
        body.push(format!("\"dimensions\": {}", dimensions(rng)));
    }
    if rng.chance(95) {
        body.push(format!("\"logs\": [{}]", logs.join(", ")));
    }
    format!("{{{}}}", body.join(", "))
}

fn event_body(rng: &mut Rng) -> String {
    match rng.below(20) {
        0 => return "{not json".into(),
        1 => return "null".into(),
        2 => return "5".into(),
        _ => {}
    }
    let events: Vec<String> = (0..rng.below(4))
        .map(|_| {
            if rng.chance(8) {
                return value(rng, 2);
            }
            let mut members = Vec::new();
            if rng.chance(92) {
                let event = if rng.chance(90) {
                    format!("{{\"event_type\": {}, \"payload\": {}}}", text(rng), value(rng, 1))
                } else {
                    value(rng, 2)
                };
                members.push(format!("\"event\": {event}"));
            }
            if rng.chance(50) {
                members.push(format!("\"dimensions\": {}", dimensions(rng)));
            }
            format!("{{{}}}", members.join(", "))
        })
        .collect();
    let mut body = Vec::new();
    if rng.chance(92) {
        let timestamp = if rng.chance(90) { "\"2024-01-01T00:00:00Z\"".to_string() } else { value(rng, 2) };
        body.push(format!("\"timestamp\": {timestamp}"));
    }
    if rng.chance(92) {
        body.push(match rng.below(10) {
            0 => "\"events\": {\"event\": {}}".to_string(),
            1 => "\"events\": \"x\"".to_string(),
            _ => format!("\"events\": [{}]", events.join(", ")),
        });
    }
    if rng.chance(5) {
        body.push("\"extra\": 1".into());
    }
    format!("{{{}}}", body.join(", "))
}

/// One generated request: token, content type, query, body.
struct Request {
    token: &'static str,
    content_type: Option<&'static str>,
    query: &'static str,
    body: String,
}

fn request(rng: &mut Rng, body: String) -> Request {
    let token = if rng.chance(4) { "unknown-token-0123456789" } else { rng.pick(TOKENS).0 };
    let content_type = *rng.pick(&[
        Some("application/json"),
        Some("application/json"),
        Some("application/json"),
        Some("application/json"),
        Some("application/json"),
        Some("application/json"),
        Some("text/plain"),
        Some("application/json; charset=utf-8"),
        None,
    ]);
    let query = *rng.pick(&["", "", "", "", "", "?tenant_id=other", "?tenant_id=", "?tenant_id=a&tenant_id=b"]);
    Request { token, content_type, query, body }
}

/// The status of `request` posted to `url` (0: the connection closed
/// without an answer).
async fn send(client: &reqwest::Client, url: &str, r: &Request) -> u16 {
    let mut builder = client.post(format!("{url}{}", r.query)).header("X-Auth-Token", r.token).body(r.body.clone());
    if let Some(ct) = r.content_type {
        builder = builder.header("Content-Type", ct);
    }
    match builder.send().await {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    }
}

/// The records of `topic`, `creation_time` masked.
async fn records(bootstrap: &str, topic: &str, expected: usize) -> Vec<String> {
    consume_on(bootstrap, topic, expected)
        .await
        .iter()
        .map(|m| {
            let text = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            match text.find("\"creation_time\": ") {
                Some(at) => {
                    let rest = &text[at + "\"creation_time\": ".len()..];
                    let digits = rest.chars().take_while(char::is_ascii_digit).count();
                    format!("{}\"creation_time\": T{}", &text[..at], &rest[digits..])
                }
                None => text,
            }
        })
        .collect()
}

struct Peers {
    dir: std::path::PathBuf,
}

impl Drop for Peers {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/peers/ingest_peers.sh");
        let _ = Command::new(script).arg("stop").arg(&self.dir).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn generated_requests_get_the_originals_answers_and_records() {
    let (log_theirs, log_ours, ev_theirs, ev_ours, dlq) = (
        unique("diff-logs-orig"),
        unique("diff-logs-ours"),
        unique("diff-ev-orig"),
        unique("diff-ev-ours"),
        unique("diff-dlq"),
    );
    create_topics_on(kafka(), &[&log_theirs, &log_ours, &ev_theirs, &ev_ours, &dlq], 1).await;

    // The originals.
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ingest-peers");
    std::fs::create_dir_all(&work).expect("peers dir");
    let tokens: Vec<serde_json::Value> = TOKENS
        .iter()
        .map(|(t, p, roles)| serde_json::json!({"token": t, "project_id": p, "roles": roles, "user_id": "u"}))
        .collect();
    let tokens_file = work.join("tokens.json");
    std::fs::write(&tokens_file, serde_json::to_string(&tokens).unwrap()).expect("tokens");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/peers/ingest_peers.sh");
    let peers_dir = work.join("run");
    let output = Command::new(&script)
        .arg("start")
        .arg(&peers_dir)
        .arg(kafka())
        .arg(&tokens_file)
        .env("LOG_API_TOPIC", &log_theirs)
        .env("EVENTS_API_TOPIC", &ev_theirs)
        .env("INGEST_PEERS_VENVS", work.join("venvs"))
        .env("INGEST_PEERS_OWNER_PID", std::process::id().to_string())
        .output()
        .expect("scripts/peers/ingest_peers.sh runs");
    assert!(
        output.status.success(),
        "the original APIs did not start (scripts/peers/ingest_peers.sh):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let _peers = Peers { dir: peers_dir };
    let urls = String::from_utf8_lossy(&output.stdout).into_owned();
    let url_of = |name: &str| {
        urls.lines().find_map(|l| l.strip_prefix(&format!("{name} "))).map(str::to_string).expect("a peer URL")
    };
    let (their_logs, their_events) =
        (format!("{}/v3.0/logs", url_of("log-api")), format!("{}/v1.0/events", url_of("events-api")));

    // Ours, with the same tokens, the originals' behaviour where ours has a choice.
    let token_tables: String = TOKENS
        .iter()
        .map(|(t, p, roles)| {
            let roles: Vec<String> = roles.iter().map(|r| format!("\"{r}\"")).collect();
            format!(
                "[[pipeline.http.tokens]]\ntoken = \"{t}\"\nproject_id = \"{p}\"\nroles = [{}]\nuser_id = \"u\"\n",
                roles.join(", ")
            )
        })
        .collect();
    let pipeline = |name: &str, module: &str, config: String| {
        format!(
            "[[pipeline]]\nname = \"{name}\"\nmodule = \"{module}\"\ndead_letter_topic = \"{dlq}\"\n[pipeline.config]\n{config}\n\
             [pipeline.http]\nlisten = \"127.0.0.1:0\"\n{token_tables}"
        )
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("host.toml");
    let text = format!(
        "{}{}{}",
        config_head("diff-cache"),
        pipeline(
            "log-api",
            LOG_API,
            format!(
                "topics = \"{log_ours}\"\nkeep_logs_without_dimensions = \"false\"\nmax_message_size = \"1048576\""
            )
        ),
        pipeline("events-api", EVENTS_API, format!("topics = \"{ev_ours}\""))
    );
    std::fs::write(&config, text).expect("config");
    let mut host = spawn_host(&config);
    let started = Instant::now();
    let ours = |stderr: &str, name: &str| {
        let marker = format!("pipeline `{name}`: serving HTTP on ");
        stderr
            .find(&marker)
            .map(|at| stderr[at + marker.len()..].split_whitespace().next().unwrap_or_default().to_string())
    };
    let (our_logs, our_events) = loop {
        let stderr = host.stderr();
        if let (Some(l), Some(e)) = (ours(&stderr, "log-api"), ours(&stderr, "events-api")) {
            break (format!("{l}/v3.0/logs"), format!("{e}/v1.0/events"));
        }
        assert!(host.running() && started.elapsed() < Duration::from_secs(60), "our host did not start:\n{stderr}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut differences = Vec::new();
    let mut statuses = std::collections::BTreeMap::<(&str, u16), usize>::new();
    for i in 0..600 {
        let (kind, theirs, mine, body) = if i % 2 == 0 {
            ("log", &their_logs, &our_logs, log_body(&mut rng))
        } else {
            ("event", &their_events, &our_events, event_body(&mut rng))
        };
        let r = request(&mut rng, body);
        let (a, b) = (send(&client, theirs, &r).await, send(&client, mine, &r).await);
        *statuses.entry((kind, a)).or_default() += 1;
        // The original's crash (no answer) is our 500.
        if a != b && !(a == 0 && b == 500) {
            differences.push(format!(
                "{kind} #{i}: original {a}, ours {b}; token {} content-type {:?} query {:?} body {}",
                r.token, r.content_type, r.query, r.body
            ));
        }
    }
    assert!(differences.is_empty(), "{} of 600 answers differ:\n{}", differences.len(), differences.join("\n"));
    eprintln!("answers by kind and status: {statuses:?}");
    assert!(statuses.keys().filter(|(_, s)| (200..300).contains(s)).count() >= 2, "too few accepted: {statuses:?}");

    for (theirs, mine) in [(&log_theirs, &log_ours), (&ev_theirs, &ev_ours)] {
        let (a, b) = (records(kafka(), theirs, 1).await, records(kafka(), mine, 1).await);
        assert!(a.len() > 20, "the originals published only {} records to {theirs}", a.len());
        let first = a.iter().zip(&b).position(|(x, y)| x != y);
        assert!(
            a.len() == b.len() && first.is_none(),
            "records differ ({} theirs, {} ours); first difference at {first:?}:\n theirs {:?}\n ours   {:?}",
            a.len(),
            b.len(),
            first.and_then(|i| a.get(i)),
            first.and_then(|i| b.get(i))
        );
        eprintln!("{} records the same in {theirs} and {mine}", a.len());
    }
    let (status, stderr) = terminate(host);
    assert!(status.success(), "{stderr}");
}
