// The body of the counter test guests (`counter-v1`, `counter-v2`,
// `counter-bad`; each sets `VERSION` and `RESTORES` and includes this file):
// a stateful guest that counts messages per value and produces
// `<VERSION> <value> <count>` for each; its state (the counts, as JSON) is
// handed over through `snapshot`/`restore` when the module is swapped.
// `RESTORES = false` refuses every state, to test a refused handover.

use monasca_guest_sdk::{Config, Effects, Message, ProcessError, Processor};
use std::collections::BTreeMap;

/// Counts per message value.
pub struct Counter {
    counts: BTreeMap<String, u64>,
}

impl Processor for Counter {
    fn init(_config: &Config) -> Result<Self, String> {
        Ok(Counter { counts: BTreeMap::new() })
    }

    fn process(&mut self, batch: Vec<Message>, out: &mut Effects) -> Result<(), ProcessError> {
        for message in batch {
            let key = String::from_utf8_lossy(&message.value).into_owned();
            let count = self.counts.entry(key.clone()).or_insert(0);
            *count += 1;
            let value = format!("{VERSION} {key} {count}").into_bytes();
            out.produce(&message, value);
        }
        Ok(())
    }

    fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(&self.counts).unwrap_or_default()
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        if !RESTORES {
            return Err(format!("{VERSION} cannot read the state of an earlier version"));
        }
        self.counts = serde_json::from_slice(bytes).map_err(|e| format!("not a counter state: {e}"))?;
        Ok(())
    }
}

monasca_guest_sdk::export!(Counter, stateful);
