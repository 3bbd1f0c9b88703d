//! What a guest writes for operators (its `log` import, its stdout and
//! stderr) on the way to `tracing`: each line escaped (a newline or a
//! terminal escape in a guest's text cannot forge a log line or reach the
//! operator's terminal) and capped, and the lines of one instance held to a
//! rate (a token bucket), the ones over it dropped and counted: a guest
//! cannot fill the disk or the log pipeline.

use super::sandbox::GuestIdentity;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Most bytes of one guest line shown (after escaping).
pub const MAX_LINE_BYTES: usize = 4096;
/// Lines per second one instance may log, on average...
pub const LINES_PER_SECOND: f64 = 100.0;
/// ...and at once.
pub const BURST_LINES: f64 = 500.0;

/// Guest log lines dropped over the rate, all pipelines together.
pub static DROPPED: AtomicU64 = AtomicU64::new(0);

/// How important a guest's line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineLevel {
    /// `trace`.
    Trace,
    /// `debug`; the guest's stdout and stderr.
    Debug,
    /// `info`.
    Info,
    /// `warn`.
    Warn,
    /// `error`.
    Error,
}

/// One instance's log: its identity and its budget. Cheap to clone (the
/// clones share the budget).
#[derive(Clone)]
pub struct GuestLog {
    identity: Arc<GuestIdentity>,
    budget: Arc<Mutex<Budget>>,
}

struct Budget {
    tokens: f64,
    refilled: Instant,
    /// Lines dropped since the last one shown.
    dropped: u64,
}

impl GuestLog {
    /// A fresh log with a full budget.
    pub fn new(identity: GuestIdentity) -> Self {
        GuestLog {
            identity: Arc::new(identity),
            budget: Arc::new(Mutex::new(Budget { tokens: BURST_LINES, refilled: Instant::now(), dropped: 0 })),
        }
    }

    /// Whose log this is.
    pub fn identity(&self) -> &GuestIdentity {
        &self.identity
    }

    /// Take a line from the budget: `Some(dropped before it)` if it may be
    /// shown, `None` (and counted) if it is over the rate.
    fn admit(&self) -> Option<u64> {
        let mut budget = self.budget.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(budget.refilled).as_secs_f64() * LINES_PER_SECOND;
        budget.tokens = (budget.tokens + refill).min(BURST_LINES);
        budget.refilled = now;
        if budget.tokens < 1.0 {
            budget.dropped += 1;
            DROPPED.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        budget.tokens -= 1.0;
        Some(std::mem::take(&mut budget.dropped))
    }

    /// Show a line of the guest's at `level`, if the budget allows.
    pub fn line(&self, level: LineLevel, text: &str) {
        let Some(dropped) = self.admit() else { return };
        let id = &self.identity;
        if dropped > 0 {
            tracing::warn!(pipeline = %id.pipeline, module = %id.module, dropped, "guest log lines dropped over the rate limit");
        }
        let text = crate::text::escape_capped(text, MAX_LINE_BYTES);
        match level {
            LineLevel::Trace => tracing::trace!(pipeline = %id.pipeline, module = %id.module, "{text}"),
            LineLevel::Debug => tracing::debug!(pipeline = %id.pipeline, module = %id.module, "{text}"),
            LineLevel::Info => tracing::info!(pipeline = %id.pipeline, module = %id.module, "{text}"),
            LineLevel::Warn => tracing::warn!(pipeline = %id.pipeline, module = %id.module, "{text}"),
            LineLevel::Error => tracing::error!(pipeline = %id.pipeline, module = %id.module, "{text}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_over_the_rate_are_dropped_and_counted() {
        let log = GuestLog::new(GuestIdentity { pipeline: "p".into(), module: "m".into(), digest: "d".into() });
        let before = DROPPED.load(Ordering::Relaxed);
        let admitted = (0..10_000).filter(|_| log.admit().is_some()).count();
        // The burst, plus what the rate refilled while the loop ran.
        assert!(admitted >= BURST_LINES as usize && admitted < BURST_LINES as usize + 100, "{admitted}");
        assert!(DROPPED.load(Ordering::Relaxed) - before >= 10_000 - admitted as u64);
        std::thread::sleep(std::time::Duration::from_millis(50));
        let next = log.admit().expect("the budget refills");
        assert!(next >= 9_000, "the first line after a drop reports the dropped ones: {next}");
    }
}
