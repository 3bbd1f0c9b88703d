//! Poison isolation: when the guest fails a batch (trap, deadline, memory
//! limit or a batch error), find the messages that fail and dead-letter them
//! with the failure as the reason; every other message is processed
//! normally. Effects keep message order.
//!
//! The cost is bounded: a batch error that names its culprit isolates that
//! message at once (one failed call per culprit); otherwise the batch is
//! split in halves, and after [`BISECT_FAILURES`] failed calls the rest is
//! tried message by message. Bisection alone costs 2n − 1 failed calls for a
//! batch of n poison messages (each one a call deadline when they hang); this
//! costs at most n + [`BISECT_FAILURES`], and about log2(n) + k for k poison
//! messages among n when they are few. And when the failed calls of one
//! batch have taken the isolation budget (`[pipeline.batch]
//! isolation_budget_ms`: a batch of messages that each hang until the call
//! deadline would otherwise hold its partition for n deadlines), the
//! messages not yet proven good are dead-lettered, saying so.

use super::stats::Stats;
use crate::engine::types::{Effect, Message};
use crate::engine::{GuestError, GuestErrorKind, Instance};
use crate::state::PartitionStore;
use std::collections::VecDeque;
use std::ops::Range;

/// Failed calls in one batch after which the rest is tried message by message.
pub const BISECT_FAILURES: usize = 3;

/// The result of processing a batch with isolation.
pub struct Isolated {
    /// Effects of the messages the guest processed, in order.
    pub effects: Vec<Effect>,
    /// Messages the guest cannot process (index in the batch, reason).
    pub poison: Vec<(usize, String)>,
    /// Guest calls that failed on the way.
    pub failed_calls: usize,
}

/// Why a batch could not be processed at all.
#[derive(Debug)]
pub enum Unprocessed {
    /// The guest cannot start.
    Init(GuestError),
    /// The guest failed after a lookup found its database unavailable: not
    /// the messages' fault, the batch is to be retried later.
    LookupsUnavailable(GuestError),
}

/// The index in `batch[range]` of the message an error names, if it does.
fn culprit(error: &GuestErrorKind, batch: &[Message], range: &Range<usize>) -> Option<usize> {
    let GuestErrorKind::Batch { culprit: Some((partition, offset)), .. } = error else { return None };
    range.clone().find(|&i| batch[i].partition == *partition && batch[i].offset == *offset)
}

/// Process `batch`, isolating the messages the guest fails on (with the
/// partition's `state` for a keyed guest: only the writes of the parts that
/// succeed are kept). An `init` failure (the guest cannot start at all), or
/// a failure that follows a lookup whose database did not answer
/// (`unavailable` counts those), is returned as an error instead.
pub async fn process(
    instance: &mut Instance,
    batch: &[Message],
    mut state: Option<&mut PartitionStore>,
    stats: &Stats,
    budget: Option<std::time::Duration>,
    unavailable: impl Fn() -> u64,
) -> Result<Isolated, Unprocessed> {
    let mut effects = Vec::new();
    let mut poison = Vec::new();
    let mut failed_calls = 0;
    let mut failing = std::time::Duration::ZERO;
    let mut todo: VecDeque<Range<usize>> = VecDeque::new();
    todo.push_back(0..batch.len());
    while let Some(range) = todo.pop_front() {
        if range.is_empty() {
            continue;
        }
        let before = unavailable();
        let started = std::time::Instant::now();
        let error = match instance.process_with(&batch[range.clone()], state.as_deref_mut()).await {
            Ok(mut done) => {
                effects.append(&mut done);
                continue;
            }
            Err(e) if matches!(e.kind, GuestErrorKind::Init { .. }) => return Err(Unprocessed::Init(e)),
            Err(e) if unavailable() > before => return Err(Unprocessed::LookupsUnavailable(e)),
            Err(e) => e,
        };
        stats.guest_failed(&error.kind);
        failed_calls += 1;
        failing += started.elapsed();
        if budget.is_some_and(|budget| failing >= budget) && (range.len() > 1 || !todo.is_empty()) {
            let reason = format!(
                "not processed: isolating the poison of its batch took {failed_calls} failed guest calls and \
                 {:.1} s, over isolation_budget_ms; the last failure: {}",
                failing.as_secs_f64(),
                error.kind
            );
            tracing::warn!(pipeline = %error.pipeline, failed_calls, "isolation budget spent; the batch's unproven messages are dead-lettered");
            let rest: Vec<usize> = std::iter::once(range).chain(todo.drain(..)).flatten().collect();
            poison.extend(rest.into_iter().map(|i| (i, reason.clone())));
            break;
        }
        let blamed = culprit(&error.kind, batch, &range);
        if range.len() == 1 || blamed.is_some() {
            let at = blamed.unwrap_or(range.start);
            tracing::warn!(pipeline = %error.pipeline, offset = batch[at].offset, error = %error.kind, "poison message isolated");
            poison.push((at, error.kind.to_string()));
            // The messages around the culprit go on, in order.
            todo.push_front(at + 1..range.end);
            todo.push_front(range.start..at);
        } else if failed_calls >= BISECT_FAILURES {
            // This range and every range still pending, message by message.
            let pending: Vec<Range<usize>> = std::iter::once(range).chain(todo.drain(..)).collect();
            todo.extend(pending.into_iter().flatten().map(|i| i..i + 1));
        } else {
            let middle = range.start + range.len() / 2;
            todo.push_front(middle..range.end);
            todo.push_front(range.start..middle);
        }
    }
    poison.sort_by_key(|(i, _)| *i);
    Ok(Isolated { effects, poison, failed_calls })
}
