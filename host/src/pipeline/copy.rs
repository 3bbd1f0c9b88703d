//! How the consumer thread copies messages out of librdkafka into the
//! host's type: the topic names shared by their messages, the values split
//! off one buffer per chunk.

use super::Message;
use crate::engine::types::Header;
use crate::kafka::fetch_queue::Fetched;
use bytes::{Bytes, BytesMut};
use rdkafka::message::{BorrowedMessage, Headers, Message as _};
use std::sync::Arc;

/// The topic names seen so far, shared by their messages (a pipeline reads
/// a few topics: a linear search is enough).
#[derive(Default)]
pub(super) struct TopicNames(Vec<Arc<str>>);

impl TopicNames {
    pub(super) fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(known) = self.0.iter().find(|t| ***t == *name) {
            return known.clone();
        }
        let new: Arc<str> = name.into();
        self.0.push(new.clone());
        new
    }
}

/// Where the consumer thread copies message values: one buffer that each
/// value is split off (a view sharing it), so a message costs no allocation
/// of its own and a chunk is freed when the last of its messages is done.
/// A message held long (a delayed pipeline's, one kept to be dead-lettered)
/// keeps its whole chunk; what the consumer holds is bounded by its workers'
/// queues, so that is a few chunks per partition at most.
pub(super) struct Values(BytesMut);

impl Values {
    /// Bytes set aside at a time for the values to come.
    const CHUNK: usize = 256 * 1024;

    pub(super) fn new() -> Self {
        Values(BytesMut::new())
    }

    /// A copy of `value` (empty for none) as a view of the current chunk.
    fn copy(&mut self, value: Option<&[u8]>) -> Bytes {
        let value = value.unwrap_or_default();
        if value.is_empty() {
            return Bytes::new();
        }
        if self.0.capacity() < value.len() {
            // The old chunk stays alive as long as values still view it.
            self.0 = BytesMut::with_capacity(Self::CHUNK.max(value.len()));
        }
        self.0.extend_from_slice(value);
        self.0.split().freeze()
    }
}

/// Copy a message from the fetch queue into the host's type.
pub(super) fn fetched(m: &Fetched<'_>, topics: &mut TopicNames, values: &mut Values) -> Message {
    let headers = m.headers().into_iter().map(|(key, value)| Header { key, value }).collect();
    Message {
        topic: topics.get(m.topic()),
        partition: m.partition(),
        offset: m.offset(),
        timestamp_ms: m.timestamp_ms(),
        key: m.key().map(<[u8]>::to_vec),
        value: values.copy(m.payload()),
        headers,
        tombstone: m.payload().is_none(),
    }
}

/// Copy a consumed message into the host's type.
pub(super) fn owned(m: &BorrowedMessage<'_>, topics: &mut TopicNames, values: &mut Values) -> Message {
    let headers = m
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| Header { key: h.key.to_string(), value: h.value.map(<[u8]>::to_vec).unwrap_or_default() })
                .collect()
        })
        .unwrap_or_default();
    Message {
        topic: topics.get(m.topic()),
        partition: m.partition(),
        offset: m.offset(),
        timestamp_ms: m.timestamp().to_millis(),
        key: m.key().map(<[u8]>::to_vec),
        value: values.copy(m.payload()),
        headers,
        tombstone: m.payload().is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_exact_copies_across_chunks() {
        let mut values = Values::new();
        let inputs: Vec<Vec<u8>> = (0..2_000u32)
            .map(|i| {
                // Mostly small, some empty, a few larger than a chunk.
                let len = match i % 500 {
                    0 => Values::CHUNK + 17,
                    n if n % 7 == 0 => 0,
                    n => (n as usize * 37) % 3_000,
                };
                (0..len).map(|j| (i as usize + j) as u8).collect()
            })
            .collect();
        let copies: Vec<Bytes> =
            inputs.iter().map(|v| values.copy(if v.is_empty() { None } else { Some(v) })).collect();
        for (input, copy) in inputs.iter().zip(&copies) {
            assert_eq!(&copy[..], &input[..]);
        }
        assert!(values.copy(Some(b"")).is_empty());
        // Neighbours share a chunk: the second starts where the first ends.
        let mut values = Values::new();
        let (first, second) = (values.copy(Some(b"ab")), values.copy(Some(b"cd")));
        assert_eq!(first.as_ptr().wrapping_add(2), second.as_ptr());
    }
}
