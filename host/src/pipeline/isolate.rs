//! Poison isolation: when the guest fails a batch (trap, deadline, memory
//! limit or a batch error), split the batch in halves until the messages
//! that fail are alone; those are dead-lettered with the failure as the
//! reason, every other message is processed normally. Effects keep message
//! order.

use super::stats::Stats;
use crate::engine::types::{Effect, Message};
use crate::engine::{GuestError, GuestErrorKind, Instance};
use crate::state::PartitionStore;
use std::collections::VecDeque;
use std::ops::Range;

/// The result of processing a batch with isolation.
pub struct Isolated {
    /// Effects of the messages the guest processed, in order.
    pub effects: Vec<Effect>,
    /// Messages the guest cannot process (index in the batch, reason).
    pub poison: Vec<(usize, String)>,
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

/// Process `batch`, isolating the messages the guest fails on (with the
/// partition's `state` for a keyed guest: only the writes of the parts that
/// succeed are kept). An `init`
/// failure (the guest cannot start at all), or a failure that follows a
/// lookup whose database did not answer (`unavailable` counts those), is
/// returned as an error instead.
pub async fn process(
    instance: &mut Instance,
    batch: &[Message],
    mut state: Option<&mut PartitionStore>,
    stats: &Stats,
    unavailable: impl Fn() -> u64,
) -> Result<Isolated, Unprocessed> {
    let mut effects = Vec::new();
    let mut poison = Vec::new();
    let mut todo: VecDeque<Range<usize>> = VecDeque::new();
    todo.push_back(0..batch.len());
    while let Some(range) = todo.pop_front() {
        let before = unavailable();
        match instance.process_with(&batch[range.clone()], state.as_deref_mut()).await {
            Ok(mut done) => effects.append(&mut done),
            Err(e) if matches!(e.kind, GuestErrorKind::Init { .. }) => return Err(Unprocessed::Init(e)),
            Err(e) if unavailable() > before => return Err(Unprocessed::LookupsUnavailable(e)),
            Err(e) => {
                stats.guest_failed(&e.kind);
                if range.len() == 1 {
                    tracing::warn!(pipeline = %e.pipeline, offset = batch[range.start].offset, error = %e.kind, "poison message isolated");
                    poison.push((range.start, e.kind.to_string()));
                } else {
                    let middle = range.start + range.len() / 2;
                    todo.push_front(middle..range.end);
                    todo.push_front(range.start..middle);
                }
            }
        }
    }
    Ok(Isolated { effects, poison })
}
