//! The SQL databases named in `[databases]`: SQLite files, MariaDB/MySQL
//! and PostgreSQL, behind one small interface. Lookups run the operator's
//! named queries through it (read-only), and the notification ledger keeps
//! its table in one of them. Network databases connect lazily and reconnect
//! after a failure, so a database that is down at start-up or restarts
//! later is an error for the calls made meanwhile, not for the host.

mod mysql;
mod postgres;
pub(crate) mod sqlite;

use crate::config::DatabaseConfig;
use crate::engine::sandbox::Row;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Why a database could not be opened or answered.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The database could not be opened or reached.
    #[error("database `{name}`: cannot connect: {reason}")]
    Connect {
        /// Its name in `[databases]`.
        name: String,
        /// What the driver said (credentials are not part of it).
        reason: String,
    },
    /// The database did not answer (down, unreachable, connection lost).
    #[error("database `{name}` is unavailable: {reason}")]
    Unavailable {
        /// Its name in `[databases]`.
        name: String,
        /// What the driver said.
        reason: String,
    },
    /// A statement failed.
    #[error("database `{name}`: {reason}")]
    Query {
        /// Its name in `[databases]`.
        name: String,
        /// What the driver said.
        reason: String,
    },
}

/// How a backend call failed.
pub(crate) enum Failure {
    /// No answer: the database is down or the connection broke.
    Unavailable(String),
    /// The database refused the statement.
    Statement(String),
}

impl DatabaseError {
    /// True when the database did not answer (worth retrying later).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, DatabaseError::Connect { .. } | DatabaseError::Unavailable { .. })
    }
}

/// The SQL dialect of a database, for the few statements the host writes itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite: `?1` parameters, `ON CONFLICT`.
    Sqlite,
    /// MariaDB/MySQL: `?` parameters, `ON DUPLICATE KEY`.
    Mysql,
    /// PostgreSQL: `$1` parameters, `ON CONFLICT`.
    Postgresql,
}

impl Dialect {
    /// The placeholder of the `n`th parameter (from 1).
    pub fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Mysql => "?".to_string(),
            Dialect::Postgresql => format!("${n}"),
        }
    }
}

/// One configured database.
pub struct Database {
    name: String,
    backend: Backend,
}

enum Backend {
    Sqlite(Arc<sqlite::Sqlite>),
    Mysql(mysql::Mysql),
    Postgresql(postgres::Postgres),
}

