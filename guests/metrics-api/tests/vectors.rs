//! monasca-api 11.0.0's answers and Kafka records for 107 requests (each
//! posted to the original, running in-process with its release's library
//! versions, Kafka recorded; `creation_time` frozen at 1704067200), replayed
//! through this guest: the same status, the same error body, the same
//! records byte for byte.

use metrics_api::MetricsApi;
use monasca_guest_sdk::http::{self, Reply};
use monasca_guest_sdk::testing::Harness;
use monasca_guest_sdk::{Effect, Header, Message};
use serde_json::Value;

fn request(body: &str, headers: &[(&str, &str)]) -> Message {
    let mut m = Message::new("http", body.as_bytes().to_vec());
    for (k, v) in headers {
        m.headers.push(Header { key: k.to_string(), value: v.as_bytes().to_vec() });
    }
    m
}

fn post(body: &str) -> Message {
    request(
        body,
        &[
            (http::METHOD, "POST"),
            (http::PATH, "/v2.0/metrics"),
            (http::PROJECT_ID, "p1"),
            (http::ROLES, "monasca-user"),
            ("content-type", "application/json"),
        ],
    )
}

fn run(harness: &mut Harness<MetricsApi>, message: Message) -> (Reply, Vec<String>) {
    let effects = harness.run(vec![message]).expect("the guest never fails a batch");
    let records = effects
        .into_iter()
        .map(|e| match e {
            Effect::Produce(r) => {
                assert_eq!(r.topic.as_deref(), Some("metrics"));
                assert_eq!(r.key, None, "monasca-api publishes without a key");
                String::from_utf8(r.value.to_vec()).expect("UTF-8 record")
            }
            other => panic!("unexpected effect {other:?}"),
        })
        .collect();
    let mut replies = harness.take_replies();
    assert_eq!(replies.len(), 1, "one answer per request");
    (replies.remove(0), records)
}

#[test]
fn every_vector_gets_the_originals_status_body_and_records() {
    let mut harness = Harness::<MetricsApi>::new(&[("region", "RegionOne")]).unwrap();
    harness.at_time(1_704_067_200_000);
    let text = include_str!("monasca-api-11.0.0-vectors.jsonl");
    let mut checked = 0;
    for line in text.lines() {
        let vector: Value = serde_json::from_str(line).unwrap();
        let (input, note) = (vector["input"].as_str().unwrap(), vector["note"].as_str().unwrap());
        let (reply, records) = run(&mut harness, post(input));
        assert_eq!(reply.status as u64, vector["api_status"].as_u64().unwrap(), "{note}: {input}");
        if let Some(body) = vector["api_body"].as_str() {
            assert_eq!(reply.body_text(), body, "{note}");
        }
        let expected: Vec<String> =
            vector["kafka_values"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        assert_eq!(records, expected, "{note}: {input}");
        checked += 1;
    }
    assert_eq!(checked, 107);
}

#[test]
fn checks_come_in_the_originals_order() {
    let mut harness = Harness::<MetricsApi>::new(&[]).unwrap();
    // Content-Type before roles: no role and a bad type is 400.
    let bad = request("{}", &[(http::METHOD, "POST"), (http::PATH, "/v2.0/metrics/"), ("content-type", "text/plain")]);
    let (reply, records) = run(&mut harness, bad);
    assert_eq!((reply.status, records.len()), (400, 0));
    // admin alone may not post.
    let admin = request(
        r#"{"name": "a", "value": 1, "timestamp": 1}"#,
        &[
            (http::METHOD, "POST"),
            (http::PATH, "/v2.0/metrics"),
            (http::ROLES, "admin"),
            ("content-type", "application/json"),
        ],
    );
    let (reply, records) = run(&mut harness, admin);
    assert_eq!((reply.status, records.len()), (401, 0));
    assert_eq!(
        reply.body_text(),
        r#"{"title": "Forbidden", "description": "The request does not have access to this service"}"#
    );
}

#[test]
fn a_delegate_posts_for_another_tenant_and_nobody_else_can() {
    let mut harness = Harness::<MetricsApi>::new(&[]).unwrap();
    let metric = r#"{"name": "a", "value": 1, "timestamp": 1}"#;
    let with = |roles: &str, query: &str| {
        request(
            metric,
            &[
                (http::METHOD, "POST"),
                (http::PATH, "/v2.0/metrics"),
                (http::QUERY, query),
                (http::PROJECT_ID, "mine"),
                (http::ROLES, roles),
                ("content-type", "application/json"),
            ],
        )
    };
    let (_, records) = run(&mut harness, with("monasca-agent,Admin", "tenant_id=other"));
    assert!(records[0].contains(r#""tenantId": "other""#), "{}", records[0]);
    let (_, records) = run(&mut harness, with("monasca-agent", "tenant_id=other"));
    assert!(records[0].contains(r#""tenantId": "mine""#), "a forged cross-tenant post stays in its own project");
    let (_, records) = run(&mut harness, with("monasca-agent,admin", "tenant_id=a,b"));
    assert!(records[0].contains(r#""tenantId": ["a", "b"]"#), "{}", records[0]);
}

#[test]
fn versions_documents() {
    let mut harness = Harness::<MetricsApi>::new(&[]).unwrap();
    let get = |path: &str| request("", &[(http::METHOD, "GET"), (http::PATH, path), ("host", "api:8070")]);
    let (reply, _) = run(&mut harness, get("/"));
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body_text(),
        r#"{"links": [{"rel": "self", "href": "http://api:8070/"}], "elements": [{"id": "v2.0", "links": [{"rel": "self", "href": "http://api:8070/v2.0"}], "status": "CURRENT", "updated": "2013-03-06T00:00:00.000Z"}]}"#
    );
    let (reply, _) = run(&mut harness, get("/v3.0"));
    assert_eq!(
        (reply.status, reply.body_text().as_str()),
        (422, r#"{"title": "Invalid version", "description": "No versions found matching v3.0"}"#)
    );
    let (reply, _) = run(&mut harness, get("/v2.0/nothing"));
    assert_eq!(reply.status, 404);
}
