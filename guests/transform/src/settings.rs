//! The transform guest's options (`[pipeline.config]`), read and checked at `init`.

use crate::spec::{Period, Specs, SHIPPED_PRE_TRANSFORM, SHIPPED_TRANSFORM};
use monasca_guest_sdk::Config;

/// What happens to a metric that arrives after its window closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatePolicy {
    /// Rejected: the host sends it to the dead-letter topic with the reason.
    DeadLetter,
    /// Dropped, counted in the guest's state (`late` in `--print-state`) and logged.
    Count,
}

/// Every option.
#[derive(Debug, Clone)]
pub struct Settings {
    pub specs: Specs,
    pub lateness_ms: i64,
    pub idle_timeout_ms: i64,
    pub max_future_ms: i64,
    pub late: LatePolicy,
    pub partials_topic: String,
    pub dead_letter_topic: String,
    pub pre_hourly_topic: Option<String>,
    pub sources: usize,
    pub processing_time: bool,
    pub tenant_id: String,
    pub region: String,
}

fn millis(config: &Config, key: &str, default: i64) -> Result<i64, String> {
    let value: i64 = config.parse_or(key, default)?;
    if !(0..=31 * 86_400_000).contains(&value) {
        return Err(format!("{key} = {value}: must be between 0 and 31 days in milliseconds"));
    }
    Ok(value)
}

impl Settings {
    /// Read the options; the error names the option.
    pub fn from_config(config: &Config) -> Result<Settings, String> {
        let period =
            match config.get("aggregation-period") {
                None => None,
                Some(p) => Some(Period::parse(p).ok_or_else(|| {
                    format!("aggregation-period = {p:?}: must be daily, hourly, minutely or secondly")
                })?),
            };
        let specs = Specs::parse(
            config.get_or("pre-transform-specs", SHIPPED_PRE_TRANSFORM),
            config.get_or("transform-specs", SHIPPED_TRANSFORM),
            period,
        )?;
        let lateness_ms = millis(config, "allowed-lateness-ms", 600_000)?;
        let late = match config.get_or("late-metrics", "dead-letter") {
            "dead-letter" => LatePolicy::DeadLetter,
            "count" => LatePolicy::Count,
            other => return Err(format!("late-metrics = {other:?}: must be dead-letter or count")),
        };
        let processing_time = match config.get_or("timestamp", "window-start") {
            "window-start" => false,
            "processing-time" => true,
            other => return Err(format!("timestamp = {other:?}: must be window-start or processing-time")),
        };
        let sources: usize = config.parse_or("sources", 0)?;
        if sources > 100_000 {
            return Err(format!("sources = {sources}: at most 100000"));
        }
        Ok(Settings {
            specs,
            lateness_ms,
            idle_timeout_ms: millis(config, "idle-timeout-ms", lateness_ms.max(1_000))?,
            max_future_ms: millis(config, "max-future-ms", 3_600_000)?,
            late,
            partials_topic: config.get_or("partials-topic", "metrics_transform_partials").to_string(),
            dead_letter_topic: config.get_or("dead-letter-topic", "transform.dead-letter").to_string(),
            pre_hourly_topic: config.get("pre-hourly-topic").filter(|t| !t.is_empty()).map(str::to_string),
            sources,
            processing_time,
            tenant_id: config.get_or("publish-kafka-project-id", "111111").to_string(),
            region: config.get_or("publish-region", "useast").to_string(),
        })
    }
}
