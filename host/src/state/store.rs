//! One input partition's keyed state, as the host holds it for a guest that
//! imports `partition-state`: a sorted map of byte keys to byte values, its
//! size bounded, and the keys changed since they were last written to the
//! changelog.
//!
//! A guest call never writes the map directly: it works on a [`Session`],
//! whose writes stay in an overlay until the host commits them (the call
//! succeeded) or drops them (the call failed: its effects are discarded, so
//! are its writes). Bisecting a poison batch therefore never applies a
//! message's writes twice.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

/// The longest key a guest may write.
pub const MAX_KEY_BYTES: usize = 4096;
/// The longest value a guest may write.
pub const MAX_VALUE_BYTES: usize = 1 << 20;
/// The most entries one `range` call returns.
pub const MAX_RANGE: u32 = 10_000;

/// Bounds of one partition's state (`[pipeline.state]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateLimits {
    /// Most keys a partition may hold.
    pub max_keys: usize,
    /// Most bytes (keys plus values) a partition may hold.
    pub max_bytes: usize,
}

impl Default for StateLimits {
    fn default() -> Self {
        StateLimits { max_keys: 10_000_000, max_bytes: 1 << 30 }
    }
}

/// Why a guest's write was refused; the call fails with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The key is longer than [`MAX_KEY_BYTES`].
    #[error("partition-state key of {0} bytes is longer than the limit of {MAX_KEY_BYTES}")]
    KeyTooLong(usize),
    /// The value is longer than [`MAX_VALUE_BYTES`].
    #[error("partition-state value of {0} bytes is longer than the limit of {MAX_VALUE_BYTES}")]
    ValueTooLong(usize),
    /// The partition would hold more keys than allowed.
    #[error("partition state would hold more than {0} keys (`[pipeline.state] max_keys`)")]
    TooManyKeys(usize),
    /// The partition would hold more bytes than allowed.
    #[error("partition state would hold more than {0} bytes (`[pipeline.state] max_bytes`)")]
    TooManyBytes(usize),
    /// The call has no partition state (a guest that is not run as keyed).
    #[error("this call has no partition state")]
    NoSession,
}

/// One partition's state.
#[derive(Debug, Default)]
pub struct PartitionStore {
    entries: BTreeMap<Vec<u8>, Vec<u8>>,
    bytes: usize,
    limits: StateLimits,
    changed: BTreeSet<Vec<u8>>,
}

/// A changelog entry: a key and its value now (`None`: deleted).
pub type Change = (Vec<u8>, Option<Vec<u8>>);

impl PartitionStore {
    /// An empty store with these bounds.
    pub fn new(limits: StateLimits) -> Self {
        PartitionStore { limits, ..Default::default() }
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of keys and values held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Every entry, in key order.
    pub fn entries(&self) -> impl Iterator<Item = (&Vec<u8>, &Vec<u8>)> {
        self.entries.iter()
    }

    /// The value under `key`.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries.get(key).map(Vec::as_slice)
    }

    /// Set `key` as the changelog says (restore: no bounds, nothing marked
    /// changed; the changelog already holds it).
    pub fn restore_entry(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        match value {
            Some(value) => {
                let added = key.len() + value.len();
                if let Some(old) = self.entries.insert(key.clone(), value) {
                    self.bytes -= key.len() + old.len();
                }
                self.bytes += added;
            }
            None => {
                if let Some(old) = self.entries.remove(&key) {
                    self.bytes -= key.len() + old.len();
                }
            }
        }
    }

    /// The keys changed since the last call, with their values now, in key
    /// order (each key once, however often it changed).
    pub fn take_changes(&mut self) -> Vec<Change> {
        let changed = std::mem::take(&mut self.changed);
        changed
            .into_iter()
            .map(|key| {
                let value = self.entries.get(&key).cloned();
                (key, value)
            })
            .collect()
    }

    /// True when writes wait to be taken by [`Self::take_changes`].
    pub fn has_changes(&self) -> bool {
        !self.changed.is_empty()
    }

    /// Start a guest call on this store (it moves into the session).
    pub fn open(self) -> Session {
        let (keys, bytes) = (self.entries.len(), self.bytes);
        Session { store: self, overlay: BTreeMap::new(), keys, bytes }
    }
}

/// A guest call's view of a partition's state: the store plus the call's
/// writes, kept apart until [`Session::commit`].
#[derive(Debug)]
pub struct Session {
    store: PartitionStore,
    overlay: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Keys and bytes the store would hold with the overlay applied.
    keys: usize,
    bytes: usize,
}

