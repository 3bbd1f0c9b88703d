//! The network databases of `[databases]` for real: Monasca's notification
//! query as a named lookup on MariaDB and on PostgreSQL (the suite's
//! servers, Monasca's schema), the notification ledger in both, and a
//! database that does not answer, which lookups count as unavailable (the
//! pipeline then retries the batch instead of dead-lettering messages).

use monasca_wasm::config::{DatabaseConfig, LookupConfig, Secret};
use monasca_wasm::databases::{open_all, Database};
use monasca_wasm::engine::types::Cell;
use monasca_wasm::engine::Lookups;
use monasca_wasm::lookups::SqlLookups;
use monasca_wasm::notify::ledger::{Entry, Ledger};
use std::collections::BTreeMap;
use std::sync::Arc;

struct Dialect {
    config: DatabaseConfig,
    /// Placeholders of the dialect, in order.
    marks: [&'static str; 6],
}

fn mariadb() -> Dialect {
    let url = Secret(monasca_test_programs::mariadb().to_string());
    Dialect { config: DatabaseConfig::Mysql { url }, marks: ["?", "?", "?", "?", "?", "?"] }
}

fn postgres() -> Dialect {
    let url = Secret(monasca_test_programs::postgres().to_string());
    Dialect { config: DatabaseConfig::Postgresql { url }, marks: ["$1", "$2", "$3", "$4", "$5", "$6"] }
}

async fn exercise(dialect: Dialect, tag: &str) {
    let db = Database::open("mon", &dialect.config, true).expect("open");
    let [a, b, c, d, e, f] = dialect.marks;
    let (definition, method) = (format!("def-{tag}"), format!("m-{tag}"));
    db.execute(&format!("DELETE FROM alarm_definition WHERE id = {a}"), std::slice::from_ref(&definition))
        .await
        .expect("clean");
    db.execute(&format!("DELETE FROM notification_method WHERE id = {a}"), std::slice::from_ref(&method))
        .await
        .expect("clean");
    db.execute(
        &format!("INSERT INTO alarm_definition (id, tenant_id, name) VALUES ({a}, {b}, {c})"),
        &[definition.clone(), "t".into(), "cpu".into()],
    )
    .await
    .expect("definition");
    db.execute(
        &format!("INSERT INTO notification_method (id, tenant_id, name, type, address, period) VALUES ({a}, {b}, {c}, {d}, {e}, CAST({f} AS INTEGER))"),
        &[method.clone(), "t".into(), "ops hook".into(), "WEBHOOK".into(), "http://127.0.0.1:1/h".into(), "60".into()],
    )
    .await
    .expect("method");
    db.execute(
        &format!("INSERT INTO alarm_action (alarm_definition_id, alarm_state, action_id) VALUES ({a}, {b}, {c})"),
        &[definition.clone(), "ALARM".into(), method.clone()],
    )
    .await
    .expect("action");

    // The original's query, as an operator names it.
    let databases = open_all(&BTreeMap::from([("mon".to_string(), dialect.config.clone())])).expect("databases");
    let lookups = BTreeMap::from([(
        "alarm_actions".to_string(),
        LookupConfig {
            database: "mon".into(),
            query: format!(
                "SELECT id, type, name, address, period FROM alarm_action AS aa JOIN notification_method AS nm \
                 ON aa.action_id = nm.id WHERE aa.alarm_definition_id = {a} AND aa.alarm_state = {b}"
            ),
            ttl_seconds: 0,
        },
    )]);
    let lookups = Arc::new(SqlLookups::new(&lookups, &databases).expect("lookups"));
    let rows = lookups.query("alarm_actions", vec![definition.clone(), "ALARM".into()]).await.expect("rows");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let columns: Vec<&str> = rows[0].iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(columns, ["id", "type", "name", "address", "period"]);
    assert!(matches!(&rows[0][0].1, Cell::Text(id) if *id == method), "{rows:?}");
    assert!(matches!(&rows[0][1].1, Cell::Text(t) if t == "WEBHOOK"), "{rows:?}");
    assert!(matches!(rows[0][4].1, Cell::Integer(60)), "{rows:?}");
    let none = lookups.query("alarm_actions", vec![definition.clone(), "OK".into()]).await.expect("no rows");
    assert!(none.is_empty());
    assert_eq!(lookups.unavailable(), 0);

    // The ledger: created on first use, outcomes overwritten, read back.
    let ledger = Ledger::new(Arc::new(db), &format!("ledger_{tag}")).expect("ledger");
    let keys: Vec<String> = (0..600).map(|i| format!("{tag}:{i}")).collect();
    let entries: Vec<(&str, Entry)> = keys.iter().map(|k| (k.as_str(), Entry::Failed)).collect();
    ledger.record(&entries).await.expect("record");
    ledger.record(&[(keys[0].as_str(), Entry::Sent), (keys[1].as_str(), Entry::Refused)]).await.expect("overwrite");
    ledger.record(&[(keys[0].as_str(), Entry::Failed)]).await.expect("never downgraded");
    let all: Vec<&str> = keys.iter().map(String::as_str).collect();
    let found = ledger.entries(&all).await.expect("entries");
    assert_eq!(found.len(), 600);
    assert_eq!(found[&keys[0]], Entry::Sent);
    assert_eq!(found[&keys[1]], Entry::Refused);
    assert_eq!(found[&keys[2]], Entry::Failed);
    assert!(ledger.entries(&["never-seen"]).await.expect("empty").is_empty());
}

#[tokio::test]
async fn mariadb_answers_monasca_queries_and_keeps_the_ledger() {
    exercise(mariadb(), "maria").await;
}

#[tokio::test]
async fn postgresql_answers_monasca_queries_and_keeps_the_ledger() {
    exercise(postgres(), "pg").await;
}

#[tokio::test]
async fn a_database_that_does_not_answer_is_unavailable_not_a_bad_query() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    for config in [
        DatabaseConfig::Mysql { url: Secret(format!("mysql://u:p@127.0.0.1:{port}/mon")) },
        DatabaseConfig::Postgresql { url: Secret(format!("postgresql://u:p@127.0.0.1:{port}/mon")) },
    ] {
        let databases = open_all(&BTreeMap::from([("mon".to_string(), config)])).expect("opened lazily");
        let lookups = BTreeMap::from([(
            "q".to_string(),
            LookupConfig { database: "mon".into(), query: "SELECT 1".into(), ttl_seconds: 0 },
        )]);
        let lookups = Arc::new(SqlLookups::new(&lookups, &databases).expect("lookups"));
        let err = lookups.query("q", vec![]).await.expect_err("nothing answers");
        assert!(err.contains("unavailable"), "{err}");
        assert!(!err.contains(":p@"), "the URL's password is not in errors: {err}");
        assert_eq!(lookups.unavailable(), 1);
    }
}
