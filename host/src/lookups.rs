//! The guest's `lookup` import, answered from SQL databases: each pipeline
//! names the read-only, parameterised queries its guest may run
//! (`[pipeline.lookups.<name>]`), and the answers are cached per parameters
//! for the query's TTL. A guest can run no other query, and cannot write:
//! SQLite files are opened read-only (MariaDB and PostgreSQL come with the
//! notification pipeline).

use crate::config::{DatabaseConfig, LookupConfig};
use crate::engine::sandbox::{LookupFuture, Row};
use crate::engine::types::Cell;
use crate::engine::Lookups;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why the lookups could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// A database could not be opened.
    #[error("database `{name}`: cannot open {path}: {reason}")]
    Open {
        /// Its name in `[databases]`.
        name: String,
        /// The file.
        path: String,
        /// What SQLite said.
        reason: String,
    },
    /// A lookup names a database that is not configured.
    #[error("lookup `{0}` names a database that is not configured")]
    NoDatabase(String),
}

/// One open database.
pub struct Database {
    connection: Mutex<rusqlite::Connection>,
}

/// One named query.
struct Query {
    database: Arc<Database>,
    sql: String,
    ttl: Duration,
}

/// A pipeline's named queries and their cache.
pub struct SqlLookups {
    queries: HashMap<String, Query>,
    cache: Mutex<HashMap<CacheKey, (Instant, Vec<Row>)>>,
}

/// A lookup's name and parameters.
type CacheKey = (String, Vec<String>);

/// Open the configured databases (read-only).
pub fn open_databases(
    config: &BTreeMap<String, DatabaseConfig>,
) -> Result<BTreeMap<String, Arc<Database>>, LookupError> {
    config
        .iter()
        .map(|(name, database)| {
            let DatabaseConfig::Sqlite { path } = database;
            let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let connection = rusqlite::Connection::open_with_flags(path, flags).map_err(|e| LookupError::Open {
                name: name.clone(),
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            Ok((name.clone(), Arc::new(Database { connection: Mutex::new(connection) })))
        })
        .collect()
}

impl SqlLookups {
    /// The lookups of one pipeline over the open databases.
    pub fn new(
        lookups: &BTreeMap<String, LookupConfig>,
        databases: &BTreeMap<String, Arc<Database>>,
    ) -> Result<Self, LookupError> {
        let queries = lookups
            .iter()
            .map(|(name, lookup)| {
                let database =
                    databases.get(&lookup.database).cloned().ok_or_else(|| LookupError::NoDatabase(name.clone()))?;
                let ttl = Duration::from_secs(lookup.ttl_seconds);
                Ok((name.clone(), Query { database, sql: lookup.query.clone(), ttl }))
            })
            .collect::<Result<_, LookupError>>()?;
        Ok(SqlLookups { queries, cache: Mutex::new(HashMap::new()) })
    }

    fn cached(&self, key: &CacheKey, ttl: Duration) -> Option<Vec<Row>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(key).filter(|(at, _)| at.elapsed() < ttl).map(|(_, rows)| rows.clone())
    }
}

/// Run `sql` with text parameters; columns typed as SQLite stores them.
fn run(database: &Database, sql: &str, params: &[String]) -> Result<Vec<Row>, String> {
    let connection = database.connection.lock().unwrap_or_else(|p| p.into_inner());
    let mut statement = connection.prepare_cached(sql).map_err(|e| format!("cannot prepare the query: {e}"))?;
    let names: Vec<String> = statement.column_names().iter().map(|n| n.to_string()).collect();
    let mut rows =
        statement.query(rusqlite::params_from_iter(params.iter())).map_err(|e| format!("query failed: {e}"))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(|e| format!("query failed: {e}"))? {
        let mut cells = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            use rusqlite::types::ValueRef;
            let cell = match row.get_ref(i).map_err(|e| e.to_string())? {
                ValueRef::Null => Cell::Null,
                ValueRef::Integer(v) => Cell::Integer(v),
                ValueRef::Real(v) => Cell::Float(v),
                ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Cell::Text(String::from_utf8_lossy(b).into_owned()),
            };
            cells.push((name.clone(), cell));
        }
        out.push(cells);
    }
    Ok(out)
}

