//! The InfluxDB 1.x sink. A write is cut into requests of at most
//! `batch_points` lines, sent concurrently (at most `max_in_flight` requests
//! at once across the host). Each request is retried with backoff on 5xx,
//! timeouts and connection errors for as long as it takes (the partition's
//! offsets wait: back-pressure, nothing lost); a missing database is created
//! (with the default retention policy, as monasca-persister does); a 400 is
//! narrowed down by halving the request until the refused points are alone,
//! and only those are returned (writing a point twice is harmless: same
//! series and time, same point). Refused credentials stop the pipeline.
//!
//! `encode` renders structured points as line protocol, byte for byte as
//! monasca-persister 9.0.0 does.

pub mod client;
pub mod encode;

use super::{database_for, lines, Points, Refused, SinkError};
use crate::config::InfluxDbConfig;
use client::{quote_identifier, Answer, Client};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// A write's body with where each of its lines is, so that a run of lines
/// is one slice of it (no copy per request).
struct Body<'a> {
    bytes: &'a [u8],
    /// (start, end) of each non-empty line, in order.
    spans: Vec<(usize, usize)>,
}

impl<'a> Body<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Body { bytes, spans: lines::split_with_offsets(bytes).collect() }
    }

    fn lines(&self) -> usize {
        self.spans.len()
    }

    /// The bytes from the first line of `range` to the end of its last (empty
    /// lines between them included: InfluxDB skips them).
    fn bytes(&self, range: Range<usize>) -> &'a [u8] {
        match (self.spans.get(range.start), range.end.checked_sub(1).and_then(|last| self.spans.get(last))) {
            (Some(first), Some(last)) if range.start < range.end => &self.bytes[first.0..last.1],
            _ => &[],
        }
    }
}

/// The `dropped=N` count at the end of an InfluxDB "partial write" error.
fn dropped(reason: &str) -> Option<usize> {
    reason.rsplit_once("dropped=").and_then(|(_, n)| n.trim().parse().ok())
}

