//! Stage one, on each partition of the metrics topic: read metrics as
//! monasca-transform's record store does, reduce them into the groups of their
//! windows (partition state), and once the partition's watermark has passed a
//! window's end plus the allowed lateness, send the window's groups and then
//! the partition's progress to the partials topic.
//!
//! The watermark is the latest metric time the partition has seen. It moves
//! with the data only, so a replay after a crash closes the same windows at
//! the same places; an idle partition's watermark moves on with the wall
//! clock once it has been idle for `idle-timeout-ms` (on timer calls).

use crate::agg::Agg;
use crate::exchange::{self, Exchange, KeyMap, CLOCK, EXCHANGE_KEY, MAX_KEY, SLOT};
use crate::record::Metric;
use crate::settings::{LatePolicy, Settings};
use monasca_guest_sdk::{log, state, Effect, Effects, Message, Origin, OutputRecord};
use serde::{Deserialize, Serialize};

/// Most groups one call sends to stage two.
pub const CLOSE_PER_CALL: u32 = 5_000;

/// A source partition's clock, kept in its state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Clock {
    /// `topic/partition`.
    pub source: String,
    /// Latest metric time seen (ms), `None` before the first metric.
    pub watermark: Option<i64>,
    /// Wall clock of the last batch with messages.
    pub wall: i64,
    /// Windows ending at or before this are closed; a metric for one is late.
    pub closed: i64,
    /// Windows ending at or before this have been sent to stage two.
    #[serde(default)]
    pub emitted: Option<i64>,
    /// Progress last sent to stage two (`None`: never, not even a hello).
    pub announced: Option<i64>,
    /// Late metrics dropped under `late-metrics = count`.
    #[serde(default)]
    pub late: u64,
    /// Metrics dropped because a required raw field was missing or empty.
    #[serde(default)]
    pub incomplete: u64,
}

impl Clock {
    pub fn load() -> Option<Clock> {
        state::get(CLOCK).and_then(|b| serde_json::from_slice(&b).ok())
    }

    fn save(&self) {
        if let Ok(bytes) = serde_json::to_vec(self) {
            state::put(CLOCK, &bytes);
        }
    }
}

/// Stage one over one batch (`batch` empty for a timer call).
pub fn process(settings: &Settings, source: &str, batch: &[Message], now: i64, out: &mut Effects) {
    let mut clock = Clock::load().unwrap_or(Clock {
        source: source.to_string(),
        watermark: None,
        wall: now,
        closed: i64::MIN,
        emitted: None,
        announced: None,
        late: 0,
        incomplete: 0,
    });
    let mut slots: KeyMap<Agg> = KeyMap::default();
    let mut key = Vec::with_capacity(128);
    for message in batch {
        if let Err(reason) = reduce(settings, &mut clock, message, now, &mut slots, &mut key) {
            match reason {
                Refusal::Reject(reason) => out.reject(message, reason),
                Refusal::Late(reason) => match settings.late {
                    LatePolicy::DeadLetter => out.reject(message, reason),
                    LatePolicy::Count => clock.late += 1,
                },
            }
        }
    }
    for (key, agg) in &slots {
        state::put(key, &agg.to_bytes());
    }
    let origin = match batch.last() {
        Some(message) => {
            clock.wall = now;
            message.origin()
        }
        None => Origin::timer(),
    };
    close(settings, &mut clock, now, batch.is_empty(), origin, out);
    clock.save();
}

enum Refusal {
    Reject(String),
    Late(String),
}

