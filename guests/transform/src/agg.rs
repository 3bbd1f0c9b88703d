//! What a group of records is reduced to, mergeable across input partitions:
//! count, sum, min, max, and the oldest and latest (timestamp, value).
//! Every fetch operation of the original is a function of it, so a window's
//! groups can be reduced per partition and merged once the window closes.

use crate::spec::FetchOp;
use serde::{Deserialize, Serialize};

/// A group's reduction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agg {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// Timestamp (ms) and value of the oldest record; ties keep the first seen.
    pub first_ts: i64,
    pub first: f64,
    /// Timestamp (ms) and value of the latest record; ties keep the last seen.
    pub last_ts: i64,
    pub last: f64,
}

impl Agg {
    /// The reduction of one record.
    pub fn new(ts: i64, value: f64) -> Agg {
        Agg { count: 1, sum: value, min: value, max: value, first_ts: ts, first: value, last_ts: ts, last: value }
    }

    /// Add one record, later in input order than every record so far.
    pub fn add(&mut self, ts: i64, value: f64) {
        self.merge(&Agg::new(ts, value));
    }

    /// Merge a reduction of records that come after this one's in order.
    pub fn merge(&mut self, other: &Agg) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        if other.first_ts < self.first_ts {
            self.first_ts = other.first_ts;
            self.first = other.first;
        }
        if other.last_ts >= self.last_ts {
            self.last_ts = other.last_ts;
            self.last = other.last;
        }
    }

    /// The state encoding: eight big-endian 8-byte numbers.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        let words = [
            self.count,
            self.sum.to_bits(),
            self.min.to_bits(),
            self.max.to_bits(),
            self.first_ts as u64,
            self.first.to_bits(),
            self.last_ts as u64,
            self.last.to_bits(),
        ];
        for (chunk, word) in out.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    /// Read [`Agg::to_bytes`] back (`None` for anything else).
    pub fn from_bytes(bytes: &[u8]) -> Option<Agg> {
        if bytes.len() != 64 {
            return None;
        }
        let word = |i: usize| u64::from_be_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap_or_default());
        Some(Agg {
            count: word(0),
            sum: f64::from_bits(word(1)),
            min: f64::from_bits(word(2)),
            max: f64::from_bits(word(3)),
            first_ts: word(4) as i64,
            first: f64::from_bits(word(5)),
            last_ts: word(6) as i64,
            last: f64::from_bits(word(7)),
        })
    }

    /// The quantity a fetch operation gives.
    pub fn quantity(&self, op: FetchOp) -> f64 {
        match op {
            FetchOp::Sum => self.sum,
            FetchOp::Max => self.max,
            FetchOp::Min => self.min,
            FetchOp::Avg => self.sum / self.count as f64,
            FetchOp::Latest => self.last,
            FetchOp::Oldest => self.first,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_is_adding_in_order() {
        let points = [(5, 1.0), (3, 2.0), (9, 4.0), (3, 8.0), (9, 16.0)];
        let mut whole = Agg::new(points[0].0, points[0].1);
        for &(t, v) in &points[1..] {
            whole.add(t, v);
        }
        let mut left = Agg::new(5, 1.0);
        left.add(3, 2.0);
        let mut right = Agg::new(9, 4.0);
        right.add(3, 8.0);
        right.add(9, 16.0);
        left.merge(&right);
        assert_eq!(left, whole);
        assert_eq!(whole.quantity(FetchOp::Oldest), 2.0, "ties keep the first seen");
        assert_eq!(whole.quantity(FetchOp::Latest), 16.0, "ties keep the last seen");
        assert_eq!(whole.quantity(FetchOp::Avg), 31.0 / 5.0);
        assert_eq!((whole.quantity(FetchOp::Min), whole.quantity(FetchOp::Max)), (1.0, 16.0));
        assert_eq!(Agg::from_bytes(&whole.to_bytes()), Some(whole));
        assert_eq!(Agg::from_bytes(b"short"), None);
    }
}
