//! Stage two, on the partials topic: keep every source's partials of each
//! open window (one state entry per window, spec, group and source, so a
//! partial sent twice overwrites itself), and once every source's progress
//! is past a window's end, merge its groups, apply the spec (usage, rollup,
//! the pre-hourly stage) and produce the aggregated metrics. A call merges
//! at most about `MERGE_PER_CALL` partials (whole windows of a spec); the
//! next calls, timer calls included, go on where it stopped.

use crate::agg::Agg;
use crate::envelope;
use crate::exchange::{self, Exchange, EMITTED, PARTIAL, SOURCE, TARGET};
use crate::finish::{self, Group};
use crate::settings::Settings;
use monasca_guest_sdk::{log, state, Effect, Effects, Header, Message, Origin, OutputRecord};

/// Partials merged per call, about (a spec's window is merged whole).
pub const MERGE_PER_CALL: usize = 20_000;

fn read_time(key: &[u8]) -> Option<i64> {
    state::get(key).and_then(|b| b.try_into().ok()).map(i64::from_be_bytes)
}

/// Stage two over one batch of the partials topic.
pub fn process(settings: &Settings, batch: &[Message], now: i64, out: &mut Effects) {
    let due = read_time(TARGET).unwrap_or(i64::MIN);
    let mut progressed = false;
    for message in batch {
        let record: Exchange = match serde_json::from_slice(&message.value) {
            Ok(record) => record,
            Err(e) => {
                out.reject(message, format!("not a record of the transform's partials topic: {e}"));
                continue;
            }
        };
        match record {
            Exchange::Partial { ref source, window_end, ref metric_id, ref group, .. } => {
                if window_end <= due {
                    let seen = read_time(&exchange::source_key(source)).unwrap_or(i64::MIN);
                    if window_end > seen {
                        out.reject(
                            message,
                            format!(
                                "partial of a window already emitted (ending {window_end}): source {source} \
                                 was not known when the window closed; set the `sources` option to the number \
                                 of metrics partitions"
                            ),
                        );
                    }
                    // Otherwise a source's replay of a partial already merged.
                    continue;
                }
                let key = exchange::group_key(PARTIAL, window_end, metric_id, group, Some(source));
                state::put(&key, &message.value);
            }
            Exchange::Progress { source, closed } => {
                let key = exchange::source_key(&source);
                if read_time(&key).is_none_or(|seen| closed > seen) {
                    state::put(&key, &closed.to_be_bytes());
                    progressed = true;
                }
            }
        }
    }
    let origin = batch.last().map(Message::origin).unwrap_or_else(Origin::timer);
    if progressed {
        let sources = exchange::scan(&[SOURCE], &[SOURCE + 1]);
        let complete =
            sources.iter().filter_map(|(_, v)| <[u8; 8]>::try_from(v.as_slice()).ok().map(i64::from_be_bytes)).min();
        if let Some(complete) = complete.filter(|c| sources.len() >= settings.sources && *c > due) {
            state::put(TARGET, &complete.to_be_bytes());
        }
    }
    resume(settings, now, origin, out);
}

/// Go on emitting the windows that are due (also on timer calls).
pub fn resume(settings: &Settings, now: i64, origin: Origin, out: &mut Effects) {
    let Some(due) = read_time(TARGET) else {
        return;
    };
    if read_time(EMITTED).is_some_and(|emitted| emitted >= due) {
        return;
    }
    if emit_until(settings, due, now, origin, out) {
        state::put(EMITTED, &due.to_be_bytes());
    }
}

/// Merge, finish and produce the windows ending at or before `complete`, a
/// spec's window at a time, until about `MERGE_PER_CALL` partials are
/// merged; true when none is left.
fn emit_until(settings: &Settings, complete: i64, now: i64, origin: Origin, out: &mut Effects) -> bool {
    let end = exchange::windows_until(PARTIAL, complete);
    let mut merged = 0;
    loop {
        let Some((first, _)) = state::range(&[PARTIAL], Some(&end), 1).pop() else {
            return true;
        };
        if merged >= MERGE_PER_CALL {
            return false;
        }
        // One spec's window: prefix, window end (8 bytes), spec id hash (4).
        let run = first.get(..13).unwrap_or(&first).to_vec();
        let run_end = exchange::prefix_end(&run);
        let (mut window, mut groups) = (None, Vec::new());
        let mut from = run.clone();
        loop {
            let page = state::range(&from, Some(&run_end), 5_000);
            let full = page.len() == 5_000;
            if let Some((last, _)) = page.last() {
                from = last.clone();
                from.push(0);
            }
            for (key, bytes) in page {
                state::delete(&key);
                merged += 1;
                let Ok(Exchange::Partial { window_end, metric_id, group, agg, .. }) = serde_json::from_slice(&bytes)
                else {
                    log::error("a stored partial of the transform could not be read back; it is dropped");
                    continue;
                };
                window.get_or_insert((window_end, metric_id));
                merge_into(&mut groups, group, &agg);
            }
            if !full {
                break;
            }
        }
        if let Some((window_end, metric_id)) = window {
            finish_window(settings, window_end, &metric_id, groups, now, origin, out);
        }
    }
}

/// Merge a partial into its group (partials of one group come one after another).
fn merge_into(groups: &mut Vec<Group>, values: Vec<Option<String>>, agg: &Agg) {
    match groups.last_mut() {
        Some(last) if last.values == values => last.agg.merge(agg),
        _ => groups.push(Group { values, agg: agg.clone() }),
    }
}

fn finish_window(
    settings: &Settings,
    window_end: i64,
    metric_id: &str,
    groups: Vec<Group>,
    now: i64,
    origin: Origin,
    out: &mut Effects,
) {
    let Some(spec) = settings.specs.transforms.iter().find(|t| t.metric_id == metric_id) else {
        log::warn(&format!("partials of transform spec `{metric_id}`, which this configuration lacks, are dropped"));
        return;
    };
    let window_start = window_end - spec.period.millis();
    for row in finish::rows(spec, window_start, &groups) {
        if let Some(topic) = &settings.pre_hourly_topic {
            let value = envelope::instance_usage(spec, &row).into_bytes();
            out.push(produce(Some(topic.clone()), value, Vec::new(), origin));
        }
        let timestamp = if settings.processing_time { now } else { window_start };
        let metric = envelope::metric(settings, spec, &row, timestamp, now);
        match envelope::validate(&metric) {
            Ok(()) => out.push(produce(None, envelope::to_json(&metric).into_bytes(), Vec::new(), origin)),
            Err(reason) => {
                let reason = format!("aggregated metric of transform spec `{metric_id}` is invalid: {reason}");
                let headers = vec![Header { key: "dlq.reason".into(), value: reason.into_bytes() }];
                let value = envelope::to_json(&metric).into_bytes();
                out.push(produce(Some(settings.dead_letter_topic.clone()), value, headers, origin));
            }
        }
    }
}

fn produce(topic: Option<String>, value: Vec<u8>, headers: Vec<Header>, origin: Origin) -> Effect {
    Effect::Produce(OutputRecord { topic, key: None, value, headers, origin })
}
