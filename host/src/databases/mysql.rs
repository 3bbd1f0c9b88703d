//! MariaDB and MySQL through `mysql_async`'s connection pool (prepared
//! statements for parameterised SQL, text for the host's own; the pool
//! reconnects after a failure).

use super::Failure;
use crate::engine::sandbox::Row;
use crate::engine::types::Cell;
use mysql_async::prelude::Queryable;
use mysql_async::{Opts, Params, Pool, Value};

pub(super) struct Mysql {
    pool: Pool,
}

impl Mysql {
    pub(super) fn new(url: &str) -> Result<Self, String> {
        // The driver's message may quote the URL: say only what is wrong.
        let opts = Opts::from_url(url).map_err(|_| "the url is not a valid mysql:// URL".to_string())?;
        Ok(Mysql { pool: Pool::new(opts) })
    }

    fn params(params: &[String]) -> Params {
        if params.is_empty() {
            Params::Empty
        } else {
            Params::Positional(params.iter().map(|p| Value::Bytes(p.as_bytes().to_vec())).collect())
        }
    }

    pub(super) async fn query(&self, sql: &str, params: &[String]) -> Result<Vec<Row>, Failure> {
        let mut conn = self.pool.get_conn().await.map_err(|e| failure("cannot connect", e))?;
        let rows: Vec<mysql_async::Row> =
            conn.exec(sql, Self::params(params)).await.map_err(|e| failure("query failed", e))?;
        Ok(rows.into_iter().map(row).collect())
    }

    pub(super) async fn execute(&self, sql: &str, params: &[String]) -> Result<u64, Failure> {
        let mut conn = self.pool.get_conn().await.map_err(|e| failure("cannot connect", e))?;
        conn.exec_drop(sql, Self::params(params)).await.map_err(|e| failure("statement failed", e))?;
        Ok(conn.affected_rows())
    }

    /// Prepare `sql` on the server (not run) and close the statement.
    pub(super) async fn prepare(&self, sql: &str) -> Result<(), Failure> {
        let mut conn = self.pool.get_conn().await.map_err(|e| failure("cannot connect", e))?;
        let statement = conn.prep(sql).await.map_err(|e| failure("cannot prepare the query", e))?;
        conn.close(statement).await.map_err(|e| failure("cannot close the statement", e))?;
        Ok(())
    }

    /// A query as text (no prepared statement: one round trip). Every
    /// value comes back as text.
    pub(super) async fn query_text(&self, sql: &str) -> Result<Vec<Row>, Failure> {
        let mut conn = self.pool.get_conn().await.map_err(|e| failure("cannot connect", e))?;
        let rows: Vec<mysql_async::Row> = conn.query(sql).await.map_err(|e| failure("query failed", e))?;
        Ok(rows.into_iter().map(row).collect())
    }

    /// A statement as text (no prepared statement: one round trip).
    pub(super) async fn execute_text(&self, sql: &str) -> Result<u64, Failure> {
        let mut conn = self.pool.get_conn().await.map_err(|e| failure("cannot connect", e))?;
        conn.query_drop(sql).await.map_err(|e| failure("statement failed", e))?;
        Ok(conn.affected_rows())
    }
}

/// MySQL error codes that say "not now" rather than "not this statement":
/// too many connections, shutting down, lock wait timeout, deadlock, query
/// interrupted, connection killed.
const TRANSIENT: [u16; 6] = [1040, 1053, 1205, 1213, 1317, 1927];

/// A server's refusal is the statement's fault, except the transient ones;
/// anything else (I/O, a closed connection, the pool) means the database
/// did not answer.
fn failure(what: &str, e: mysql_async::Error) -> Failure {
    let reason = format!("{what}: {e}");
    match e {
        mysql_async::Error::Server(ref server) if !TRANSIENT.contains(&server.code) => Failure::Statement(reason),
        _ => Failure::Unavailable(reason),
    }
}

fn row(row: mysql_async::Row) -> Row {
    let columns = row.columns();
    let values = row.unwrap();
    columns.iter().zip(values).map(|(c, v)| (c.name_str().into_owned(), cell(v))).collect()
}

fn cell(value: Value) -> Cell {
    match value {
        Value::NULL => Cell::Null,
        Value::Int(v) => Cell::Integer(v),
        Value::UInt(v) => i64::try_from(v).map(Cell::Integer).unwrap_or(Cell::Float(v as f64)),
        Value::Float(v) => Cell::Float(f64::from(v)),
        Value::Double(v) => Cell::Float(v),
        Value::Bytes(b) => match String::from_utf8(b) {
            Ok(text) => Cell::Text(text),
            Err(e) => Cell::Bytes(e.into_bytes()),
        },
        other @ (Value::Date(..) | Value::Time(..)) => Cell::Text(other.as_sql(true).trim_matches('\'').to_string()),
    }
}
