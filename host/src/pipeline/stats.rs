//! Counters of a pipeline, and the one-line summary printed as it runs.

use std::sync::atomic::{AtomicU64, Ordering};

/// What a pipeline has done so far.
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages consumed.
    pub consumed: AtomicU64,
    /// Batches whose effects are all done.
    pub batches: AtomicU64,
    /// Records produced (acknowledged) by `produce` effects.
    pub produced: AtomicU64,
    /// Points accepted by sinks.
    pub stored: AtomicU64,
    /// Messages sent to the dead-letter topic.
    pub dead_lettered: AtomicU64,
    /// Guest call failures (traps, deadlines, limits, batch errors) that led to bisection.
    pub guest_failures: AtomicU64,
    /// Modules deployed into the running pipeline.
    pub swaps: AtomicU64,
    /// Modules rolled back.
    pub rollbacks: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Messages consumed.
    pub consumed: u64,
    /// Batches done.
    pub batches: u64,
    /// Records produced.
    pub produced: u64,
    /// Points stored.
    pub stored: u64,
    /// Messages dead-lettered.
    pub dead_lettered: u64,
    /// Guest failures.
    pub guest_failures: u64,
    /// Module swaps.
    pub swaps: u64,
    /// Module rollbacks.
    pub rollbacks: u64,
}

impl Stats {
    /// Add `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Read all counters.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            consumed: self.consumed.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            produced: self.produced.load(Ordering::Relaxed),
            stored: self.stored.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            guest_failures: self.guest_failures.load(Ordering::Relaxed),
            swaps: self.swaps.load(Ordering::Relaxed),
            rollbacks: self.rollbacks.load(Ordering::Relaxed),
        }
    }
}

impl Snapshot {
    /// `in 12,000 · produced 12,000 · stored 0 · ...` without a rate.
    pub fn totals(&self) -> String {
        format!(
            "in {} · produced {} · stored {} · dead-lettered {} · batches {} · guest failures {}",
            self.consumed, self.produced, self.stored, self.dead_lettered, self.batches, self.guest_failures
        )
    }

    /// `in 12,000 (2,400/s) · produced 12,000 · stored 0 · dead-lettered 3 · batches 14`
    pub fn summary(&self, previous: &Snapshot, seconds: f64) -> String {
        let rate = (self.consumed - previous.consumed) as f64 / seconds.max(0.001);
        format!(
            "in {} ({:.0}/s) · produced {} · stored {} · dead-lettered {} · batches {} · guest failures {}",
            self.consumed, rate, self.produced, self.stored, self.dead_lettered, self.batches, self.guest_failures
        )
    }
}
