//! The output budget of one batch: the effects a guest returns for a batch,
//! over all the calls it takes, are counted and their bytes estimated as the
//! host will hold them; a batch over `[engine] max_batch_effects` or
//! `max_batch_output_mib` fails like a guest error (its messages are then
//! isolated one by one, and one message whose effects alone are over the
//! budget is dead-lettered) instead of making the host hold gigabytes.

use super::types::{Effect, FieldValue, OutputRecord};

/// The most a batch's effects may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputBudget {
    /// Effects (records, points batches, notifications, rejections).
    pub max_effects: usize,
    /// Bytes, estimated as the host holds them.
    pub max_bytes: usize,
}

impl Default for OutputBudget {
    fn default() -> Self {
        OutputBudget { max_effects: 200_000, max_bytes: 128 << 20 }
    }
}

/// What a batch's effects have used of the budget so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spent {
    /// Effects so far.
    pub effects: usize,
    /// Estimated bytes so far.
    pub bytes: usize,
}

impl Spent {
    /// Add `effects`; `false` once the total is over `budget`.
    pub fn charge(&mut self, effects: &[Effect], budget: &OutputBudget) -> bool {
        self.effects = self.effects.saturating_add(effects.len());
        for effect in effects {
            self.bytes = self.bytes.saturating_add(size(effect));
        }
        self.effects <= budget.max_effects && self.bytes <= budget.max_bytes
    }
}

/// Bookkeeping of one effect, record or point, beside its payload.
const OVERHEAD: usize = 64;

fn record_size(r: &OutputRecord) -> usize {
    OVERHEAD
        + r.topic.as_ref().map_or(0, String::len)
        + r.key.as_ref().map_or(0, Vec::len)
        + r.value.len()
        + r.headers.iter().map(|h| OVERHEAD + h.key.len() + h.value.len()).sum::<usize>()
}

/// The bytes the host holds for `effect`, estimated.
pub fn size(effect: &Effect) -> usize {
    match effect {
        Effect::Produce(r) => record_size(r),
        Effect::Store(batch) => {
            let point = |p: &super::types::Point| {
                OVERHEAD
                    + p.measurement.len()
                    + p.tags.iter().map(|(k, v)| OVERHEAD + k.len() + v.len()).sum::<usize>()
                    + p.fields
                        .iter()
                        .map(|(k, v)| OVERHEAD + k.len() + if let FieldValue::Text(t) = v { t.len() } else { 8 })
                        .sum::<usize>()
            };
            OVERHEAD + batch.sink.len() + batch.points.iter().map(point).sum::<usize>()
        }
        Effect::StoreEncoded(e) => OVERHEAD + e.sink.len() + e.body.len() + 16 * e.origins.len(),
        Effect::Notify(n) => {
            OVERHEAD
                + n.channel.len()
                + n.destination.len()
                + n.body.len()
                + n.idempotency_key.len()
                + n.attributes.iter().map(|(k, v)| OVERHEAD + k.len() + v.len()).sum::<usize>()
                + n.on_sent.iter().chain(&n.on_failed).map(record_size).sum::<usize>()
        }
        Effect::Reject(r) => OVERHEAD + r.reason.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::types::{Header, Origin, Rejection};

    fn record(value: usize) -> Effect {
        Effect::Produce(OutputRecord {
            topic: Some("out".into()),
            key: Some(vec![1; 10]),
            value: vec![0; value],
            headers: vec![Header { key: "h".into(), value: vec![2; 5] }],
            origin: Origin { partition: 0, offset: 0 },
        })
    }

    #[test]
    fn effects_are_charged_by_count_and_bytes() {
        let budget = OutputBudget { max_effects: 3, max_bytes: 10_000 };
        let mut spent = Spent::default();
        assert!(spent.charge(&[record(100), record(100)], &budget));
        assert_eq!(spent, Spent { effects: 2, bytes: 2 * (64 + 3 + 10 + 100 + 64 + 1 + 5) });
        assert!(!spent.charge(&[record(0), record(0)], &budget), "four effects are over three");
        let mut big = Spent::default();
        assert!(!big.charge(&[record(20_000)], &budget), "one effect over the bytes");
        let reject = Effect::Reject(Rejection { reason: "r".repeat(10), origin: Origin { partition: 0, offset: 1 } });
        assert_eq!(size(&reject), 74);
    }
}