impl Lookups for Arc<SqlLookups> {
    fn query(&self, name: &str, params: Vec<String>) -> LookupFuture {
        let Some(query) = self.queries.get(name) else {
            let reason = format!("no lookup named `{name}` is configured for this pipeline");
            return Box::pin(async move { Err(reason) });
        };
        let key = (name.to_string(), params);
        if let Some(rows) = self.cached(&key, query.ttl) {
            return Box::pin(async move { Ok(rows) });
        }
        let (lookups, ttl) = (self.clone(), query.ttl);
        Box::pin(async move {
            let answer = tokio::task::spawn_blocking({
                let lookups = lookups.clone();
                let key = key.clone();
                move || {
                    let query = lookups.queries.get(&key.0).ok_or("lookup vanished")?;
                    run(&query.database, &query.sql, &key.1)
                }
            })
            .await
            .map_err(|e| format!("lookup task failed: {e}"))??;
            if !ttl.is_zero() {
                lookups.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(key, (Instant::now(), answer.clone()));
            }
            Ok(answer)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Arc<SqlLookups>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("monasca.sqlite");
        let db = rusqlite::Connection::open(&path).expect("create");
        db.execute_batch(
            "CREATE TABLE notification_method (id TEXT, name TEXT, type TEXT, address TEXT, period INTEGER);
             INSERT INTO notification_method VALUES ('m1', 'ops', 'WEBHOOK', 'http://127.0.0.1:1/hook', 0);
             INSERT INTO notification_method VALUES ('m2', 'pager', 'EMAIL', 'ops@example.org', 60);",
        )
        .expect("fill");
        let databases =
            open_databases(&BTreeMap::from([("monasca".to_string(), DatabaseConfig::Sqlite { path })])).expect("open");
        let lookups = BTreeMap::from([(
            "methods".to_string(),
            LookupConfig {
                database: "monasca".into(),
                query: "SELECT id, type, address, period FROM notification_method WHERE type = ?1 ORDER BY id".into(),
                ttl_seconds: 60,
            },
        )]);
        (dir, Arc::new(SqlLookups::new(&lookups, &databases).expect("lookups")))
    }

    #[tokio::test]
    async fn named_queries_answer_typed_rows_and_are_cached() {
        let (dir, lookups) = setup();
        let rows = lookups.query("methods", vec!["EMAIL".into()]).await.expect("rows");
        assert_eq!(rows.len(), 1);
        assert!(matches!(&rows[0][0], (name, Cell::Text(id)) if name == "id" && id == "m2"), "{rows:?}");
        assert!(matches!(&rows[0][3], (name, Cell::Integer(60)) if name == "period"), "{rows:?}");
        // Changed underneath: the cached answer is reused within the TTL.
        let writer = rusqlite::Connection::open(dir.path().join("monasca.sqlite")).expect("writer");
        writer.execute("DELETE FROM notification_method", []).expect("delete");
        assert_eq!(lookups.query("methods", vec!["EMAIL".into()]).await.expect("cached").len(), 1);
        assert_eq!(lookups.query("methods", vec!["WEBHOOK".into()]).await.expect("fresh").len(), 0);
    }

    #[tokio::test]
    async fn only_named_queries_run_and_nothing_writes() {
        let (_dir, lookups) = setup();
        let err = lookups.query("DROP TABLE notification_method", vec![]).await.expect_err("unnamed");
        assert!(err.contains("no lookup named"), "{err}");
        let database = lookups.queries["methods"].database.clone();
        let err = run(&database, "DELETE FROM notification_method", &[]).expect_err("read-only");
        assert!(err.contains("readonly") || err.contains("read-only") || err.contains("query failed"), "{err}");
    }
}
