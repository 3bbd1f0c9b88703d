//! A service that takes the connection and never answers holds nothing for
//! long: an SMTP server stalled after accepting fails its delivery at the
//! delivery's deadline, and with one delivery at a time the next
//! notification (a webhook) goes out right after.

mod common;

use common::receiver::{Behaviour, Receiver};
use monasca_wasm::config::NotifiersConfig;
use monasca_wasm::engine::types::{Notification, Origin};
use monasca_wasm::notify::{Notifiers, Outcome};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn notification(channel: &str, destination: &str, key: &str) -> Notification {
    Notification {
        channel: channel.into(),
        destination: destination.into(),
        attributes: vec![("subject".into(), "alarm".into())],
        body: b"{\"alarm\": \"ALARM\"}".to_vec(),
        idempotency_key: key.into(),
        origin: Origin { partition: 0, offset: 0 },
        on_sent: Vec::new(),
        on_failed: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_smtp_server_fails_at_the_deadline_and_holds_up_nothing_else() {
    // Accepts every connection, never says a word.
    let stalled = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = stalled.local_addr().expect("address").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = stalled.accept().await {
            held.push(socket);
        }
    });
    let receiver = Receiver::start(Behaviour::Succeed).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config: NotifiersConfig = toml::from_str(&format!(
        "timeout_ms = 500\nmax_in_flight = 1\n[email]\nserver = \"127.0.0.1\"\nport = {port}\nfrom_addr = \"monasca@example.com\"\n\
         [ledger]\npath = \"{}\"\n",
        dir.path().join("ledger.sqlite").display()
    ))
    .expect("config");
    let notifiers = Notifiers::new(&config, &BTreeMap::new()).expect("notifiers");
    let started = Instant::now();
    let email = notification("email", "ops@example.com", "mail-1");
    let webhook = notification("webhook", &format!("{}/hook", receiver.url), "hook-1");
    let (mailed, hooked) = tokio::join!(notifiers.deliver(&email), async {
        // Queued behind the stalled mail (one delivery at a time).
        tokio::time::sleep(Duration::from_millis(50)).await;
        let outcome = notifiers.deliver(&webhook).await;
        (outcome, started.elapsed())
    });
    let took = started.elapsed();
    match &mailed {
        Outcome::Failed(reason) => assert!(reason.contains("no answer within 1500 ms"), "{reason}"),
        other => panic!("the stalled mail should fail, not {other:?}"),
    }
    assert!(took < Duration::from_secs(4), "the deliveries took {took:?}");
    assert!(matches!(hooked.0, Outcome::Sent), "{:?}", hooked.0);
    assert!(hooked.1 < Duration::from_secs(3), "the webhook waited {:?}", hooked.1);
    assert_eq!(receiver.received().len(), 1);
}
