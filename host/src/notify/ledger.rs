//! The ledger of notifications, by idempotency key, in a SQL table shared by
//! every host of the group (or a local SQLite file for one host).
//!
//! A key is recorded `sent`, `failed` or `refused` once its notification's
//! outcome and follow-up records are durable, before the batch's offsets are
//! stored. A replayed batch skips keys that are `sent` or `refused`. A key
//! with no outcome (its delivery was under way when the host died) is sent
//! again, since nobody can tell whether the first attempt arrived: it goes
//! out with the same `Idempotency-Key` header or `Message-ID`, so the
//! receiver can drop the copy. `failed` keys go out again (retries). No row
//! is written before a delivery: one write per outcome, not two.
//!
//! Table (created when missing): `key_digest` (primary key: the first 16
//! bytes of the key's SHA-256, binary, so any key fits in a short, fixed
//! column that compares exactly whatever the database's collation),
//! `state`, `updated_at` (ms since the epoch). An outcome never replaces
//! `sent` or `refused`: two deliveries of one key racing (a replay beside a
//! retry) cannot make it sendable again. A table of the earlier layout (a
//! hex `idempotency_key` column) is refused with a clear error rather than
//! misread.

use crate::databases::{Database, DatabaseError, Dialect};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// The recorded outcome of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// Delivered, follow-ups produced.
    Sent,
    /// Delivery failed; a retry may send it.
    Failed,
    /// Refused (allowlist, bad destination); never sent.
    Refused,
}

impl Entry {
    fn as_str(self) -> &'static str {
        match self {
            Entry::Sent => "sent",
            Entry::Failed => "failed",
            Entry::Refused => "refused",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "sent" => Entry::Sent,
            "failed" => Entry::Failed,
            "refused" => Entry::Refused,
            _ => return None,
        })
    }

    /// True when a notification with this entry must not go out again.
    pub fn is_final(self) -> bool {
        matches!(self, Entry::Sent | Entry::Refused)
    }
}

/// Keys per statement.
const CHUNK: usize = 500;

/// Bytes of the key's SHA-256 kept: 128 bits, no collision in any ledger's life.
const DIGEST_BYTES: usize = 16;

/// How a key is stored: the start of its SHA-256, here in lower-case hex
/// (written into statements as a binary literal, read back as hex text).
fn stored(key: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(key.as_bytes())[..DIGEST_BYTES])
}

/// The ledger over one database table.
pub struct Ledger {
    database: Arc<Database>,
    table: String,
    created: OnceCell<()>,
}

impl Ledger {
    /// The ledger in `table` of `database` (created at first use).
    pub fn new(database: Arc<Database>, table: &str) -> Result<Self, String> {
        if table.is_empty() || !table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("[notifiers.ledger] table {table:?}: letters, digits and `_` only"));
        }
        Ok(Ledger { database, table: table.to_string(), created: OnceCell::new() })
    }

    /// Where it is kept, for the start-up summary.
    pub fn describe(&self) -> String {
        format!("table `{}` of database `{}`", self.table, self.database.name())
    }

    async fn ensure_table(&self) -> Result<(), DatabaseError> {
        self.created
            .get_or_try_init(|| async {
                // SQLite: the key is the table's own order (no rowid and second index).
                let (key_type, options) = match self.database.dialect() {
                    Dialect::Mysql => ("BINARY(16)", ""),
                    Dialect::Sqlite => ("BLOB", " WITHOUT ROWID"),
                    Dialect::Postgresql => ("BYTEA", ""),
                };
                let sql = format!(
                    "CREATE TABLE IF NOT EXISTS {} (key_digest {key_type} NOT NULL PRIMARY KEY, \
                     state VARCHAR(16) NOT NULL, updated_at BIGINT NOT NULL){options}",
                    self.table
                );
                self.database.execute(&sql, &[]).await?;
                // A table of the earlier layout has no `key_digest`: say so.
                let probe = format!("SELECT key_digest FROM {} WHERE 1 = 0", self.table);
                match self.database.query_text(&probe).await {
                    Ok(_) => Ok(()),
                    Err(e) if e.is_unavailable() => Err(e),
                    Err(e) => Err(DatabaseError::Query {
                        name: self.database.name().to_string(),
                        reason: format!(
                            "ledger table `{}` has the layout of an earlier monasca-wasm (no `key_digest` column: {e}); \
                             rename or drop it, or name another in [notifiers.ledger] table",
                            self.table
                        ),
                    }),
                }
            })
            .await
            .map(|_| ())
    }

    /// `digest` (hex) as a binary literal of this database.
    fn push_digest(&self, sql: &mut String, digest: &str) {
        let (open, close) = match self.database.dialect() {
            Dialect::Mysql | Dialect::Sqlite => ("X'", "'"),
            Dialect::Postgresql => ("decode('", "', 'hex')"),
        };
        sql.push_str(open);
        if digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            sql.push_str(digest);
        }
        sql.push_str(close);
    }

    /// The expression reading a stored digest back as hex text.
    fn digest_as_hex(&self) -> &'static str {
        match self.database.dialect() {
            Dialect::Mysql | Dialect::Sqlite => "HEX(key_digest)",
            Dialect::Postgresql => "encode(key_digest, 'hex')",
        }
    }

    /// The recorded entries of `keys` (keys never seen are absent).
    pub async fn entries(&self, keys: &[&str]) -> Result<HashMap<String, Entry>, DatabaseError> {
        self.ensure_table().await?;
        let mut found = HashMap::new();
        for chunk in keys.chunks(CHUNK) {
            // Digests are written into the statement as binary literals (one
            // round trip, no prepared statement per chunk size).
            let digests: Vec<String> = chunk.iter().map(|k| stored(k)).collect();
            let mut sql = format!("SELECT {}, state FROM {} WHERE key_digest IN (", self.digest_as_hex(), self.table);
            for (i, digest) in digests.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                self.push_digest(&mut sql, digest);
            }
            sql.push(')');
            let keys: HashMap<&str, &str> = digests.iter().map(String::as_str).zip(chunk.iter().copied()).collect();
            for row in self.database.query_text(&sql).await? {
                let text = |i: usize| match row.get(i) {
                    Some((_, crate::engine::types::Cell::Text(t))) => Some(t.as_str()),
                    _ => None,
                };
                let key = text(0)
                    .and_then(|digest| keys.get(digest.trim().to_ascii_lowercase().as_str()).map(|k| k.to_string()));
                if let (Some(key), Some(entry)) = (key, text(1).and_then(Entry::parse)) {
                    found.insert(key, entry);
                }
            }
        }
        Ok(found)
    }

    /// Record `entries` (insert, or overwrite an entry that is not final).
    pub async fn record(&self, entries: &[(&str, Entry)]) -> Result<(), DatabaseError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.ensure_table().await?;
        let table = &self.table;
        let upsert = match self.database.dialect() {
            Dialect::Mysql => "ON DUPLICATE KEY UPDATE \
                 updated_at = IF(state IN ('sent', 'refused'), updated_at, VALUES(updated_at)), \
                 state = IF(state IN ('sent', 'refused'), state, VALUES(state))"
                .to_string(),
            Dialect::Sqlite | Dialect::Postgresql => format!(
                "ON CONFLICT (key_digest) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at \
                 WHERE {table}.state NOT IN ('sent', 'refused')"
            ),
        };
        let now = crate::engine::types::now_ms();
        for chunk in entries.chunks(CHUNK) {
            let mut sql = format!("INSERT INTO {table} (key_digest, state, updated_at) VALUES ");
            for (i, (key, entry)) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                self.push_digest(&mut sql, &stored(key));
                sql.push_str(", ");
                push_literal(&mut sql, entry.as_str());
                sql.push_str(&format!(", {now})"));
            }
            sql.push(' ');
            sql.push_str(&upsert);
            self.database.execute_text(&sql).await?;
        }
        Ok(())
    }
}