impl Session {
    /// The value under `key`, the call's own writes included.
    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.overlay.get(key) {
            Some(written) => written.clone(),
            None => self.store.entries.get(key).cloned(),
        }
    }

    /// The length of the value under `key` now, if any.
    fn current_len(&self, key: &[u8]) -> Option<usize> {
        match self.overlay.get(key) {
            Some(written) => written.as_ref().map(Vec::len),
            None => self.store.entries.get(key).map(Vec::len),
        }
    }

    /// Store `value` under `key`, within the bounds.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), StateError> {
        if key.len() > MAX_KEY_BYTES {
            return Err(StateError::KeyTooLong(key.len()));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(StateError::ValueTooLong(value.len()));
        }
        let limits = self.store.limits;
        let (mut keys, mut bytes) = (self.keys, self.bytes);
        match self.current_len(&key) {
            Some(old) => bytes -= key.len() + old,
            None => keys += 1,
        }
        bytes += key.len() + value.len();
        if keys > limits.max_keys {
            return Err(StateError::TooManyKeys(limits.max_keys));
        }
        if bytes > limits.max_bytes {
            return Err(StateError::TooManyBytes(limits.max_bytes));
        }
        (self.keys, self.bytes) = (keys, bytes);
        self.overlay.insert(key, Some(value));
        Ok(())
    }

    /// Remove `key`.
    pub fn delete(&mut self, key: Vec<u8>) {
        if let Some(old) = self.current_len(&key) {
            self.keys -= 1;
            self.bytes -= key.len() + old;
            self.overlay.insert(key, None);
        }
    }

    /// Entries with `start <= key < end`, ascending, at most `limit` (capped
    /// at [`MAX_RANGE`]), the call's own writes included.
    pub fn range(&self, start: &[u8], end: Option<&[u8]>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        let limit = limit.min(MAX_RANGE) as usize;
        let upper = match end {
            Some(end) if end <= start => return Vec::new(),
            Some(end) => Bound::Excluded(end),
            None => Bound::Unbounded,
        };
        let bounds = (Bound::Included(start), upper);
        let mut base = self.store.entries.range::<[u8], _>(bounds).peekable();
        let mut written = self.overlay.range::<[u8], _>(bounds).peekable();
        let mut out = Vec::new();
        while out.len() < limit {
            let take_written = match (base.peek(), written.peek()) {
                (None, None) => break,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some((b, _)), Some((w, _))) => w <= b,
            };
            if take_written {
                let Some((key, value)) = written.next() else { break };
                if base.peek().is_some_and(|(b, _)| *b == key) {
                    base.next();
                }
                if let Some(value) = value {
                    out.push((key.clone(), value.clone()));
                }
            } else if let Some((key, value)) = base.next() {
                out.push((key.clone(), value.clone()));
            }
        }
        out
    }

    /// Apply the call's writes and give the store back.
    pub fn commit(mut self) -> PartitionStore {
        for (key, value) in std::mem::take(&mut self.overlay) {
            self.store.changed.insert(key.clone());
            match value {
                Some(value) => {
                    self.store.entries.insert(key, value);
                }
                None => {
                    self.store.entries.remove(&key);
                }
            }
        }
        self.store.bytes = self.bytes;
        self.store
    }

    /// Drop the call's writes and give the store back unchanged.
    pub fn discard(self) -> PartitionStore {
        self.store
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        PartitionStore::new(StateLimits { max_keys: 3, max_bytes: 64 }).open()
    }

    #[test]
    fn writes_are_seen_by_the_call_and_kept_only_on_commit() {
        let mut s = session();
        s.put(b"a".to_vec(), b"1".to_vec()).unwrap();
        assert_eq!(s.get(b"a"), Some(b"1".to_vec()));
        let store = s.discard();
        assert!(store.is_empty() && !store.has_changes());
        let mut s = store.open();
        s.put(b"a".to_vec(), b"1".to_vec()).unwrap();
        s.put(b"b".to_vec(), b"22".to_vec()).unwrap();
        s.delete(b"b".to_vec());
        let mut store = s.commit();
        assert_eq!((store.len(), store.bytes()), (1, 2));
        assert_eq!(store.take_changes(), vec![(b"a".to_vec(), Some(b"1".to_vec())), (b"b".to_vec(), None)]);
        assert!(!store.has_changes());
    }

    #[test]
    fn bounds_refuse_the_write_that_passes_them() {
        let mut s = session();
        for k in [b"a", b"b", b"c"] {
            s.put(k.to_vec(), vec![0; 4]).unwrap();
        }
        assert_eq!(s.put(b"d".to_vec(), vec![]), Err(StateError::TooManyKeys(3)));
        s.put(b"a".to_vec(), vec![0; 6]).unwrap(); // a replacement adds no key
        assert_eq!(s.put(b"a".to_vec(), vec![0; 60]), Err(StateError::TooManyBytes(64)));
        assert_eq!(s.put(vec![0; MAX_KEY_BYTES + 1], vec![]), Err(StateError::KeyTooLong(MAX_KEY_BYTES + 1)));
        s.delete(b"b".to_vec());
        s.put(b"d".to_vec(), vec![]).unwrap(); // room again
        let store = s.commit();
        assert_eq!((store.len(), store.bytes()), (3, 7 + 5 + 1));
    }

    #[test]
    fn range_merges_the_store_and_the_calls_writes_in_order() {
        let mut s = PartitionStore::default().open();
        for k in ["a", "c", "e", "g"] {
            s.put(k.into(), k.to_uppercase().into()).unwrap();
        }
        let mut s = s.commit().open();
        s.put(b"b".to_vec(), b"new".to_vec()).unwrap();
        s.put(b"e".to_vec(), b"E2".to_vec()).unwrap();
        s.delete(b"c".to_vec());
        let keys = |r: Vec<(Vec<u8>, Vec<u8>)>| {
            r.into_iter()
                .map(|(k, v)| format!("{}={}", String::from_utf8_lossy(&k), String::from_utf8_lossy(&v)))
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(s.range(b"", None, 100)), ["a=A", "b=new", "e=E2", "g=G"]);
        assert_eq!(keys(s.range(b"b", Some(b"g"), 100)), ["b=new", "e=E2"]);
        assert_eq!(keys(s.range(b"a", None, 2)), ["a=A", "b=new"]);
        assert!(s.range(b"g", Some(b"a"), 10).is_empty());
    }

    #[test]
    fn restore_counts_bytes_and_marks_nothing_changed() {
        let mut store = PartitionStore::default();
        store.restore_entry(b"k".to_vec(), Some(b"vv".to_vec()));
        store.restore_entry(b"k".to_vec(), Some(b"v".to_vec()));
        store.restore_entry(b"x".to_vec(), Some(b"y".to_vec()));
        store.restore_entry(b"x".to_vec(), None);
        assert_eq!((store.len(), store.bytes(), store.has_changes()), (1, 2, false));
    }
}
