//! The guest's `lookup` import, answered from SQL databases: each pipeline
//! names the read-only, parameterised queries its guest may run
//! (`[pipeline.lookups.<name>]`), and the answers are cached per parameters
//! for the query's TTL in a bounded cache (`lookup_cache`). A guest can run no other query, and cannot write:
//! SQLite files are opened read-only, and a query must be a `SELECT` (checked
//! with the configuration); the databases themselves are `crate::databases`.

use crate::config::LookupConfig;
use crate::databases::Database;
use crate::engine::sandbox::{LookupFuture, Row};
use crate::engine::Lookups;
use crate::lookup_cache::{AnswerCache, CacheKey};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why the lookups could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// A lookup names a database that is not configured.
    #[error("lookup `{0}` names a database that is not configured")]
    NoDatabase(String),
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
    cache: Mutex<AnswerCache>,
    unavailable: AtomicU64,
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
        Ok(SqlLookups { queries, cache: Mutex::default(), unavailable: AtomicU64::new(0) })
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, AnswerCache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cached(&self, key: &CacheKey, ttl: Duration) -> Option<Vec<Row>> {
        self.cache().get(key, ttl)
    }
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
            let query = lookups.queries.get(&key.0).ok_or("lookup vanished")?;
            let answer = query.database.query(&query.sql, &key.1).await.map_err(|e| {
                if e.is_unavailable() {
                    lookups.unavailable.fetch_add(1, Ordering::Relaxed);
                }
                e.to_string()
            })?;
            if !ttl.is_zero() {
                lookups.cache().insert(key, answer.clone());
            }
            Ok(answer)
        })
    }

    fn unavailable(&self) -> u64 {
        self.unavailable.load(Ordering::Relaxed)
    }

    fn cache_size(&self) -> (u64, u64) {
        self.cache().size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::types::Cell;

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
        let config = BTreeMap::from([("monasca".to_string(), crate::config::DatabaseConfig::Sqlite { path })]);
        let databases = crate::databases::open_all(&config).expect("open");
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
        let err = database.execute("DELETE FROM notification_method", &[]).await.expect_err("read-only").to_string();
        assert!(err.contains("readonly") || err.contains("read-only") || err.contains("query failed"), "{err}");
    }
}
