//! Partition state: byte keys and values the host keeps for the input
//! partition whose batch is being processed (WIT `partition-state`).
//!
//! The host holds each partition's state in memory, writes the keys a batch
//! changed to the pipeline's changelog topic in the same commit as the
//! batch's offsets, and restores it wherever the partition goes next (another
//! host, a restart, a hot-swapped module). So after any crash the state a
//! guest reads is the state of exactly the messages committed; the messages
//! after them come again. A call's writes are kept only if the call succeeds.
//!
//! Using any of these functions makes the guest *keyed*: the host then also
//! calls it with empty batches (timer calls) when its partition is idle.
//!
//! Under the native [`crate::testing::Harness`] the state lives in the test
//! thread, one map per partition, and writes are immediate.

/// The value under `key`.
pub fn get(key: &[u8]) -> Option<Vec<u8>> {
    imp::get(key)
}

/// Store `value` under `key`. Keys are at most 4 KiB and values 1 MiB; the
/// host bounds a partition's keys and bytes (`[pipeline.state]`). A write
/// past a bound fails the call.
pub fn put(key: &[u8], value: &[u8]) {
    imp::put(key, value)
}

/// Remove `key`.
pub fn delete(key: &[u8]) {
    imp::delete(key)
}

/// Entries with `start <= key < end` (no upper bound for `None`), ascending,
/// at most `limit` (the host caps it at 10,000). Read on from the last key
/// returned followed by a zero byte.
pub fn range(start: &[u8], end: Option<&[u8]>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
    imp::range(start, end, limit)
}

/// Every entry whose key starts with `prefix`, in key order (pages through
/// [`range`]).
pub fn scan_prefix(prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let end = prefix_end(prefix);
    let mut out = Vec::new();
    let mut start = prefix.to_vec();
    loop {
        let page = range(&start, end.as_deref(), 1000);
        let full = page.len() == 1000;
        if let Some((last, _)) = page.last() {
            start = last.clone();
            start.push(0);
        }
        out.extend(page);
        if !full {
            return out;
        }
    }
}

/// The first key after every key that starts with `prefix` (`None`: no bound).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use crate::bindings::monasca::processor::partition_state as host;

    pub fn get(key: &[u8]) -> Option<Vec<u8>> {
        host::get(key)
    }
    pub fn put(key: &[u8], value: &[u8]) {
        host::put(key, value)
    }
    pub fn delete(key: &[u8]) {
        host::delete(key)
    }
    pub fn range(start: &[u8], end: Option<&[u8]>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        host::range(start, end, limit)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeMap;

    /// One partition's entries.
    type Entries = BTreeMap<Vec<u8>, Vec<u8>>;

    thread_local! {
        static STATES: RefCell<BTreeMap<i32, Entries>> = const { RefCell::new(BTreeMap::new()) };
        static PARTITION: Cell<i32> = const { Cell::new(0) };
    }

    /// Make the next calls use `partition`'s state.
    pub fn set_partition(partition: i32) {
        PARTITION.with(|p| p.set(partition));
    }

    /// Forget every partition's state.
    #[cfg(test)]
    pub fn clear() {
        STATES.with(|s| s.borrow_mut().clear());
    }

    fn with<R>(f: impl FnOnce(&mut Entries) -> R) -> R {
        let partition = PARTITION.with(Cell::get);
        STATES.with(|s| f(s.borrow_mut().entry(partition).or_default()))
    }

    pub fn get(key: &[u8]) -> Option<Vec<u8>> {
        with(|m| m.get(key).cloned())
    }
    pub fn put(key: &[u8], value: &[u8]) {
        with(|m| m.insert(key.to_vec(), value.to_vec()));
    }
    pub fn delete(key: &[u8]) {
        with(|m| m.remove(key));
    }
    pub fn range(start: &[u8], end: Option<&[u8]>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        use std::ops::Bound;
        if end.is_some_and(|e| e <= start) {
            return Vec::new();
        }
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        with(|m| {
            m.range::<[u8], _>((Bound::Included(start), upper))
                .take(limit.min(10_000) as usize)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
use imp::clear as clear_native;
#[cfg(not(target_arch = "wasm32"))]
pub(crate) use imp::set_partition as set_native_partition;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn partitions_keep_their_own_state_and_prefix_scans_page() {
        clear_native();
        set_native_partition(1);
        for i in 0..2500u32 {
            put(format!("a{i:05}").as_bytes(), &i.to_be_bytes());
        }
        put(b"b", b"x");
        set_native_partition(2);
        assert_eq!(get(b"b"), None);
        set_native_partition(1);
        assert_eq!(get(b"b"), Some(b"x".to_vec()));
        assert_eq!(scan_prefix(b"a").len(), 2500);
        assert_eq!(prefix_end(&[1, 255]), Some(vec![2]));
        assert_eq!(prefix_end(&[255]), None);
        delete(b"b");
        assert!(range(b"b", None, 10).is_empty());
    }
}
