//! The cache of lookup answers, bounded: its keys are a query's name and the
//! guest's parameters, so a guest could otherwise fill the host's memory
//! with distinct parameters. It holds at most [`MAX_ENTRIES`] answers and
//! [`MAX_BYTES`] (keys and rows, estimated), evicting the least recently
//! used first; an answer larger than a quarter of the bytes is not cached.

use crate::engine::sandbox::Row;
use crate::engine::types::Cell;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Most answers one pipeline's cache holds.
pub const MAX_ENTRIES: usize = 10_000;
/// Most bytes one pipeline's cache holds.
pub const MAX_BYTES: usize = 16 << 20;

/// A lookup's name and parameters.
pub type CacheKey = (String, Vec<String>);

struct Entry {
    at: Instant,
    rows: Vec<Row>,
    bytes: usize,
    used: u64,
}

/// The answers, by key, with their use order.
pub struct AnswerCache {
    entries: HashMap<CacheKey, Entry>,
    /// Use tick → key, least recent first.
    order: BTreeMap<u64, CacheKey>,
    tick: u64,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl Default for AnswerCache {
    fn default() -> Self {
        AnswerCache::with_limits(MAX_ENTRIES, MAX_BYTES)
    }
}

fn key_bytes(key: &CacheKey) -> usize {
    64 + key.0.len() + key.1.iter().map(|p| 24 + p.len()).sum::<usize>()
}

fn rows_bytes(rows: &[Row]) -> usize {
    let cell = |c: &Cell| match c {
        Cell::Text(t) => t.len(),
        Cell::Bytes(b) => b.len(),
        _ => 8,
    };
    rows.iter().map(|row| 24 + row.iter().map(|(name, c)| 48 + name.len() + cell(c)).sum::<usize>()).sum()
}

impl AnswerCache {
    /// A cache of at most `max_entries` answers and `max_bytes`.
    pub fn with_limits(max_entries: usize, max_bytes: usize) -> Self {
        AnswerCache {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            tick: 0,
            bytes: 0,
            max_entries: max_entries.max(1),
            max_bytes,
        }
    }

    /// The answer for `key` if cached less than `ttl` ago.
    pub fn get(&mut self, key: &CacheKey, ttl: Duration) -> Option<Vec<Row>> {
        let fresh = self.entries.get(key).map(|e| e.at.elapsed() < ttl)?;
        if !fresh {
            self.remove(key);
            return None;
        }
        self.tick += 1;
        let tick = self.tick;
        let entry = self.entries.get_mut(key)?;
        self.order.remove(&entry.used);
        entry.used = tick;
        self.order.insert(tick, key.clone());
        Some(entry.rows.clone())
    }

    /// Keep `rows` as the answer for `key`, evicting the least recently used
    /// answers while over the limits.
    pub fn insert(&mut self, key: CacheKey, rows: Vec<Row>) {
        let bytes = key_bytes(&key) + rows_bytes(&rows);
        self.remove(&key);
        if bytes > self.max_bytes / 4 {
            return;
        }
        self.tick += 1;
        self.order.insert(self.tick, key.clone());
        self.entries.insert(key, Entry { at: Instant::now(), rows, bytes, used: self.tick });
        self.bytes += bytes;
        while self.entries.len() > self.max_entries || self.bytes > self.max_bytes {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            if let Some(entry) = self.entries.remove(&oldest) {
                self.bytes -= entry.bytes;
            }
        }
    }

    fn remove(&mut self, key: &CacheKey) {
        if let Some(entry) = self.entries.remove(key) {
            self.order.remove(&entry.used);
            self.bytes -= entry.bytes;
        }
    }

    /// Answers held and their bytes.
    pub fn size(&self) -> (u64, u64) {
        (self.entries.len() as u64, self.bytes as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize) -> CacheKey {
        ("q".to_string(), vec![format!("param-{i}")])
    }

    fn rows(text: &str) -> Vec<Row> {
        vec![vec![("name".to_string(), Cell::Text(text.to_string()))]]
    }

    #[test]
    fn a_flood_of_distinct_parameters_stays_within_the_limits() {
        let mut cache = AnswerCache::with_limits(100, 1 << 20);
        for i in 0..100_000 {
            cache.insert(key(i), rows("answer"));
        }
        let (entries, bytes) = cache.size();
        assert_eq!(entries, 100);
        assert!(bytes <= 1 << 20);
        // The most recent are kept, the oldest went.
        let ttl = Duration::from_secs(60);
        assert!(cache.get(&key(99_999), ttl).is_some() && cache.get(&key(0), ttl).is_none());
        // Bytes bound too: big answers push others out.
        let mut small = AnswerCache::with_limits(1_000, 64 * 1024);
        for i in 0..1_000 {
            small.insert(key(i), rows(&"x".repeat(1_000)));
        }
        assert!(small.size().1 <= 64 * 1024 && small.size().0 < 100, "{:?}", small.size());
        // An answer over a quarter of the bytes is not kept.
        small.insert(key(5_000), rows(&"y".repeat(20_000)));
        assert!(small.get(&key(5_000), ttl).is_none());
    }

    #[test]
    fn recently_used_answers_survive_and_expired_ones_go() {
        let mut cache = AnswerCache::with_limits(2, 1 << 20);
        let ttl = Duration::from_secs(60);
        cache.insert(key(1), rows("one"));
        cache.insert(key(2), rows("two"));
        assert!(cache.get(&key(1), ttl).is_some(), "1 is now the most recent");
        cache.insert(key(3), rows("three"));
        assert!(cache.get(&key(1), ttl).is_some() && cache.get(&key(2), ttl).is_none());
        assert!(cache.get(&key(3), Duration::ZERO).is_none(), "expired");
        assert_eq!(cache.size().0, 1);
    }
}
