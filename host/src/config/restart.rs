//! `[pipeline.restart]`: what the host does when a running pipeline fails
//! (a delivery that cannot be completed, a fenced transaction, a sink that
//! refuses for good). The failed pipeline stops alone; the others go on.

use serde::Deserialize;
use std::time::Duration;

/// `[pipeline.restart]`: restart a failed pipeline after a back-off that
/// doubles from `initial_backoff_ms` to `max_backoff_ms`. A restarted
/// pipeline starts as a fresh host would: it rejoins its group, resumes at
/// the committed offsets and restores its partition state, so nothing that
/// was not committed is lost or repeated in exactly-once mode.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartConfig {
    /// `false`: a failed pipeline stops the whole host (the old behaviour,
    /// for deployments that leave restarts to systemd or Kubernetes).
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// The first back-off, milliseconds.
    #[serde(default = "default_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    /// The longest back-off, milliseconds. A pipeline that ran at least this
    /// long before failing starts again from `initial_backoff_ms`.
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
}

impl Default for RestartConfig {
    fn default() -> Self {
        RestartConfig {
            enabled: default_enabled(),
            initial_backoff_ms: default_initial_backoff_ms(),
            max_backoff_ms: default_max_backoff_ms(),
        }
    }
}

impl RestartConfig {
    /// The first back-off.
    pub fn initial(&self) -> Duration {
        Duration::from_millis(self.initial_backoff_ms.max(1))
    }

    /// The longest back-off (never below the first).
    pub fn max(&self) -> Duration {
        Duration::from_millis(self.max_backoff_ms.max(self.initial_backoff_ms).max(1))
    }

    /// The back-off after `current`.
    pub fn next(&self, current: Duration) -> Duration {
        (current * 2).min(self.max())
    }
}

fn default_enabled() -> bool {
    true
}
fn default_initial_backoff_ms() -> u64 {
    1_000
}
fn default_max_backoff_ms() -> u64 {
    60_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_up_to_the_most() {
        let r = RestartConfig { enabled: true, initial_backoff_ms: 500, max_backoff_ms: 3_000 };
        let mut seen = vec![r.initial()];
        for _ in 0..4 {
            seen.push(r.next(*seen.last().unwrap()));
        }
        let ms: Vec<u128> = seen.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [500, 1_000, 2_000, 3_000, 3_000]);
        let odd = RestartConfig { enabled: true, initial_backoff_ms: 0, max_backoff_ms: 0 };
        assert_eq!((odd.initial(), odd.max()), (Duration::from_millis(1), Duration::from_millis(1)));
    }
}
