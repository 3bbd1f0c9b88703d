//! The guest's notion of "now": the host's wall clock when it handed the
//! current batch over (the batch's `now-ms`). A guest has no clock of its
//! own, so its output stays a function of its configuration and the batch;
//! age checks (an alarm's TTL, a retry's due time) read [`now_ms`].
//!
//! Native unit tests set the time with [`set_batch_time`] (or
//! [`crate::testing`]); until then it reads 0.

use std::cell::Cell;

thread_local! {
    static BATCH_TIME_MS: Cell<i64> = const { Cell::new(0) };
    static BATCH_PARTITION: Cell<i32> = const { Cell::new(0) };
}

/// The input partition of the current batch (also set for a timer call,
/// which has no messages).
pub fn partition() -> i32 {
    BATCH_PARTITION.with(Cell::get)
}

/// Set the partition [`partition`] reads (the SDK's glue does it).
pub fn set_batch_partition(partition: i32) {
    BATCH_PARTITION.with(|p| p.set(partition));
}

/// The host's wall clock when the current batch was handed over, in
/// milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    BATCH_TIME_MS.with(Cell::get)
}

/// Set the time [`now_ms`] reads (the SDK's glue does it for every batch).
pub fn set_batch_time(ms: i64) {
    BATCH_TIME_MS.with(|t| t.set(ms));
}

/// (year, month 1–12, day 1–31) of a day count from 1970-01-01 (proleptic
/// Gregorian calendar; Howard Hinnant's algorithm): for writing dates as
/// Python's `time` and `datetime` do, without a clock.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_was_set() {
        set_batch_time(1_700_000_000_123);
        assert_eq!(now_ms(), 1_700_000_000_123);
    }
}