impl Database {
    /// Open a database as configured; SQLite files are opened read-only
    /// unless `writable`. Network databases connect at their first use.
    pub fn open(name: &str, config: &DatabaseConfig, writable: bool) -> Result<Self, DatabaseError> {
        let connect_error = |reason: String| DatabaseError::Connect { name: name.to_string(), reason };
        let url = |configured: &crate::config::Secret| {
            let variable = format!("MONASCA_WASM_DATABASE_{}_URL", name.to_ascii_uppercase().replace('-', "_"));
            std::env::var(variable).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| configured.0.clone())
        };
        let backend = match config {
            DatabaseConfig::Sqlite { path } => {
                Backend::Sqlite(Arc::new(sqlite::Sqlite::open(path, writable).map_err(connect_error)?))
            }
            DatabaseConfig::Mysql { url: u } => Backend::Mysql(mysql::Mysql::new(&url(u)).map_err(connect_error)?),
            DatabaseConfig::Postgresql { url: u } => {
                Backend::Postgresql(postgres::Postgres::new(&url(u)).map_err(connect_error)?)
            }
        };
        Ok(Database { name: name.to_string(), backend })
    }

    /// A writable SQLite file (created when missing), e.g. the embedded ledger.
    pub fn sqlite_file(name: &str, path: &Path) -> Result<Self, DatabaseError> {
        let connect_error = |reason: String| DatabaseError::Connect { name: name.to_string(), reason };
        let backend = Backend::Sqlite(Arc::new(sqlite::Sqlite::open(path, true).map_err(connect_error)?));
        Ok(Database { name: name.to_string(), backend })
    }

    /// Its name in `[databases]`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its SQL dialect.
    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Mysql(_) => Dialect::Mysql,
            Backend::Postgresql(_) => Dialect::Postgresql,
        }
    }

    /// Run a query with text parameters; rows as (column, typed cell) pairs.
    pub async fn query(&self, sql: &str, params: &[String]) -> Result<Vec<Row>, DatabaseError> {
        let answer = match &self.backend {
            Backend::Sqlite(db) => off_runtime(db, sql, params, |db, sql, params| db.query(sql, params)).await,
            Backend::Mysql(db) => answer_within(db.query(sql, params)).await,
            Backend::Postgresql(db) => answer_within(db.query(sql, params)).await.inspect_err(|f| db.forget_after(f)),
        };
        answer.map_err(|f| self.error(f))
    }

    fn error(&self, failure: Failure) -> DatabaseError {
        let name = self.name.clone();
        match failure {
            Failure::Unavailable(reason) => DatabaseError::Unavailable { name, reason },
            Failure::Statement(reason) => DatabaseError::Query { name, reason },
        }
    }

    /// Run a statement that returns no rows; the number of rows it changed.
    pub async fn execute(&self, sql: &str, params: &[String]) -> Result<u64, DatabaseError> {
        let answer = match &self.backend {
            Backend::Sqlite(db) => off_runtime(db, sql, params, |db, sql, params| db.execute(sql, params)).await,
            Backend::Mysql(db) => answer_within(db.execute(sql, params)).await,
            Backend::Postgresql(db) => answer_within(db.execute(sql, params)).await.inspect_err(|f| db.forget_after(f)),
        };
        answer.map_err(|f| self.error(f))
    }

    /// Prepare `sql` without running it: the database parses it and
    /// resolves its tables and columns (PostgreSQL: with its parameters
    /// bound as `text`, as [`Database::query`] binds them; SQLite: it must
    /// also only read). What `monasca-wasm validate` does with each lookup.
    pub async fn prepare(&self, sql: &str) -> Result<(), DatabaseError> {
        let answer = match &self.backend {
            Backend::Sqlite(db) => off_runtime(db, sql, &[], |db, sql, _| db.prepare(sql)).await,
            Backend::Mysql(db) => answer_within(db.prepare(sql)).await,
            Backend::Postgresql(db) => answer_within(db.prepare(sql)).await.inspect_err(|f| db.forget_after(f)),
        };
        answer.map_err(|f| self.error(f))
    }

    /// Run a query whose values are written into its text (no parameters):
    /// one round trip, no prepared statement. For SQL the host writes from
    /// values it made itself (the notification ledger's digests), never
    /// for an operator's or a guest's input. Values may come back as text.
    pub async fn query_text(&self, sql: &str) -> Result<Vec<Row>, DatabaseError> {
        match &self.backend {
            Backend::Mysql(db) => answer_within(db.query_text(sql)).await.map_err(|f| self.error(f)),
            Backend::Sqlite(_) | Backend::Postgresql(_) => self.query(sql, &[]).await,
        }
    }

    /// Run a statement whose values are written into its text (as
    /// [`Database::query_text`]); the number of rows it changed.
    pub async fn execute_text(&self, sql: &str) -> Result<u64, DatabaseError> {
        match &self.backend {
            Backend::Mysql(db) => answer_within(db.execute_text(sql)).await.map_err(|f| self.error(f)),
            Backend::Sqlite(_) | Backend::Postgresql(_) => self.execute(sql, &[]).await,
        }
    }
}

/// Run a SQLite call on tokio's blocking threads: a file lock can make it
/// wait (the ledger's `busy_timeout`), which must not stall the runtime.
async fn off_runtime<T: Send + 'static>(
    db: &Arc<sqlite::Sqlite>,
    sql: &str,
    params: &[String],
    call: fn(&sqlite::Sqlite, &str, &[String]) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let (db, sql, params) = (db.clone(), sql.to_string(), params.to_vec());
    tokio::task::spawn_blocking(move || call(&db, &sql, &params))
        .await
        .unwrap_or_else(|e| Err(Failure::Statement(format!("database task failed: {e}"))))
}

/// How long a network database may take to answer before it counts as unavailable.
const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(15);

/// `call`'s answer, or "unavailable" when none comes in time (a
/// half-open connection would otherwise hold the partition forever).
async fn answer_within<T>(call: impl std::future::Future<Output = Result<T, Failure>>) -> Result<T, Failure> {
    tokio::time::timeout(ANSWER_WITHIN, call)
        .await
        .unwrap_or_else(|_| Err(Failure::Unavailable(format!("no answer within {} s", ANSWER_WITHIN.as_secs()))))
}

/// Open every configured database for lookups (SQLite read-only).
pub fn open_all(config: &BTreeMap<String, DatabaseConfig>) -> Result<BTreeMap<String, Arc<Database>>, DatabaseError> {
    config.iter().map(|(name, c)| Ok((name.clone(), Arc::new(Database::open(name, c, false)?)))).collect()
}
