// The body of the keyed counter test guests (`keyed-counter`,
// `keyed-counter-v2`; each sets `VERSION` and includes this file): per-key
// running totals in the host's partition state.
//
// Each message's key names a counter and its value is an amount (decimal
// text); the guest adds the amount to the key's total, kept under the key
// in `partition-state`, and produces `<key> <total> <count>` keyed by the
// key (the count being how many messages the key has had). A value that is
// not a number is rejected. Option `tag`: a `guest-tag` header on every
// output; every output also carries `guest-version: VERSION` (tells module
// versions apart without changing the output). On a
// timer call it produces nothing, but counts the call under the key `~ticks`
// when option `count_ticks` is set.

use monasca_guest_sdk::{state, Config, Effect, Effects, Header, Message, OutputRecord, ProcessError, Processor};

/// The counter.
pub struct KeyedCounter {
    tag: Option<String>,
    count_ticks: bool,
}

/// A counter's state: total and count, 16 bytes.
fn read(key: &[u8]) -> (i64, u64) {
    match state::get(key) {
        Some(bytes) if bytes.len() == 16 => {
            let total = i64::from_be_bytes(bytes[..8].try_into().unwrap_or_default());
            let count = u64::from_be_bytes(bytes[8..].try_into().unwrap_or_default());
            (total, count)
        }
        _ => (0, 0),
    }
}

impl Processor for KeyedCounter {
    fn init(config: &Config) -> Result<Self, String> {
        Ok(KeyedCounter {
            tag: config.get("tag").map(str::to_string),
            count_ticks: config.get("count_ticks") == Some("true"),
        })
    }

    fn process(&mut self, batch: Vec<Message>, out: &mut Effects) -> Result<(), ProcessError> {
        if batch.is_empty() {
            if self.count_ticks {
                let (total, count) = read(b"~ticks");
                let mut value = (total + 1).to_be_bytes().to_vec();
                value.extend_from_slice(&(count + 1).to_be_bytes());
                state::put(b"~ticks", &value);
            }
            return Ok(());
        }
        for message in batch {
            let key = message.key.clone().unwrap_or_default();
            let amount = match message.value_str().ok().and_then(|v| v.trim().parse::<i64>().ok()) {
                Some(amount) => amount,
                None => {
                    out.reject(&message, "the value is not an integer amount");
                    continue;
                }
            };
            let (total, count) = read(&key);
            let (total, count) = (total.wrapping_add(amount), count + 1);
            let mut value = total.to_be_bytes().to_vec();
            value.extend_from_slice(&count.to_be_bytes());
            state::put(&key, &value);
            let text = format!("{} {total} {count}", String::from_utf8_lossy(&key));
            let mut headers = vec![Header { key: "guest-version".into(), value: VERSION.as_bytes().to_vec() }];
            if let Some(tag) = &self.tag {
                headers.push(Header { key: "guest-tag".into(), value: tag.as_bytes().to_vec() });
            }
            out.push(Effect::Produce(OutputRecord {
                topic: None,
                key: Some(key),
                value: text.into_bytes(),
                headers,
                origin: message.origin(),
            }));
        }
        Ok(())
    }
}

monasca_guest_sdk::export!(KeyedCounter);

#[cfg(test)]
mod tests {
    use super::*;
    use monasca_guest_sdk::testing::Harness;

    #[test]
    fn totals_run_per_key_across_batches() {
        let mut guest = Harness::<KeyedCounter>::new(&[]).unwrap();
        let batch = |values: &[(&str, &str)]| {
            values
                .iter()
                .map(|(k, v)| {
                    let mut m = Message::new("in", v.as_bytes().to_vec());
                    m.key = Some(k.as_bytes().to_vec());
                    m
                })
                .collect::<Vec<_>>()
        };
        guest.run(batch(&[("a", "2"), ("b", "1")])).unwrap();
        let effects = guest.run(batch(&[("a", "3"), ("a", "x")])).unwrap();
        match &effects[0] {
            Effect::Produce(r) => assert_eq!(r.value, b"a 5 2"),
            other => panic!("expected produce, got {other:?}"),
        }
        assert!(matches!(effects[1], Effect::Reject(_)));
        assert!(guest.tick(0).unwrap().is_empty());
    }
}