/// Add one message to its groups.
fn reduce(
    settings: &Settings,
    clock: &mut Clock,
    message: &Message,
    now: i64,
    slots: &mut KeyMap<Agg>,
    key: &mut Vec<u8>,
) -> Result<(), Refusal> {
    let metric = Metric::parse(&message.value).map_err(Refusal::Reject)?;
    let Some(pre) = settings.specs.by_event_type.get(metric.name.as_ref()) else {
        return Ok(());
    };
    if !metric.has_required(pre) {
        clock.incomplete += 1;
        return Ok(());
    }
    let ts = metric.timestamp_ms;
    if ts > now.saturating_add(settings.max_future_ms) {
        return Err(Refusal::Reject(format!(
            "metric.timestamp {ts} is more than max-future-ms ({} ms) ahead of the host's clock ({now})",
            settings.max_future_ms
        )));
    }
    let specs = pre.transforms.iter().map(|&i| &settings.specs.transforms[i]);
    if let Some(spec) = specs.clone().find(|s| s.period.window_start(ts) + s.period.millis() <= clock.closed) {
        return Err(Refusal::Late(format!(
            "late metric: its {} window (ending {}) closed when this partition's watermark passed {} \
             (allowed lateness {} ms)",
            spec.period.name(),
            spec.period.window_start(ts) + spec.period.millis(),
            clock.closed.saturating_add(settings.lateness_ms),
            settings.lateness_ms
        )));
    }
    for spec in specs {
        if !metric.passes(&spec.filters, pre, &spec.metric_id) {
            continue;
        }
        let window_end = spec.period.window_start(ts) + spec.period.millis();
        exchange::start_key(key, SLOT, window_end, &spec.metric_id);
        for column in &spec.group_by {
            metric.push_column(key, column, pre, &spec.metric_id);
        }
        if key.len() > MAX_KEY {
            return Err(Refusal::Reject(format!(
                "the group values of transform spec `{}` are {} bytes long, over {MAX_KEY}",
                spec.metric_id,
                key.len()
            )));
        }
        match slots.get_mut(key.as_slice()) {
            Some(agg) => agg.add(ts, metric.value),
            None => {
                let agg = match state::get(key).as_deref().and_then(Agg::from_bytes) {
                    Some(mut agg) => {
                        agg.add(ts, metric.value);
                        agg
                    }
                    None => Agg::new(ts, metric.value),
                };
                slots.insert(key.clone(), agg);
            }
        }
    }
    let watermark = clock.watermark.map_or(ts, |w| w.max(ts));
    clock.watermark = Some(watermark);
    // Closed at once, not at the end of the batch: whether a metric is late
    // must not depend on where the host cut the batches.
    clock.closed = clock.closed.max(watermark.saturating_sub(settings.lateness_ms));
    Ok(())
}

/// Close the windows the watermark has passed: send their groups and the
/// partition's progress to the partials topic.
fn close(settings: &Settings, clock: &mut Clock, now: i64, timer: bool, origin: Origin, out: &mut Effects) {
    let Some(watermark) = clock.watermark else {
        return;
    };
    let idle = now - clock.wall;
    let effective = if timer && idle >= settings.idle_timeout_ms { watermark.saturating_add(idle) } else { watermark };
    clock.closed = clock.closed.max(effective.saturating_sub(settings.lateness_ms));
    if clock.emitted.is_none_or(|emitted| clock.closed > emitted) {
        // A page of groups per call (the next calls, timer calls included,
        // send the rest): a window of 100,000 groups must not need 100,000
        // records' worth of guest memory in one call.
        let end = exchange::windows_until(SLOT, clock.closed);
        let page = state::range(&[SLOT], Some(&end), CLOSE_PER_CALL);
        let complete = page.len() < CLOSE_PER_CALL as usize;
        for (key, bytes) in page {
            state::delete(&key);
            let (Some((window_end, metric_id, group)), Some(agg)) =
                (exchange::parse_group_key(&key, settings.specs.metric_ids()), Agg::from_bytes(&bytes))
            else {
                log::warn("a stored group of a spec this configuration lacks (or unreadable) is dropped");
                continue;
            };
            let partial = Exchange::Partial { source: clock.source.clone(), window_end, metric_id, group, agg };
            send(settings, &partial, origin, out);
        }
        if !complete {
            return;
        }
        clock.emitted = Some(clock.closed);
    }
    // Progress only once every closed window has been sent; stage two only
    // needs it at window boundaries.
    let step = settings.specs.shortest_period();
    let aligned = clock.closed.div_euclid(step).saturating_mul(step);
    let due = match clock.announced {
        None => true,
        Some(previous) => aligned > previous,
    };
    if due {
        send(settings, &Exchange::Progress { source: clock.source.clone(), closed: aligned }, origin, out);
        clock.announced = Some(aligned);
    }
}

fn send(settings: &Settings, record: &Exchange, origin: Origin, out: &mut Effects) {
    let Ok(value) = serde_json::to_vec(record) else {
        return;
    };
    out.push(Effect::Produce(OutputRecord {
        topic: Some(settings.partials_topic.clone()),
        key: Some(EXCHANGE_KEY.to_vec()),
        value,
        headers: Vec::new(),
        origin,
    }));
}
