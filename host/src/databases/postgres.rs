//! PostgreSQL through one `tokio-postgres` client (it pipelines concurrent
//! queries), connected at first use and again after the connection drops.
//! Statements are sent with their parameter types (all `text`), in one
//! round trip, unprepared.

use super::Failure;
use crate::engine::sandbox::Row;
use crate::engine::types::Cell;
use tokio::sync::Mutex;
use tokio_postgres::types::{FromSql, ToSql, Type};
use tokio_postgres::{Client, NoTls};

pub(super) struct Postgres {
    url: String,
    client: Mutex<Option<std::sync::Arc<Client>>>,
}

impl Postgres {
    pub(super) fn new(url: &str) -> Result<Self, String> {
        url.parse::<tokio_postgres::Config>().map_err(|_| "the url is not a valid postgresql:// URL".to_string())?;
        Ok(Postgres { url: url.to_string(), client: Mutex::new(None) })
    }

    /// After the database did not answer, drop the connection: the next
    /// call connects afresh.
    pub(super) fn forget_after(&self, failure: &Failure) {
        if let (Failure::Unavailable(_), Ok(mut slot)) = (failure, self.client.try_lock()) {
            *slot = None;
        }
    }

    async fn client(&self) -> Result<std::sync::Arc<Client>, Failure> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .map_err(|e| Failure::Unavailable(format!("cannot connect: {e}")))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "postgresql connection closed");
            }
        });
        let client = std::sync::Arc::new(client);
        *slot = Some(client.clone());
        Ok(client)
    }

    pub(super) async fn query(&self, sql: &str, params: &[String]) -> Result<Vec<Row>, Failure> {
        let client = self.client().await?;
        let rows = client.query_typed(sql, &text_params(params)).await.map_err(|e| failure("query failed", e))?;
        rows.iter()
            .map(|row| {
                row.columns()
                    .iter()
                    .enumerate()
                    .map(|(i, column)| Ok((column.name().to_string(), cell(row, i, column.type_())?)))
                    .collect()
            })
            .collect::<Result<_, String>>()
            .map_err(Failure::Statement)
    }

    /// Prepare `sql` on the server (not run), its parameters as `text`:
    /// first as the server infers them, to count them, then as the host
    /// binds them.
    pub(super) async fn prepare(&self, sql: &str) -> Result<(), Failure> {
        let client = self.client().await?;
        let inferred = client.prepare(sql).await.map_err(|e| failure("cannot prepare the query", e))?;
        let text = vec![Type::TEXT; inferred.params().len()];
        client
            .prepare_typed(sql, &text)
            .await
            .map_err(|e| failure("cannot prepare the query with text parameters", e))?;
        Ok(())
    }

    pub(super) async fn execute(&self, sql: &str, params: &[String]) -> Result<u64, Failure> {
        let client = self.client().await?;
        client.execute_typed(sql, &text_params(params)).await.map_err(|e| failure("statement failed", e))
    }
}

/// Every parameter is bound as `text` (the guest's parameters are strings):
/// a query casts it where a column is not text (`$1::int`).
fn text_params(params: &[String]) -> Vec<(&(dyn ToSql + Sync), Type)> {
    params.iter().map(|p| (p as &(dyn ToSql + Sync), Type::TEXT)).collect()
}

/// A closed connection or a transient server condition means the database
/// did not answer; other errors are the statement's.
fn failure(what: &str, e: tokio_postgres::Error) -> Failure {
    let reason = format!("{what}: {e}");
    let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
    // SQLSTATE classes 08 (connection), 40 (rolled back: deadlock,
    // serialization), 53 (out of resources), 57 (shutting down, cancelled).
    let transient = e.code().is_some_and(|c| ["08", "40", "53", "57"].iter().any(|class| c.code().starts_with(class)));
    if e.is_closed() || io || transient {
        Failure::Unavailable(reason)
    } else {
        Failure::Statement(reason)
    }
}

/// Any column's value as its text or bytes (enums, numerics, dates...).
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw.to_vec()))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

fn cell(row: &tokio_postgres::Row, i: usize, ty: &Type) -> Result<Cell, String> {
    let failed = |e: tokio_postgres::Error| format!("column {i}: {e}");
    let cell = match *ty {
        Type::INT2 => row.try_get::<_, Option<i16>>(i).map_err(failed)?.map(|v| Cell::Integer(v.into())),
        Type::INT4 => row.try_get::<_, Option<i32>>(i).map_err(failed)?.map(|v| Cell::Integer(v.into())),
        Type::INT8 => row.try_get::<_, Option<i64>>(i).map_err(failed)?.map(Cell::Integer),
        Type::FLOAT4 => row.try_get::<_, Option<f32>>(i).map_err(failed)?.map(|v| Cell::Float(v.into())),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(i).map_err(failed)?.map(Cell::Float),
        Type::BOOL => row.try_get::<_, Option<bool>>(i).map_err(failed)?.map(|v| Cell::Integer(v.into())),
        Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i).map_err(failed)?.map(Cell::Bytes),
        _ => row.try_get::<_, Option<Raw>>(i).map_err(failed)?.map(|Raw(bytes)| match String::from_utf8(bytes) {
            Ok(text) => Cell::Text(text),
            Err(e) => Cell::Bytes(e.into_bytes()),
        }),
    };
    Ok(cell.unwrap_or(Cell::Null))
}
