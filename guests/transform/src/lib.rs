//! The transform guest: monasca-transform's aggregation specs on event-time
//! windows, kept in the host's partition state, exactly once.
//!
//! One pipeline reads two topics: the metrics (stage one, any number of
//! partitions) and the transform's own partials topic (stage two). Stage one
//! reduces each window's groups per metrics partition and hands them on when
//! the partition's watermark passes the window's end plus the allowed
//! lateness; stage two merges the partials of every partition and produces
//! the aggregated metrics (`<name>_agg`, as the original names them) to the
//! pipeline's output topic once every partition is past the window. See
//! `stage_one`, `stage_two` and the guest guide's transform section.
//!
//! Options (`[pipeline.config]` or `--config key=value`):
//! | key | default | meaning |
//! |---|---|---|
//! | `pre-transform-specs` | the shipped specs | `pre_transform_specs`, JSON lines or a JSON array |
//! | `transform-specs` | the shipped specs | `transform_specs`, JSON lines or a JSON array |
//! | `aggregation-period` | each spec's | `hourly`, `minutely`, `secondly` or `daily` for every spec |
//! | `allowed-lateness-ms` | `600000` | a window closes when the watermark passes its end plus this |
//! | `late-metrics` | `dead-letter` | `dead-letter` or `count` for metrics whose window closed |
//! | `idle-timeout-ms` | the lateness | an idle partition's watermark follows the clock after this |
//! | `max-future-ms` | `3600000` | metrics further ahead of the host's clock are dead-lettered |
//! | `partials-topic` | `metrics_transform_partials` | the topic between the stages (the pipeline reads it too) |
//! | `sources` | `0` | metrics partitions stage two waits for before closing (0: those it has heard from) |
//! | `timestamp` | `window-start` | `window-start` or `processing-time` (the original's) |
//! | `publish-kafka-project-id` | `111111` | `meta.tenantId` of the aggregated metrics |
//! | `publish-region` | `useast` | `meta.region` of the aggregated metrics |
//! | `pre-hourly-topic` | none | also send each row in the original's `metrics_pre_hourly` format |
//! | `dead-letter-topic` | `transform.dead-letter` | where aggregated metrics that fail validation go |

pub mod agg;
pub mod envelope;
pub mod exchange;
pub mod finish;
pub mod record;
pub mod settings;
pub mod spec;
pub mod stage_one;
pub mod stage_two;

use monasca_guest_sdk::{clock, Config, Effects, Message, ProcessError, Processor};
use settings::Settings;

/// The transform guest.
pub struct Transform {
    settings: Settings,
}

impl Processor for Transform {
    fn init(config: &Config) -> Result<Self, String> {
        Ok(Transform { settings: Settings::from_config(config)? })
    }

    fn process(&mut self, batch: Vec<Message>, out: &mut Effects) -> Result<(), ProcessError> {
        let now = clock::now_ms();
        let Some(first) = batch.first() else {
            // A timer call: a metrics partition's watermark moves on when
            // idle; both stages go on with windows left half sent.
            match stage_one::Clock::load() {
                Some(clock) => stage_one::process(&self.settings, &clock.source, &[], now, out),
                None => stage_two::resume(&self.settings, now, monasca_guest_sdk::Origin::timer(), out),
            }
            return Ok(());
        };
        if first.topic == self.settings.partials_topic.as_str() {
            stage_two::process(&self.settings, &batch, now, out);
        } else {
            let source = format!("{}/{}", first.topic.as_str(), first.partition);
            stage_one::process(&self.settings, &source, &batch, now, out);
        }
        Ok(())
    }
}

monasca_guest_sdk::export!(Transform);