/// A string literal of text the ledger made (hex digests, state names):
/// letters and digits, nothing to escape (anything else would be left out:
/// the empty literal then matches no key).
fn push_literal(sql: &mut String, text: &str) {
    sql.push('\'');
    if text.bytes().all(|b| b.is_ascii_alphanumeric()) {
        sql.push_str(text);
    }
    sql.push('\'');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_round_trip_and_are_overwritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let database = Database::sqlite_file("ledger", &dir.path().join("ledger.sqlite")).expect("open");
        let ledger = Ledger::new(Arc::new(database), "notification_ledger").expect("ledger");
        assert!(ledger.entries(&["a"]).await.expect("empty").is_empty());
        ledger.record(&[("a", Entry::Failed), ("b", Entry::Failed)]).await.expect("record");
        ledger.record(&[("a", Entry::Sent)]).await.expect("overwrite");
        ledger.record(&[("a", Entry::Failed), ("b", Entry::Refused)]).await.expect("no downgrade");
        ledger.record(&[("b", Entry::Failed)]).await.expect("no downgrade");
        let found = ledger.entries(&["a", "b", "c"]).await.expect("entries");
        assert_eq!(found.get("a"), Some(&Entry::Sent), "sent stays sent");
        assert_eq!(found.get("b"), Some(&Entry::Refused), "refused stays refused");
        let long = "k".repeat(10_000);
        ledger.record(&[(long.as_str(), Entry::Sent), ("A", Entry::Sent)]).await.expect("any key");
        let found = ledger.entries(&[long.as_str(), "A", "a"]).await.expect("entries");
        assert_eq!(found.get(long.as_str()), Some(&Entry::Sent));
        assert_eq!((found.get("A"), found.get("a")), (Some(&Entry::Sent), Some(&Entry::Sent)), "case kept apart");
        assert!(!found.contains_key("c"));
        let many: Vec<String> = (0..1_200).map(|i| format!("k{i}")).collect();
        let entries: Vec<(&str, Entry)> = many.iter().map(|k| (k.as_str(), Entry::Sent)).collect();
        ledger.record(&entries).await.expect("chunks");
        let keys: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(ledger.entries(&keys).await.expect("chunks").len(), 1_200);
    }

    #[tokio::test]
    async fn a_table_of_the_earlier_layout_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let database = Database::sqlite_file("ledger", &dir.path().join("old.sqlite")).expect("open");
        database
            .execute(
                "CREATE TABLE notification_ledger (idempotency_key CHAR(64) NOT NULL PRIMARY KEY, \
                 state VARCHAR(16) NOT NULL, updated_at BIGINT NOT NULL)",
                &[],
            )
            .await
            .expect("old table");
        let ledger = Ledger::new(Arc::new(database), "notification_ledger").expect("ledger");
        let error = ledger.entries(&["a"]).await.expect_err("refused").to_string();
        assert!(error.contains("earlier monasca-wasm") && error.contains("[notifiers.ledger] table"), "{error}");
    }

    #[test]
    fn keys_are_stored_as_128_bit_digests() {
        assert_eq!(stored("a").len(), 2 * DIGEST_BYTES);
        assert_ne!(stored("a"), stored("A"));
    }

    #[test]
    fn table_names_are_plain() {
        let dir = tempfile::tempdir().expect("tempdir");
        let database = Arc::new(Database::sqlite_file("ledger", &dir.path().join("l.sqlite")).expect("open"));
        assert!(Ledger::new(database, "x; DROP TABLE y").is_err());
    }
}
