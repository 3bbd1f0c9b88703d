//! The passthrough guest: copies each message (key, value, headers) to the
//! pipeline's output topic. Used by tests and benchmarks to measure what the
//! host costs around a guest that does nothing.
//!
//! Option `tag` (default none): when set, adds a `guest-tag` header with its
//! value to every output, so a test can tell which module version produced it.

use monasca_guest_sdk::{Config, Effect, Effects, Header, Message, OutputRecord, ProcessError, Processor};

/// Copies messages through.
pub struct Passthrough {
    tag: Option<String>,
}

impl Processor for Passthrough {
    fn init(config: &Config) -> Result<Self, String> {
        Ok(Passthrough { tag: config.get("tag").map(str::to_string) })
    }

    fn process(&mut self, batch: Vec<Message>, out: &mut Effects) -> Result<(), ProcessError> {
        for message in batch {
            let origin = message.origin();
            let mut headers = message.headers;
            if let Some(tag) = &self.tag {
                headers.push(Header { key: "guest-tag".into(), value: tag.as_bytes().to_vec() });
            }
            out.push(Effect::Produce(OutputRecord {
                topic: None,
                key: message.key,
                value: message.value.into(),
                headers,
                origin,
            }));
        }
        Ok(())
    }
}

monasca_guest_sdk::export!(Passthrough);

#[cfg(test)]
mod tests {
    use super::*;
    use monasca_guest_sdk::testing::Harness;

    #[test]
    fn copies_value_and_tags() {
        let mut guest = Harness::<Passthrough>::new(&[("tag", "v2")]).unwrap();
        let effects = guest.run_values("in", &["a", "b"]).unwrap();
        assert_eq!(effects.len(), 2);
        match &effects[1] {
            Effect::Produce(r) => {
                assert_eq!(r.value, b"b");
                assert_eq!(r.origin.offset, 1);
                assert_eq!(r.headers[0].key, "guest-tag");
            }
            other => panic!("expected produce, got {other:?}"),
        }
    }
}
