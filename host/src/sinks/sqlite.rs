//! The embedded sink: points in a SQLite file, for a laptop and the
//! quickstart, with the same identity as InfluxDB (series key + timestamp:
//! writing a point again replaces it, so a replay leaves one row).
//!
//! Schema (created when missing):
//!
//! ```sql
//! CREATE TABLE points (
//!     database    TEXT    NOT NULL,  -- `mon`, or `mon_<tenant>` with db_per_tenant
//!     series      TEXT    NOT NULL,  -- measurement and tags as in line protocol
//!     time_ms     INTEGER NOT NULL,  -- milliseconds since the Unix epoch
//!     measurement TEXT    NOT NULL,  -- the measurement, escaped as in line protocol
//!     fields      TEXT    NOT NULL,  -- the field set as in line protocol
//!     PRIMARY KEY (database, series, time_ms)
//! ) WITHOUT ROWID;
//! ```
//!
//! The file is in WAL mode with `synchronous = NORMAL`: a write that returned
//! survives the host being killed (not a power cut). Each write is one
//! transaction, run on the blocking pool.

use super::{database_for, lines, Points, Refused, SinkError};
use crate::config::SqliteConfig;
use rusqlite::Connection;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS points (
    database    TEXT    NOT NULL,
    series      TEXT    NOT NULL,
    time_ms     INTEGER NOT NULL,
    measurement TEXT    NOT NULL,
    fields      TEXT    NOT NULL,
    PRIMARY KEY (database, series, time_ms)
) WITHOUT ROWID;
";

const UPSERT: &str = "
INSERT INTO points (database, series, time_ms, measurement, fields) VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (database, series, time_ms) DO UPDATE SET fields = excluded.fields
";

/// A SQLite file sink.
pub struct SqliteSink {
    name: String,
    path: PathBuf,
    database: String,
    per_tenant: bool,
    connection: Arc<Mutex<Connection>>,
}

/// Open `path` in WAL mode with the sink's schema.
fn prepare(path: &std::path::Path) -> Result<Connection, rusqlite::Error> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(std::time::Duration::from_secs(30))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.execute_batch(SCHEMA)?;
    Ok(connection)
}

impl SqliteSink {
    /// Open (or create) the file and its table.
    pub fn open(name: &str, config: &SqliteConfig) -> Result<Self, SinkError> {
        let setup = |e: rusqlite::Error| SinkError::Setup {
            sink: name.to_string(),
            reason: format!("{}: {e}", config.path.display()),
        };
        if let Some(dir) = config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| SinkError::Setup {
                sink: name.to_string(),
                reason: format!("cannot create {}: {e}", dir.display()),
            })?;
        }
        let connection = crate::databases::sqlite::retry_while_busy(|| prepare(&config.path)).map_err(setup)?;
        Ok(SqliteSink {
            name: name.to_string(),
            path: config.path.clone(),
            database: config.database.clone(),
            per_tenant: config.db_per_tenant,
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// For the start-up banner.
    pub fn describe(&self) -> String {
        let tenants = if self.per_tenant { " (one database per tenant)" } else { "" };
        format!("SQLite file {}, database `{}`{tenants}", self.path.display(), self.database)
    }

    /// Store the points in one transaction; lines that are not line protocol
    /// are refused.
    pub async fn write(&self, points: Points<'_>) -> Result<Vec<Refused>, SinkError> {
        let database = database_for(&self.database, self.per_tenant, points.tenant);
        let body = points.body.to_vec();
        let connection = self.connection.clone();
        let name = self.name.clone();
        let fatal = move |e: String| SinkError::Fatal { sink: name.clone(), reason: e };
        tokio::task::spawn_blocking(move || {
            let mut connection = connection.lock().unwrap_or_else(|p| p.into_inner());
            let transaction = connection.transaction().map_err(|e| e.to_string())?;
            let mut refused = Vec::new();
            {
                let mut upsert = transaction.prepare_cached(UPSERT).map_err(|e| e.to_string())?;
                for (i, line) in lines::split(&body).enumerate() {
                    match lines::parse(line) {
                        Ok(p) => {
                            upsert
                                .execute((&database, p.series, p.timestamp_ms, p.measurement, p.fields))
                                .map_err(|e| e.to_string())?;
                        }
                        Err(reason) => refused.push(Refused { line: i, reason }),
                    }
                }
            }
            transaction.commit().map_err(|e| e.to_string())?;
            Ok(refused)
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r)
        .map_err(fatal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(dir: &std::path::Path, per_tenant: bool) -> SqliteSink {
        let config =
            SqliteConfig { path: dir.join("points.sqlite"), database: "mon".into(), db_per_tenant: per_tenant };
        SqliteSink::open("tsdb", &config).expect("sink opens")
    }

    fn rows(sink: &SqliteSink) -> Vec<(String, String, i64, String)> {
        let connection = sink.connection.lock().expect("lock");
        let mut query =
            connection.prepare("SELECT database, series, time_ms, fields FROM points ORDER BY 1, 2, 3").expect("query");
        query
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    /// Two hosts beside each other open the same file at once (the default
    /// sink of a directory): the second waits for the first's lock instead
    /// of failing with "database is locked".
    #[test]
    fn sinks_opened_at_once_on_one_file_all_open() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().to_path_buf();
            let openers: Vec<_> = (0..4)
                .map(|_| {
                    let path = path.clone();
                    std::thread::spawn(move || {
                        let config = SqliteConfig {
                            path: path.join("points.sqlite"),
                            database: "mon".into(),
                            db_per_tenant: false,
                        };
                        SqliteSink::open("tsdb", &config).map(|_| ()).map_err(|e| e.to_string())
                    })
                })
                .collect();
            for opener in openers {
                opener.join().expect("thread").expect("every sink opens");
            }
        }
    }

    #[tokio::test]
    async fn a_point_written_twice_is_one_row_and_bad_lines_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sink = sink(dir.path(), false);
        let body =
            b"cpu,host=a value=1.0 1000\nnot line protocol\ncpu,host=a value=2.0 1000\ncpu,host=b value=3.0 1000";
        let refused = sink.write(Points { tenant: Some("t1"), body }).await.expect("write");
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].line, 1);
        sink.write(Points { tenant: Some("t1"), body: b"cpu,host=b value=3.0 1000" }).await.expect("replay");
        assert_eq!(
            rows(&sink),
            vec![
                ("mon".into(), "cpu,host=a".into(), 1000, "value=2.0".into()),
                ("mon".into(), "cpu,host=b".into(), 1000, "value=3.0".into()),
            ]
        );
    }

    #[tokio::test]
    async fn tenants_get_their_own_database_when_asked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sink = sink(dir.path(), true);
        sink.write(Points { tenant: Some("t1"), body: b"m v=1 1" }).await.expect("write");
        sink.write(Points { tenant: Some("t2"), body: b"m v=1 1" }).await.expect("write");
        sink.write(Points { tenant: None, body: b"m v=1 1" }).await.expect("write");
        let databases: Vec<String> = rows(&sink).into_iter().map(|r| r.0).collect();
        assert_eq!(databases, ["mon", "mon_t1", "mon_t2"]);
    }
}
