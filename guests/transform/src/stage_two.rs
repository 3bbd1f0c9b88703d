//! Stage two, on the partials topic: keep every source's partials of each
//! open window (one state entry per window, spec, group and source, so a
//! partial sent twice overwrites itself), and once every source's progress
//! is past a window's end, merge its groups, apply the spec (usage, rollup,
//! the pre-hourly stage) and produce the aggregated metrics.

use crate::agg::Agg;
use crate::envelope;
use crate::exchange::{self, Exchange, EMITTED, PARTIAL, SOURCE};
use crate::finish::{self, Group};
use crate::settings::Settings;
use monasca_guest_sdk::{log, state, Effect, Effects, Header, Message, Origin, OutputRecord};

fn read_time(key: &[u8]) -> Option<i64> {
    state::get(key).and_then(|b| b.try_into().ok()).map(i64::from_be_bytes)
}

/// Stage two over one batch of the partials topic.
pub fn process(settings: &Settings, batch: &[Message], now: i64, out: &mut Effects) {
    let emitted = read_time(EMITTED).unwrap_or(i64::MIN);
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
                if window_end <= emitted {
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
    if !progressed {
        return;
    }
    let Some(origin) = batch.last().map(Message::origin) else {
        return;
    };
    let sources = exchange::scan(&[SOURCE], &[SOURCE + 1]);
    if sources.len() < settings.sources {
        return;
    }
    let Some(complete) =
        sources.iter().filter_map(|(_, v)| <[u8; 8]>::try_from(v.as_slice()).ok().map(i64::from_be_bytes)).min()
    else {
        return;
    };
    if complete <= emitted {
        return;
    }
    emit_until(settings, complete, now, origin, out);
    state::put(EMITTED, &complete.to_be_bytes());
}

/// Merge, finish and produce every window ending at or before `complete`.
fn emit_until(settings: &Settings, complete: i64, now: i64, origin: Origin, out: &mut Effects) {
    let entries = exchange::scan(&[PARTIAL], &exchange::windows_until(PARTIAL, complete));
    // Entries sort by window, spec, group, then source: merge the runs.
    let mut run: Option<(i64, String)> = None;
    let mut groups: Vec<Group> = Vec::new();
    for (key, bytes) in entries {
        state::delete(&key);
        let Ok(Exchange::Partial { window_end, metric_id, group, agg, .. }) = serde_json::from_slice(&bytes) else {
            log::error("a stored partial of the transform could not be read back; it is dropped");
            continue;
        };
        if run.as_ref().is_some_and(|(w, m)| (*w, m.as_str()) != (window_end, metric_id.as_str())) {
            if let Some((w, m)) = run.take() {
                finish_window(settings, w, &m, std::mem::take(&mut groups), now, origin, out);
            }
        }
        run = Some((window_end, metric_id));
        merge_into(&mut groups, group, &agg);
    }
    if let Some((w, m)) = run {
        finish_window(settings, w, &m, groups, now, origin, out);
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