/// First pause before retrying a failed request.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// An InfluxDB server and where points go in it.
pub struct InfluxDb {
    name: String,
    client: Client,
    database: String,
    per_tenant: bool,
    retention_hours: u32,
    batch_points: usize,
    slots: Semaphore,
    max_backoff: Duration,
    /// When the last retry warning was logged (ms since `started`): one
    /// every few seconds is enough for an outage.
    last_warning_ms: AtomicU64,
    started: Instant,
    /// Requests retried so far (5xx, timeouts, connection errors).
    retries: AtomicU64,
    /// True once the host stops: no more retries.
    stop: tokio::sync::watch::Receiver<bool>,
    /// The outage under way: when its first failure was and how many
    /// attempts failed since (`None`: writes go through).
    outage: std::sync::Mutex<Option<(Instant, u64)>>,
    /// Databases this sink created (logged once each; forgotten past
    /// [`REMEMBERED_DATABASES`]).
    created: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// Databases remembered as created (one per tenant with `per_tenant`).
const REMEMBERED_DATABASES: usize = 10_000;

/// Least time between two "retrying" warnings of one sink.
const WARNING_EVERY: Duration = Duration::from_secs(5);

impl InfluxDb {
    /// A sink for the configured server (nothing is contacted yet).
    pub fn new(
        name: &str,
        config: &InfluxDbConfig,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<Self, SinkError> {
        let client = Client::new(config).map_err(|reason| SinkError::Setup { sink: name.to_string(), reason })?;
        Ok(InfluxDb {
            name: name.to_string(),
            client,
            database: config.database.clone(),
            per_tenant: config.db_per_tenant,
            retention_hours: config.default_retention_hours,
            batch_points: config.batch_points.max(1),
            slots: Semaphore::new(config.max_in_flight.max(1)),
            max_backoff: Duration::from_millis(config.max_backoff_ms).max(FIRST_BACKOFF),
            last_warning_ms: AtomicU64::new(0),
            started: Instant::now(),
            retries: AtomicU64::new(0),
            outage: std::sync::Mutex::new(None),
            created: std::sync::Mutex::new(std::collections::HashSet::new()),
            stop,
        })
    }

    /// For the start-up banner (no credentials).
    pub fn describe(&self) -> String {
        let tenants =
            if self.per_tenant { format!(" (`{}_<tenant>` per tenant)", self.database) } else { String::new() };
        format!("InfluxDB at {}, database `{}`{tenants}", self.client.base(), self.database)
    }

    /// Store the points; see the module documentation.
    pub async fn write(&self, points: Points<'_>) -> Result<Vec<Refused>, SinkError> {
        let database = database_for(&self.database, self.per_tenant, points.tenant);
        let body = Body::new(points.body);
        let requests = (0..body.lines())
            .step_by(self.batch_points)
            .map(|first| self.write_lines(&database, &body, first..(first + self.batch_points).min(body.lines())));
        let mut refused = Vec::new();
        for outcome in futures::future::join_all(requests).await {
            refused.extend(outcome?);
        }
        refused.sort_by_key(|r| r.line);
        Ok(refused)
    }

    /// Write the lines `range` of `body`, halving on refusal until the
    /// refused points are alone.
    async fn write_lines(
        &self,
        database: &str,
        body: &Body<'_>,
        range: Range<usize>,
    ) -> Result<Vec<Refused>, SinkError> {
        let mut refused = Vec::new();
        let mut todo = vec![range];
        while let Some(part) = todo.pop() {
            match self.write_until_answered(database, body.bytes(part.clone())).await? {
                None => {}
                Some(reason) if part.len() == 1 => refused.push(Refused { line: part.start, reason }),
                // Every point refused (e.g. all older than the retention policy): no need to halve.
                Some(reason) if dropped(&reason) == Some(part.len()) => {
                    refused.extend(part.map(|line| Refused { line, reason: reason.clone() }))
                }
                Some(_) => {
                    let middle = part.start + part.len() / 2;
                    todo.push(middle..part.end);
                    todo.push(part.start..middle);
                }
            }
        }
        Ok(refused)
    }

    /// Requests retried so far.
    pub fn retries(&self) -> u64 {
        self.retries.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// One request, retried until InfluxDB stores it (`None`) or refuses it
    /// (`Some(reason)`).
    async fn write_until_answered(&self, database: &str, lines: &[u8]) -> Result<Option<String>, SinkError> {
        let mut backoff = FIRST_BACKOFF;
        let mut failures = 0u32;
        loop {
            let answer = {
                let _slot = self.slots.acquire().await.map_err(|e| self.fatal(e.to_string()))?;
                self.client.write(database, lines).await
            };
            let trouble = match answer {
                Answer::Stored => {
                    if failures > 0 {
                        self.outage_over();
                    }
                    return Ok(None);
                }
                Answer::Refused(reason) => return Ok(Some(reason)),
                Answer::Fatal(reason) => return Err(self.fatal(reason)),
                Answer::NoDatabase => match self.create_database(database).await {
                    Ok(()) => continue,
                    Err(reason) => reason,
                },
                Answer::Retry(reason) => reason,
            };
            failures += 1;
            self.retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.lock_outage().get_or_insert((Instant::now(), 0)).1 += 1;
            if self.warning_due() {
                tracing::warn!(sink = %self.name, %database, failures, retry_in_ms = backoff.as_millis() as u64, reason = %trouble, "InfluxDB write failed; retrying (offsets wait)");
            }
            let mut stop = self.stop.clone();
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.wait_for(|stopping| *stopping) => {
                    return Err(self.fatal(format!(
                        "the host is stopping while InfluxDB does not answer ({trouble}): the batch's offsets are not stored, it is written after the restart"
                    )));
                }
            }
            backoff = (backoff * 2).min(self.max_backoff);
        }
    }

    /// `CREATE DATABASE`, with the default retention policy when configured
    /// (only at creation, so that an operator's own policies stay). One
    /// statement: a concurrent write never lands in `autogen` in between.
    async fn create_database(&self, database: &str) -> Result<(), String> {
        let quoted = quote_identifier(database);
        let statement = match self.retention_hours {
            0 => format!("CREATE DATABASE {quoted}"),
            hours => {
                let policy = quote_identifier(&format!("{hours}h"));
                format!("CREATE DATABASE {quoted} WITH DURATION {hours}h REPLICATION 1 NAME {policy}")
            }
        };
        self.client.query(&statement).await?;
        // Requests racing to a new database each ask for it: say it once.
        let first = {
            let mut created = self.created.lock().unwrap_or_else(|p| p.into_inner());
            if created.len() >= REMEMBERED_DATABASES {
                created.clear();
            }
            created.insert(database.to_string())
        };
        if first {
            tracing::info!(sink = %self.name, %database, retention_hours = self.retention_hours, "created InfluxDB database");
        }
        Ok(())
    }

    fn lock_outage(&self) -> std::sync::MutexGuard<'_, Option<(Instant, u64)>> {
        self.outage.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A write went through after failures: the first request to see it
    /// says so once for the whole outage, with its length and count.
    fn outage_over(&self) {
        if let Some((since, failed_attempts)) = self.lock_outage().take() {
            tracing::warn!(
                sink = %self.name,
                failed_attempts,
                outage_ms = since.elapsed().as_millis() as u64,
                "InfluxDB writes go through again"
            );
        }
    }

    /// True at most once per [`WARNING_EVERY`].
    fn warning_due(&self) -> bool {
        let now = self.started.elapsed().as_millis() as u64 + WARNING_EVERY.as_millis() as u64;
        let last = self.last_warning_ms.load(Ordering::Relaxed);
        now.saturating_sub(last) >= WARNING_EVERY.as_millis() as u64
            && self.last_warning_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }

    fn fatal(&self, reason: String) -> SinkError {
        SinkError::Fatal { sink: self.name.clone(), reason }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_dropped_count() {
        let reason = "InfluxDB 400 Bad Request: partial write: points beyond retention policy dropped=37";
        assert_eq!(super::dropped(reason), Some(37));
        assert_eq!(super::dropped("InfluxDB 400: unable to parse 'x': bad"), None);
    }
}
