//! Counters, gauges and latency histograms of a pipeline, and the one-line
//! summary printed as it runs. All lock-free (atomics) on the hot path,
//! except the per-partition lag table, updated about once a second.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histograms' buckets.
pub const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A latency histogram with fixed buckets ([`BUCKETS`]).
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Record one observation.
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = BUCKETS.iter().position(|le| seconds <= *le).unwrap_or(BUCKETS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(took.as_micros().min(u128::from(u64::MAX)) as u64, Ordering::Relaxed);
    }

    /// Cumulative counts per bucket (the last is the total), and the sum in seconds.
    pub fn read(&self) -> (Vec<u64>, f64) {
        let mut total = 0;
        let cumulative = self
            .counts
            .iter()
            .map(|c| {
                total += c.load(Ordering::Relaxed);
                total
            })
            .collect();
        (cumulative, self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6)
    }

    /// The `q` quantile (0..=1) as the upper bound of its bucket, in seconds
    /// (`None` without observations; `+Inf` beyond the last bound).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let (cumulative, _) = self.read();
        let total = *cumulative.last()?;
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).ceil().max(1.0) as u64;
        let bucket = cumulative.iter().position(|c| *c >= rank).unwrap_or(BUCKETS.len());
        Some(BUCKETS.get(bucket).copied().unwrap_or(f64::INFINITY))
    }
}

/// What a pipeline has done so far.
#[derive(Debug, Default)]
pub struct Stats {
    /// Log lines left for rejected messages and refused points.
    pub log_budget: super::log_budget::LogBudget,
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
    /// Guest calls that trapped (panics, faults).
    pub traps: AtomicU64,
    /// Guest calls stopped at their deadline.
    pub deadline_hits: AtomicU64,
    /// Guest calls stopped at the memory cap.
    pub memory_limit_hits: AtomicU64,
    /// Notifications delivered.
    pub notifications_sent: AtomicU64,
    /// Notifications whose delivery failed.
    pub notifications_failed: AtomicU64,
    /// Notifications refused (allowlist, bad destination).
    pub notifications_refused: AtomicU64,
    /// Notifications skipped because the ledger says they were sent.
    pub notifications_skipped: AtomicU64,
    /// From cutting a batch to its effects being done and its offset stored.
    pub batch_latency: Histogram,
    /// Time in the guest per batch (isolation retries included).
    pub guest_time: Histogram,
    /// Records waiting in the producer (sent, not yet acknowledged).
    pub producer_queue: AtomicI64,
    /// Consumer lag per assigned partition (high watermark − position).
    pub lag: Mutex<BTreeMap<(String, i32), i64>>,
    /// A keyed guest's state per partition held: (keys, bytes of keys and values).
    pub state: Mutex<BTreeMap<(String, i32), (u64, u64)>>,
    /// Partition states restored from the changelog.
    pub restores: AtomicU64,
    /// Time to restore a partition's state.
    pub restore_time: Histogram,
    /// Kafka transactions committed.
    pub transactions: AtomicU64,
    /// Timer calls of a keyed guest.
    pub ticks: AtomicU64,
    /// Times the pipeline failed and was started again.
    pub restarts: AtomicU64,
    /// HTTP answers by status (a pipeline with an HTTP source).
    pub http_answers: Mutex<BTreeMap<u16, u64>>,
    /// From a request's arrival to its answer.
    pub http_latency: Histogram,
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
    /// Guest traps.
    pub traps: u64,
    /// Guest deadline hits.
    pub deadline_hits: u64,
    /// Guest memory-cap hits.
    pub memory_limit_hits: u64,
    /// Notifications delivered.
    pub notifications_sent: u64,
    /// Notifications failed.
    pub notifications_failed: u64,
    /// Notifications refused.
    pub notifications_refused: u64,
    /// Notifications skipped (already sent).
    pub notifications_skipped: u64,
    /// Records in the producer's queue.
    pub producer_queue: i64,
}

impl Stats {
    /// The state held per partition: (keys, bytes).
    pub fn state(&self) -> BTreeMap<(String, i32), (u64, u64)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Record the size of a partition's state (`None`: no longer held).
    pub fn set_state(&self, topic: &str, partition: i32, size: Option<(u64, u64)>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match size {
            Some(size) => {
                state.insert((topic.to_string(), partition), size);
            }
            None => {
                state.remove(&(topic.to_string(), partition));
            }
        }
    }

    /// Count an HTTP answer and its latency.
    pub fn http_answered(&self, status: u16, took: Duration) {
        *self.http_answers.lock().unwrap_or_else(|p| p.into_inner()).entry(status).or_default() += 1;
        self.http_latency.observe(took);
    }

    /// Count a failed guest call by its kind.
    pub fn guest_failed(&self, kind: &crate::engine::GuestErrorKind) {
        use crate::engine::GuestErrorKind as Kind;
        Self::add(&self.guest_failures, 1);
        match kind {
            Kind::Trap { .. } => Self::add(&self.traps, 1),
            Kind::Deadline { .. } => Self::add(&self.deadline_hits, 1),
            Kind::MemoryLimit { .. } => Self::add(&self.memory_limit_hits, 1),
            Kind::Init { .. } | Kind::Batch { .. } | Kind::OutputBudget { .. } => {}
        }
    }

    /// The lag table now.
    pub fn lag(&self) -> BTreeMap<(String, i32), i64> {
        self.lag.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

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
            traps: self.traps.load(Ordering::Relaxed),
            deadline_hits: self.deadline_hits.load(Ordering::Relaxed),
            memory_limit_hits: self.memory_limit_hits.load(Ordering::Relaxed),
            notifications_sent: self.notifications_sent.load(Ordering::Relaxed),
            notifications_failed: self.notifications_failed.load(Ordering::Relaxed),
            notifications_refused: self.notifications_refused.load(Ordering::Relaxed),
            notifications_skipped: self.notifications_skipped.load(Ordering::Relaxed),
            producer_queue: self.producer_queue.load(Ordering::Relaxed),
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
