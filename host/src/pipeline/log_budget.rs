//! A budget of log lines for events that can come in floods (rejected
//! messages, refused points): at most [`LINES_PER_WINDOW`] lines per
//! [`WINDOW`], and the first line after a quiet spell says how many were
//! left out, so an operator sees every kind of trouble and its size without
//! a poison flood filling the disk.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Length of one window.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Lines logged per window.
pub const LINES_PER_WINDOW: u32 = 20;

/// Whether to log one more event, and how many were suppressed before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Log it, saying that `suppressed` events since the last line went unlogged.
    Log { suppressed: u64 },
    /// Count it, do not log it.
    Suppress,
}

/// The budget of one pipeline.
#[derive(Debug, Default)]
pub struct LogBudget {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    window_start: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

impl LogBudget {
    /// Account for one event at `now`.
    pub fn admit_at(&self, now: Instant) -> Admit {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.window_start.is_none_or(|start| now.duration_since(start) >= WINDOW) {
            state.window_start = Some(now);
            state.logged = 0;
        }
        if state.logged < LINES_PER_WINDOW {
            state.logged += 1;
            Admit::Log { suppressed: std::mem::take(&mut state.suppressed) }
        } else {
            state.suppressed += 1;
            Admit::Suppress
        }
    }

    /// Account for one event now.
    pub fn admit(&self) -> Admit {
        self.admit_at(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_logs_a_window_s_worth_then_counts_what_it_left_out() {
        let budget = LogBudget::default();
        let start = Instant::now();
        let admitted = (0..1000).filter(|_| budget.admit_at(start) != Admit::Suppress).count();
        assert_eq!(admitted, LINES_PER_WINDOW as usize);
        assert_eq!(budget.admit_at(start + WINDOW), Admit::Log { suppressed: 1000 - u64::from(LINES_PER_WINDOW) });
        assert_eq!(budget.admit_at(start + WINDOW), Admit::Log { suppressed: 0 });
    }
}
