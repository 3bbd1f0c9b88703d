//! The `notify` effects of one batch, carried out with the ledger: keys the
//! ledger knows as done are skipped, the others are delivered concurrently,
//! followed by their `on-sent` or `on-failed` records (or a dead letter),
//! and recorded with their outcome once those records are acknowledged (in
//! groups, as they settle). The batch's offsets are stored only after all
//! of it. A key with no recorded outcome is sent (again, after a crash: the
//! receiver sees the same idempotency key).

use super::executor::{await_deliveries, find_message, DeadLetter, EffectError, Executor};
use crate::databases::DatabaseError;
use crate::engine::types::{Message, Notification, OutputRecord};
use crate::notify::ledger::Entry;
use crate::notify::Outcome;
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// What the notifications of a batch came to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Delivered.
    pub sent: u64,
    /// Failed (handed to their `on-failed` records or dead-lettered).
    pub failed: u64,
    /// Refused and dead-lettered.
    pub refused: u64,
    /// Skipped: the ledger says they were sent before (a replay).
    pub skipped: u64,
    /// Follow-up records produced.
    pub produced: u64,
    /// Messages dead-lettered.
    pub dead_lettered: u64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.sent += other.sent;
        self.failed += other.failed;
        self.refused += other.refused;
        self.skipped += other.skipped;
        self.produced += other.produced;
        self.dead_lettered += other.dead_lettered;
    }
}

/// Deliver `notifications` (from `batch`) and produce their follow-ups.
pub async fn deliver(
    executor: &Executor,
    notifications: Vec<Notification>,
    batch: &[Message],
    module_id: &str,
) -> Result<Tally, EffectError> {
    let mut tally = Tally::default();
    if notifications.is_empty() {
        return Ok(tally);
    }
    let notifiers = executor.notifiers.as_ref().ok_or(EffectError::NotifyUnsupported)?;
    let ledger = notifiers.ledger();
    // One delivery per key, even when a batch names a key twice.
    let mut seen = HashSet::new();
    let unique: Vec<Notification> =
        notifications.into_iter().filter(|n| seen.insert(n.idempotency_key.clone())).collect();
    let keys: Vec<&str> = unique.iter().map(|n| n.idempotency_key.as_str()).collect();
    let known = persistently(&executor.pipeline, || ledger.entries(&keys)).await?;
    let (done, todo): (Vec<&Notification>, Vec<&Notification>) =
        unique.iter().partition(|n| known.get(&n.idempotency_key).is_some_and(|e| e.is_final()));
    tally.skipped = done.len() as u64;
    for n in &done {
        notifiers.counts().count(&n.channel, "skipped");
    }

    // Deliver concurrently, but in order within a group: notifications with
    // the same destination and the same `order` attribute (the notification
    // guest sets the alarm id) go one after another, as the batch has them,
    // so an alarm's ALARM and OK reach a receiver in that order. As each one
    // settles (delivered or not, its follow-up records acknowledged), its
    // outcome joins the next ledger write, made every `MARK_EVERY` outcomes
    // or `MARK_AFTER`: a crash then leaves few keys without an outcome.
    let mut waiting = in_order_groups(todo).into_iter();
    let mut settling = FuturesUnordered::new();
    settling.extend(waiting.by_ref().take(PER_BATCH_IN_FLIGHT).map(|g| deliver_group(executor, g, batch, module_id)));
    let mut marks: Vec<(&str, Entry)> = Vec::with_capacity(MARK_EVERY);
    let mut marked = Instant::now();
    while let Some(settled) = settling.next().await {
        if let Some(next) = waiting.next() {
            settling.push(deliver_group(executor, next, batch, module_id));
        }
        for (n, settled) in settled {
            let (entry, counts) = settled?;
            tally.add(counts);
            marks.push((n.idempotency_key.as_str(), entry));
        }
        if marks.len() >= MARK_EVERY || marked.elapsed() >= MARK_AFTER {
            persistently(&executor.pipeline, || ledger.record(&marks)).await?;
            marks.clear();
            marked = Instant::now();
        }
    }
    persistently(&executor.pipeline, || ledger.record(&marks)).await?;
    Ok(tally)
}

