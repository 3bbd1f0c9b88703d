//! What a guest receives: Kafka messages and its configuration.

use serde::de::DeserializeOwned;

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

/// One Kafka message, as the host consumed it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Message {
    /// Topic it was read from.
    pub topic: String,
    /// Partition of that topic.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// Kafka timestamp in milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Record value.
    pub value: Vec<u8>,
    /// Record headers.
    pub headers: Vec<Header>,
}

impl Message {
    /// A message with a topic and a value; the other fields are zero. Handy in tests.
    pub fn new(topic: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
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
