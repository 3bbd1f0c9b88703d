//! What a guest receives: Kafka messages and its configuration.

use crate::compare::same_text;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use std::fmt;
use std::sync::Arc;

/// A Kafka record header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name.
    pub key: String,
    /// Header value.
    pub value: Vec<u8>,
}

/// The input message an effect derives from (its partition and offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Origin {
    /// Partition of the input message.
    pub partition: i32,
    /// Offset of the input message.
    pub offset: i64,
}

impl Origin {
    /// The origin of a record made by a timer call (no message: offset -1,
    /// the current batch's partition).
    pub fn timer() -> Self {
        Origin { partition: crate::clock::partition(), offset: -1 }
    }
}

/// The name of the topic a message was read from, shared by the messages of
/// a batch (cloning it copies no text). Compares with `&str` and `String`.
#[derive(Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Topic(Arc<str>);

impl Topic {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Topic {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Topic {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Topic {
    fn from(name: &str) -> Self {
        Topic(name.into())
    }
}

impl From<String> for Topic {
    fn from(name: String) -> Self {
        Topic(name.into())
    }
}

impl From<Topic> for String {
    fn from(topic: Topic) -> Self {
        topic.0.to_string()
    }
}

impl From<&Topic> for String {
    fn from(topic: &Topic) -> Self {
        topic.0.to_string()
    }
}

// Guests compare a message's topic with their configured topics for every
// message: word-at-a-time comparison (see `crate::compare`).
impl PartialEq<str> for Topic {
    fn eq(&self, other: &str) -> bool {
        same_text(&self.0, other)
    }
}

impl PartialEq<&str> for Topic {
    fn eq(&self, other: &&str) -> bool {
        same_text(&self.0, other)
    }
}

impl PartialEq<String> for Topic {
    fn eq(&self, other: &String) -> bool {
        same_text(&self.0, other)
    }
}

impl PartialEq<Topic> for str {
    fn eq(&self, other: &Topic) -> bool {
        same_text(self, &other.0)
    }
}

impl PartialEq<Topic> for &str {
    fn eq(&self, other: &Topic) -> bool {
        same_text(self, &other.0)
    }
}

impl PartialEq<Topic> for String {
    fn eq(&self, other: &Topic) -> bool {
        same_text(self, &other.0)
    }
}

/// One Kafka message, as the host consumed it.
///
/// The value is a [`Bytes`] view of the buffer the host handed the whole
/// batch over in: reading it copies nothing, cloning it copies no bytes,
/// and it derefs to `&[u8]`. `Vec::from(message.value)` (or `.to_vec()`)
/// gives an owned copy.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Message {
    /// Topic it was read from.
    pub topic: Topic,
    /// Partition of that topic.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// Kafka timestamp in milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Record value (a view of the batch's buffer).
    pub value: Bytes,
    /// Record headers.
    pub headers: Vec<Header>,
}

impl Message {
    /// A message with a topic and a value; the other fields are zero. Handy in tests.
    pub fn new(topic: impl Into<Topic>, value: impl Into<Bytes>) -> Self {
        Message { topic: topic.into(), value: value.into(), ..Message::default() }
    }

    /// Where this message sits in Kafka, for effects that derive from it.
    pub fn origin(&self) -> Origin {
        Origin { partition: self.partition, offset: self.offset }
    }

    /// The value as UTF-8 text, or an error that says where the bytes are invalid.
    pub fn value_str(&self) -> Result<&str, String> {
        std::str::from_utf8(&self.value).map_err(|e| format!("value is not valid UTF-8: {e}"))
    }

    /// Parse the value as JSON into an owned type.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_slice(&self.value).map_err(|e| format!("value is not valid JSON for this type: {e}"))
    }

    /// The first header with this name.
    pub fn header(&self, key: &str) -> Option<&[u8]> {
        self.headers.iter().find(|h| h.key == key).map(|h| h.value.as_slice())
    }
}

/// The guest's configuration: the `[pipeline.config]` entries of the host
/// configuration, or `--config key=value` options of `monasca-wasm test`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    entries: Vec<(String, String)>,
}

impl Config {
    /// A configuration from (key, value) pairs; a later key wins over an earlier one.
    pub fn new(entries: Vec<(String, String)>) -> Self {
        Config { entries }
    }

    /// The value of a key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The value of a key, or a default.
    pub fn get_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }

    /// The value of a key parsed as `T`, or a default when the key is absent.
    /// A value that does not parse is an error naming the key.
    pub fn parse_or<T>(&self, key: &str, default: T) -> Result<T, String>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        match self.get(key) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|e| format!("config `{key}` = {raw:?}: {e}")),
        }
    }

    /// The value of a key as a comma-separated list (items trimmed, empty
    /// ones dropped), or `default` read the same way when the key is absent.
    pub fn list_or(&self, key: &str, default: &str) -> Vec<String> {
        self.get_or(key, default).split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
    }

    /// All entries in the order given.
    pub fn entries(&self) -> &[(String, String)] {
        &self.entries
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Config {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Config::new(iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_compare_with_text_either_way() {
        let topic = Topic::from("metrics");
        let (text, owned) = ("metrics", String::from("metrics"));
        assert_eq!(topic, text);
        assert_eq!(text, topic);
        assert_eq!(topic, *text);
        assert_eq!(*text, topic);
        assert_eq!(topic, owned);
        assert_eq!(owned, topic);
        assert_ne!(topic, "alarm-state-transitions");
        assert_eq!(String::from(&topic), "metrics");
        assert_eq!(format!("{topic} {topic:?}"), "metrics \"metrics\"");
        assert_eq!(topic.len(), 7, "derefs to str");
    }

    #[test]
    fn a_message_value_is_a_view_that_reads_as_bytes() {
        let batch = Bytes::from(b"onetwo".to_vec());
        let message = Message { value: batch.slice(3..), ..Message::new("t", Bytes::new()) };
        assert_eq!(message.value, b"two"[..]);
        assert_eq!(message.value_str(), Ok("two"));
        assert_eq!(Vec::from(message.value.clone()), b"two");
        assert_eq!(Message::new("t", "x").value, "x");
    }
}
