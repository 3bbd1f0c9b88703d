// The body of the tagger test guests, shared by `tagger-v1` and `tagger-v2`
// (each sets `VERSION` and includes this file): copies every message to the
// output topic with a `guest-version` header holding `VERSION`, so a test can
// tell which module processed each message.

use monasca_guest_sdk::{Config, Effect, Effects, Header, Message, OutputRecord, ProcessError, Processor};

/// Copies messages through, tagged with the module's version.
pub struct Tagger;

impl Processor for Tagger {
    fn init(_config: &Config) -> Result<Self, String> {
        Ok(Tagger)
    }

    fn process(&mut self, batch: Vec<Message>, out: &mut Effects) -> Result<(), ProcessError> {
        for message in batch {
            let origin = message.origin();
            let mut headers = message.headers;
            headers.push(Header { key: "guest-version".into(), value: VERSION.as_bytes().to_vec() });
            out.push(Effect::Produce(OutputRecord { topic: None, key: message.key, value: message.value.into(), headers, origin }));
        }
        Ok(())
    }
}

monasca_guest_sdk::export!(Tagger);
