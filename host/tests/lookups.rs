//! The guest's `lookup` import answered by the operator's named, read-only
//! SQL queries (a real SQLite file): the hostile guest's `lookup` mode runs
//! the query `methods` per message and one that was never declared.

mod common;

use common::{engine, messages};
use monasca_test_programs::HOSTILE;
use monasca_wasm::config::{DatabaseConfig, LookupConfig};
use monasca_wasm::databases::open_all as open_databases;
use monasca_wasm::lookups::SqlLookups;
use std::collections::BTreeMap;
use std::sync::Arc;

#[tokio::test]
async fn a_guest_runs_the_declared_query_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("monasca.sqlite");
    let db = rusqlite::Connection::open(&path).expect("create");
    db.execute_batch(
        "CREATE TABLE notification_method (id TEXT, type TEXT, address TEXT);
         INSERT INTO notification_method VALUES ('m1', 'WEBHOOK', 'http://127.0.0.1:1/a');
         INSERT INTO notification_method VALUES ('m2', 'WEBHOOK', 'http://127.0.0.1:1/b');
         INSERT INTO notification_method VALUES ('m3', 'EMAIL', 'ops@example.org');",
    )
    .expect("fill");
    let databases =
        open_databases(&BTreeMap::from([("monasca".to_string(), DatabaseConfig::Sqlite { path })])).expect("open");
    let lookups = BTreeMap::from([(
        "methods".to_string(),
        LookupConfig {
            database: "monasca".into(),
            query: "SELECT id FROM notification_method WHERE type = ?1 ORDER BY id".into(),
            ttl_seconds: 30,
        },
    )]);
    let lookups = Arc::new(SqlLookups::new(&lookups, &databases).expect("lookups"));

    let module = engine().load_file(HOSTILE).expect("hostile loads");
    let config = vec![("mode".to_string(), "lookup".to_string())];
    let mut instance = module.instantiate_with("lookups", config, Arc::new(lookups)).await.expect("starts");
    let effects = instance.process(&messages("alarms", &["WEBHOOK", "EMAIL", "SMS"])).await.expect("processed");
    let outputs = common::produced_values(&effects);
    assert_eq!(outputs[..3], ["WEBHOOK: 2 m1", "EMAIL: 1 m3", "SMS: 0 -"]);
    assert!(outputs[3].starts_with("undeclared: no lookup named `undeclared`"), "{}", outputs[3]);
}
