//! What the two stages of the transform say to each other through the
//! partials topic, and how both lay out their partition state.
//!
//! Stage one (on the `metrics` partitions) reduces each window's groups and,
//! once its watermark has passed the window's end plus the allowed lateness,
//! sends one `partial` per group and then a `progress` record saying up to
//! where it is complete. Every record goes under one key, so the partials of
//! all sources meet, in order, in one partition of the partials topic, where
//! stage two merges them and closes a window once every source is past it.

use crate::agg::Agg;
use serde::{Deserialize, Serialize};

/// The key of every partials-topic record (they all meet in one partition).
pub const EXCHANGE_KEY: &[u8] = b"monasca-transform";

/// A record of the partials topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Exchange {
    /// One group of one window from one source partition.
    Partial { source: String, window_end: i64, metric_id: String, group: Vec<Option<String>>, agg: Agg },
    /// The source has sent every partial of the windows ending at or before `closed`.
    Progress { source: String, closed: i64 },
}

/// Stage one's clock key.
pub const CLOCK: &[u8] = b"c";
/// Stage two's "windows emitted up to" key.
pub const EMITTED: &[u8] = b"f";
/// Stage two's "windows due up to" key (every source is past them).
pub const TARGET: &[u8] = b"t";
/// Prefix of stage one's groups.
pub const SLOT: u8 = b'w';
/// Prefix of stage two's partials.
pub const PARTIAL: u8 = b'p';
/// Prefix of stage two's per-source progress.
pub const SOURCE: u8 = b's';

/// Longest state key a group may have (the host refuses keys over 4 KiB).
pub const MAX_KEY: usize = 4000;

/// Big-endian with the sign bit flipped, so keys sort by time.
pub fn time_bytes(ms: i64) -> [u8; 8] {
    ((ms as u64) ^ (1 << 63)).to_be_bytes()
}

fn push_text(key: &mut Vec<u8>, text: &str) {
    key.extend_from_slice(&(text.len() as u32).to_be_bytes());
    key.extend_from_slice(text.as_bytes());
}

/// A spec's metric id in keys: 32 bits of FNV-1a (short keys compare fast
/// in the host's sorted store; `Specs::parse` refuses two ids that collide).
pub fn id_hash(metric_id: &str) -> u32 {
    metric_id.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// Start a group key: `prefix`, window end, metric id (the group values follow).
pub fn start_key(key: &mut Vec<u8>, prefix: u8, window_end: i64, metric_id: &str) {
    key.clear();
    key.push(prefix);
    key.extend_from_slice(&time_bytes(window_end));
    key.extend_from_slice(&id_hash(metric_id).to_be_bytes());
}

/// A group value that is the spec's own metric id (`metric_id` and
/// `metric_group` columns): one byte instead of the text.
pub fn push_own_id(key: &mut Vec<u8>) {
    key.push(3);
}

/// Append one group value (`None`: Spark's null).
pub fn push_value(key: &mut Vec<u8>, value: Option<&str>) {
    match value {
        None => key.push(0),
        Some(v) => {
            key.push(1);
            push_text(key, v);
        }
    }
}

/// `prefix`, window end, metric id, group values (and a source).
pub fn group_key(
    prefix: u8,
    window_end: i64,
    metric_id: &str,
    group: &[Option<String>],
    source: Option<&str>,
) -> Vec<u8> {
    let mut key = Vec::with_capacity(64);
    start_key(&mut key, prefix, window_end, metric_id);
    for value in group {
        push_value(&mut key, value.as_deref());
    }
    if let Some(source) = source {
        key.push(2);
        push_text(&mut key, source);
    }
    key
}

/// A stage-one group key read back: window end, metric id (found by its
/// hash among `metric_ids`), group values.
pub fn parse_group_key<'a>(
    key: &[u8],
    metric_ids: impl IntoIterator<Item = &'a str>,
) -> Option<(i64, String, Vec<Option<String>>)> {
    fn text(rest: &mut &[u8]) -> Option<String> {
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let value = std::str::from_utf8(rest.get(4..4 + len)?).ok()?.to_string();
        *rest = &rest[4 + len..];
        Some(value)
    }
    let mut rest = key.get(1..)?;
    let window_end = (u64::from_be_bytes(rest.get(..8)?.try_into().ok()?) ^ (1 << 63)) as i64;
    let hash = u32::from_be_bytes(rest.get(8..12)?.try_into().ok()?);
    let metric_id = metric_ids.into_iter().find(|id| id_hash(id) == hash)?.to_string();
    rest = &rest[12..];
    let mut group = Vec::new();
    while let Some((&tag, tail)) = rest.split_first() {
        rest = tail;
        match tag {
            0 => group.push(None),
            1 => group.push(Some(text(&mut rest)?)),
            3 => group.push(Some(metric_id.clone())),
            _ => return None,
        }
    }
    Some((window_end, metric_id, group))
}

/// A fast hasher for the batch's group keys (FxHash's multiply-rotate; the
/// keys come from this guest's own encoding, and a collision costs only time).
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by group keys.
pub type KeyMap<V> = std::collections::HashMap<Vec<u8>, V, std::hash::BuildHasherDefault<KeyHasher>>;

/// The first key after every key of windows ending at or before `end`.
pub fn windows_until(prefix: u8, end: i64) -> Vec<u8> {
    let mut key = vec![prefix];
    key.extend_from_slice(&time_bytes(end.saturating_add(1)));
    key
}

/// The first key after every key starting with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    vec![u8::MAX; prefix.len() + 1]
}

/// A source's progress key.
pub fn source_key(source: &str) -> Vec<u8> {
    let mut key = vec![SOURCE];
    key.extend_from_slice(source.as_bytes());
    key
}

/// Entries with `prefix <= key < end`, every page of them.
pub fn scan(start: &[u8], end: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    use monasca_guest_sdk::state;
    let mut out = Vec::new();
    let mut from = start.to_vec();
    loop {
        let page = state::range(&from, Some(end), 10_000);
        let full = page.len() == 10_000;
        if let Some((last, _)) = page.last() {
            from = last.clone();
            from.push(0);
        }
        out.extend(page);
        if !full {
            return out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_window_then_group() {
        let a = group_key(SLOT, -5, "m", &[Some("x".into())], None);
        let b = group_key(SLOT, 10, "m", &[None], None);
        let c = group_key(SLOT, 10, "m", &[Some("a".into())], None);
        assert!(a < b && b < c);
        assert!(c < windows_until(SLOT, 10) && windows_until(SLOT, 9) < b);
        let group = vec![None, Some("h\u{e9}".to_string()), Some(String::new())];
        let key = group_key(SLOT, -7, "m-1", &group, None);
        assert_eq!(parse_group_key(&key, ["m-0", "m-1"]), Some((-7, "m-1".into(), group)));
        assert_eq!(parse_group_key(&key, ["m-0"]), None, "a spec no longer configured");
        let mut own = Vec::new();
        start_key(&mut own, SLOT, 5, "m-1");
        push_own_id(&mut own);
        assert_eq!(parse_group_key(&own, ["m-1"]), Some((5, "m-1".into(), vec![Some("m-1".into())])));
        let progress = Exchange::Progress { source: "metrics/0".into(), closed: 7 };
        let text = serde_json::to_string(&progress).unwrap();
        assert_eq!(text, r#"{"kind":"progress","source":"metrics/0","closed":7}"#);
        assert_eq!(serde_json::from_str::<Exchange>(&text).unwrap(), progress);
    }
}