/// The notifications in groups to deliver one after another: same
/// destination and same `order` attribute; without that attribute each is
/// its own group. Groups in order of their first member.
fn in_order_groups(todo: Vec<&Notification>) -> Vec<Vec<&Notification>> {
    let mut groups: Vec<Vec<&Notification>> = Vec::new();
    let mut index: HashMap<(&str, &str), usize> = HashMap::new();
    for n in todo {
        match crate::notify::attribute(n, "order") {
            Some(order) => match index.get(&(n.destination.as_str(), order)) {
                Some(&at) => groups[at].push(n),
                None => {
                    index.insert((n.destination.as_str(), order), groups.len());
                    groups.push(vec![n]);
                }
            },
            None => groups.push(vec![n]),
        }
    }
    groups
}

/// Deliver a group's notifications one after another, settling each.
async fn deliver_group<'a>(
    executor: &'a Executor,
    group: Vec<&'a Notification>,
    batch: &'a [Message],
    module_id: &'a str,
) -> Vec<(&'a Notification, Result<(Entry, Tally), EffectError>)> {
    let mut settled = Vec::with_capacity(group.len());
    for n in group {
        settled.push(deliver_one(executor, n, batch, module_id).await);
    }
    settled
}

/// Groups of one batch under way at once (the host-wide bound on
/// deliveries is `[notifiers] max_in_flight`).
const PER_BATCH_IN_FLIGHT: usize = 256;
/// Outcomes recorded in one ledger write...
const MARK_EVERY: usize = 256;
/// ...or after this long, whichever comes first.
const MARK_AFTER: Duration = Duration::from_millis(50);

/// Deliver one notification and settle it.
async fn deliver_one<'a>(
    executor: &'a Executor,
    n: &'a Notification,
    batch: &'a [Message],
    module_id: &'a str,
) -> (&'a Notification, Result<(Entry, Tally), EffectError>) {
    let outcome = match executor.notifiers.as_ref() {
        Some(notifiers) => notifiers.deliver(n).await,
        None => return (n, Err(EffectError::NotifyUnsupported)),
    };
    (n, settle(executor, n, outcome, batch, module_id).await)
}

/// Carry out what follows one delivery: its `on-sent` or `on-failed`
/// records, or a dead letter, acknowledged; the ledger entry it earns.
async fn settle(
    executor: &Executor,
    n: &Notification,
    outcome: Outcome,
    batch: &[Message],
    module_id: &str,
) -> Result<(Entry, Tally), EffectError> {
    let mut tally = Tally::default();
    let (follow_ups, letter, entry): (&[OutputRecord], Option<String>, Entry) = match outcome {
        Outcome::Sent => {
            tally.sent = 1;
            (&n.on_sent, None, Entry::Sent)
        }
        Outcome::Failed(reason) if !n.on_failed.is_empty() => {
            tally.failed = 1;
            tracing::info!(pipeline = %executor.pipeline, channel = %n.channel, %reason, "notification failed; handed on for a retry");
            (&n.on_failed, None, Entry::Failed)
        }
        Outcome::Failed(reason) => {
            tally.failed = 1;
            (&[], Some(format!("notification failed: {reason}")), Entry::Failed)
        }
        Outcome::Refused(reason) => {
            tally.refused = 1;
            (&[], Some(format!("notification refused: {reason}")), Entry::Refused)
        }
    };
    let mut deliveries = Vec::with_capacity(follow_ups.len() + 1);
    for record in follow_ups {
        deliveries.push(executor.produce(record).await?);
        tally.produced += 1;
    }
    if let Some(reason) = letter {
        let message = find_message(batch, n.origin.partition, n.origin.offset)?;
        tracing::warn!(pipeline = %executor.pipeline, channel = %n.channel, offset = message.offset, %reason, "notification dead-lettered");
        deliveries.push(executor.dead_letter(&DeadLetter { message, reason }, module_id).await?);
        tally.dead_lettered = 1;
    }
    await_deliveries(deliveries).await?;
    Ok((entry, tally))
}

/// Run a ledger call until its database answers (100 ms pauses, doubling up
/// to 10 s); a statement the database refuses is an error.
async fn persistently<T, F, Fut>(pipeline: &str, mut call: F) -> Result<T, EffectError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DatabaseError>>,
{
    let mut pause = Duration::from_millis(100);
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(e) if e.is_unavailable() => {
                tracing::warn!(%pipeline, error = %e, retry_in_ms = pause.as_millis() as u64, "notification ledger unavailable");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(EffectError::Ledger(e)),
        }
    }
}
