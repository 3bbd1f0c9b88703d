//! SQLite files: one connection behind a mutex (queries are local and
//! short), read-only for lookups.

use super::Failure;
use crate::engine::sandbox::Row;
use crate::engine::types::Cell;
use std::path::Path;
use std::sync::Mutex;

/// `set_up()`, again while it fails on another connection's lock, for up
/// to 30 seconds: SQLite does not wait on the lock a second process holds
/// while it switches the same file to WAL (two hosts started beside each
/// other, opening one file), it answers "database is locked" at once.
pub(crate) fn retry_while_busy<T>(
    mut set_up: impl FnMut() -> Result<T, rusqlite::Error>,
) -> Result<T, rusqlite::Error> {
    let started = std::time::Instant::now();
    loop {
        match set_up() {
            Err(e) if is_busy(&e) && started.elapsed() < std::time::Duration::from_secs(30) => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            done => return done,
        }
    }
}

/// Whether `error` is another connection's lock.
fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(error.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

pub(super) struct Sqlite {
    connection: Mutex<rusqlite::Connection>,
}

impl Sqlite {
    pub(super) fn open(path: &Path, writable: bool) -> Result<Self, String> {
        use rusqlite::OpenFlags;
        let flags = if writable {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let connection = retry_while_busy(|| {
            let connection = rusqlite::Connection::open_with_flags(path, flags)?;
            if writable {
                connection.execute_batch(
                    "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
                )?;
            }
            Ok(connection)
        })
        .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Sqlite { connection: Mutex::new(connection) })
    }

    pub(super) fn query(&self, sql: &str, params: &[String]) -> Result<Vec<Row>, Failure> {
        self.rows(sql, params).map_err(Failure::Statement)
    }

    fn rows(&self, sql: &str, params: &[String]) -> Result<Vec<Row>, String> {
        let connection = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        let (mut cached, mut plain) = (None, None);
        let statement = prepare(&connection, sql, params, &mut cached, &mut plain)
            .map_err(|e| format!("cannot prepare the query: {e}"))?;
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
                    ValueRef::Blob(b) => Cell::Bytes(b.to_vec()),
                };
                cells.push((name.clone(), cell));
            }
            out.push(cells);
        }
        Ok(out)
    }

    /// Prepare `sql` (not run): it must parse, name what exists, and only read.
    pub(super) fn prepare(&self, sql: &str) -> Result<(), Failure> {
        let connection = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        let statement =
            connection.prepare(sql).map_err(|e| Failure::Statement(format!("cannot prepare the query: {e}")))?;
        if !statement.readonly() {
            return Err(Failure::Statement("the query would write".to_string()));
        }
        Ok(())
    }

    pub(super) fn execute(&self, sql: &str, params: &[String]) -> Result<u64, Failure> {
        let connection = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        let (mut cached, mut plain) = (None, None);
        let statement = prepare(&connection, sql, params, &mut cached, &mut plain)
            .map_err(|e| Failure::Statement(format!("cannot prepare: {e}")))?;
        let changed = statement
            .execute(rusqlite::params_from_iter(params.iter()))
            .map_err(|e| Failure::Statement(e.to_string()))?;
        Ok(changed as u64)
    }
}

/// A statement with parameters from the connection's cache (lookups run the
/// same few again and again); one without, which carries its values in its
/// text (the ledger's), prepared afresh so it does not push those out.
fn prepare<'c, 's>(
    connection: &'c rusqlite::Connection,
    sql: &str,
    params: &[String],
    cached: &'s mut Option<rusqlite::CachedStatement<'c>>,
    plain: &'s mut Option<rusqlite::Statement<'c>>,
) -> rusqlite::Result<&'s mut rusqlite::Statement<'c>> {
    if params.is_empty() {
        Ok(plain.insert(connection.prepare(sql)?))
    } else {
        Ok(cached.insert(connection.prepare_cached(sql)?))
    }
}
