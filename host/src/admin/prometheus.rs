//! The pipelines' counters in the Prometheus text exposition format (0.0.4):
//! one `# HELP`/`# TYPE` pair per metric family, a `pipeline` label on every
//! sample, units in the names.

use super::Registry;
use crate::pipeline::stats::{Histogram, Snapshot, Stats, BUCKETS};
use std::fmt::Write;

/// A counter family read from a pipeline's stats: name, help, reader.
type StatsFamily = (&'static str, &'static str, fn(&Stats) -> u64);

/// The `Content-Type` of the exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A counter family: name, help, and how to read it from a snapshot.
type Counter = (&'static str, &'static str, fn(&Snapshot) -> u64);

/// The counter families.
const COUNTERS: &[Counter] = &[
    ("monasca_wasm_messages_consumed_total", "Messages consumed from Kafka.", |s| s.consumed),
    ("monasca_wasm_batches_total", "Batches whose effects are all done.", |s| s.batches),
    ("monasca_wasm_records_produced_total", "Records produced and acknowledged.", |s| s.produced),
    ("monasca_wasm_points_stored_total", "Points accepted by sinks.", |s| s.stored),
    ("monasca_wasm_messages_dead_lettered_total", "Messages sent to the dead-letter topic.", |s| s.dead_lettered),
    ("monasca_wasm_guest_failures_total", "Guest calls that failed (trap, deadline, limit, batch error).", |s| {
        s.guest_failures
    }),
    ("monasca_wasm_module_swaps_total", "Modules deployed into the running pipeline.", |s| s.swaps),
    ("monasca_wasm_module_rollbacks_total", "Modules rolled back to the previous one.", |s| s.rollbacks),
    ("monasca_wasm_guest_traps_total", "Guest calls that trapped (panics, faults).", |s| s.traps),
    ("monasca_wasm_guest_deadline_hits_total", "Guest calls stopped at their deadline.", |s| s.deadline_hits),
    ("monasca_wasm_guest_memory_limit_hits_total", "Guest calls stopped at the memory cap.", |s| s.memory_limit_hits),
    ("monasca_wasm_notifications_sent_total", "Notifications delivered.", |s| s.notifications_sent),
    ("monasca_wasm_notifications_failed_total", "Notifications whose delivery failed.", |s| s.notifications_failed),
    ("monasca_wasm_notifications_refused_total", "Notifications refused (allowlist, bad destination).", |s| {
        s.notifications_refused
    }),
    ("monasca_wasm_notifications_skipped_total", "Notifications not sent again: the ledger has them as sent.", |s| {
        s.notifications_skipped
    }),
];

/// A sink counter family: name, help, and how to read it.
type SinkFamily = (&'static str, &'static str, fn(&crate::sinks::SinkHealth) -> u64);

/// A histogram family: name, help, and which histogram of the stats.
type HistogramFamily = (&'static str, &'static str, fn(&Stats) -> &Histogram);

const HISTOGRAMS: &[HistogramFamily] = &[
    (
        "monasca_wasm_batch_duration_seconds",
        "From cutting a batch to its effects being done and its offset stored.",
        |s| &s.batch_latency,
    ),
    ("monasca_wasm_guest_call_duration_seconds", "Time in the guest per batch.", |s| &s.guest_time),
    (
        "monasca_wasm_http_request_duration_seconds",
        "From an HTTP request's arrival to its answer (pipelines with an HTTP source).",
        |s| &s.http_latency,
    ),
];

/// Render every pipeline's metrics.
pub fn render(registry: &Registry) -> String {
    let snapshots: Vec<(&str, Snapshot)> =
        registry.pipelines.iter().map(|p| (p.name.as_str(), p.stats.snapshot())).collect();
    let mut out = String::with_capacity(2048);
    for (name, help, read) in COUNTERS {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (pipeline, snapshot) in &snapshots {
            let _ = writeln!(out, "{name}{{pipeline=\"{}\"}} {}", label(pipeline), read(snapshot));
        }
    }
    let info = "monasca_wasm_module_info";
    let _ = writeln!(out, "# HELP {info} The guest module a pipeline runs (value 1).\n# TYPE {info} gauge");
    for p in &registry.pipelines {
        let (module, digest) = p.module();
        let _ = writeln!(
            out,
            "{info}{{pipeline=\"{}\",module=\"{}\",digest=\"sha256:{}\"}} 1",
            label(&p.name),
            label(&module),
            label(&digest)
        );
    }
    for (name, help, pick) in HISTOGRAMS {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for p in &registry.pipelines {
            let (cumulative, sum) = pick(&p.stats).read();
            let pipeline = label(&p.name);
            for (le, count) in BUCKETS.iter().map(|b| b.to_string()).chain(["+Inf".to_string()]).zip(&cumulative) {
                let _ = writeln!(out, "{name}_bucket{{pipeline=\"{pipeline}\",le=\"{le}\"}} {count}");
            }
            let total = cumulative.last().copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "{name}_sum{{pipeline=\"{pipeline}\"}} {sum}\n{name}_count{{pipeline=\"{pipeline}\"}} {total}"
            );
        }
    }
    let answers = "monasca_wasm_http_responses_total";
    let _ = writeln!(
        out,
        "# HELP {answers} HTTP answers by status (pipelines with an HTTP source).\n# TYPE {answers} counter"
    );
    for p in &registry.pipelines {
        let by_status = p.stats.http_answers.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for (status, count) in by_status {
            let _ = writeln!(out, "{answers}{{pipeline=\"{}\",status=\"{status}\"}} {count}", label(&p.name));
        }
    }
    let queue = "monasca_wasm_producer_queue_messages";
    let _ = writeln!(out, "# HELP {queue} Records sent and not yet acknowledged.\n# TYPE {queue} gauge");
    for (pipeline, snapshot) in &snapshots {
        let _ = writeln!(out, "{queue}{{pipeline=\"{}\"}} {}", label(pipeline), snapshot.producer_queue);
    }
    let lag = "monasca_wasm_consumer_lag_messages";
    let _ = writeln!(
        out,
        "# HELP {lag} Messages behind the partition's end (high watermark minus position).\n# TYPE {lag} gauge"
    );
    for p in &registry.pipelines {
        for ((topic, partition), behind) in p.stats.lag() {
            let _ = writeln!(
                out,
                "{lag}{{pipeline=\"{}\",topic=\"{}\",partition=\"{partition}\"}} {behind}",
                label(&p.name),
                label(&topic)
            );
        }
    }
    let (keys, bytes) = ("monasca_wasm_state_keys", "monasca_wasm_state_bytes");
    let _ = writeln!(out, "# HELP {keys} Keys a keyed guest's partition state holds.\n# TYPE {keys} gauge");
    let _ = writeln!(
        out,
        "# HELP {bytes} Bytes of keys and values a keyed guest's partition state holds.\n# TYPE {bytes} gauge"
    );
    for p in &registry.pipelines {
        for ((topic, partition), (n, size)) in p.stats.state() {
            let labels =
                format!("pipeline=\"{}\",topic=\"{}\",partition=\"{partition}\"", label(&p.name), label(&topic));
            let _ = writeln!(out, "{keys}{{{labels}}} {n}\n{bytes}{{{labels}}} {size}");
        }
    }
    let counters: [StatsFamily; 4] = [
        ("monasca_wasm_state_restores_total", "Partition states restored from the changelog.", |s| {
            s.restores.load(std::sync::atomic::Ordering::Relaxed)
        }),
        ("monasca_wasm_transactions_total", "Kafka transactions committed.", |s| {
            s.transactions.load(std::sync::atomic::Ordering::Relaxed)
        }),
        ("monasca_wasm_timer_calls_total", "Timer calls of a keyed guest.", |s| {
            s.ticks.load(std::sync::atomic::Ordering::Relaxed)
        }),
        ("monasca_wasm_pipeline_restarts_total", "Times the pipeline failed and was started again.", |s| {
            s.restarts.load(std::sync::atomic::Ordering::Relaxed)
        }),
    ];
    for (name, help, read) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for p in &registry.pipelines {
            let _ = writeln!(out, "{name}{{pipeline=\"{}\"}} {}", label(&p.name), read(&p.stats));
        }
    }
    if let Some(sinks) = &registry.sinks {
        let health = sinks.health();
        let families: [SinkFamily; 3] = [
            ("monasca_wasm_sink_retries_total", "Sink requests retried (the batch's offsets wait).", |h| h.retries),
            ("monasca_wasm_sink_points_refused_total", "Points a sink refused for good (dead-lettered).", |h| {
                h.refused
            }),
            ("monasca_wasm_sink_errors_total", "Sink writes that failed for good.", |h| h.errors),
        ];
        for (name, help, read) in families {
            let _ = writeln!(
                out,
                "# HELP {name} {help} Labelled by sink (sinks are shared by pipelines).\n# TYPE {name} counter"
            );
            for h in &health {
                let _ = writeln!(out, "{name}{{sink=\"{}\"}} {}", label(&h.name), read(h));
            }
        }
    }
    if let Some(notifiers) = &registry.notifiers {
        let name = "monasca_wasm_notifier_deliveries_total";
        let _ = writeln!(
            out,
            "# HELP {name} Notification deliveries by channel and outcome (sent, failed, refused; skipped: \
             the ledger had them as sent). Notifiers are shared by pipelines.\n# TYPE {name} counter"
        );
        for ((channel, outcome), count) in notifiers.counts().read() {
            let _ = writeln!(out, "{name}{{channel=\"{}\",outcome=\"{outcome}\"}} {count}", label(&channel));
        }
    }
    let (entries, bytes) = ("monasca_wasm_lookup_cache_entries", "monasca_wasm_lookup_cache_bytes");
    let _ = writeln!(
        out,
        "# HELP {entries} Lookup answers cached (at most 10,000 a pipeline).\n# TYPE {entries} gauge\n\
         # HELP {bytes} Bytes of cached lookup answers, estimated (at most 16 MiB a pipeline).\n# TYPE {bytes} gauge"
    );
    for p in &registry.pipelines {
        if let Some(deployer) = &p.deployer {
            let (n, size) = deployer.lookup_cache_size();
            let _ =
                writeln!(out, "{entries}{{pipeline=\"{0}\"}} {n}\n{bytes}{{pipeline=\"{0}\"}} {size}", label(&p.name));
        }
    }
    let dropped = "monasca_wasm_guest_log_lines_dropped_total";
    let _ = writeln!(
        out,
        "# HELP {dropped} Guest log lines dropped over the per-instance rate limit, all pipelines together.\n# TYPE {dropped} counter\n{dropped} {}",
        crate::engine::guest_log::DROPPED.load(std::sync::atomic::Ordering::Relaxed)
    );
    let up = "monasca_wasm_pipeline_up";
    let _ = writeln!(
        out,
        "# HELP {up} 1 while the pipeline runs, 0 once it stopped or failed (and while it waits to restart).\n# TYPE {up} gauge"
    );
    for p in &registry.pipelines {
        let running = u8::from(p.state() == super::PipelineState::Running);
        let _ = writeln!(out, "{up}{{pipeline=\"{}\"}} {running}", label(&p.name));
    }
    out
}

/// A label value with `\`, `"` and newlines escaped.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::PipelineView;
    use crate::pipeline::stats::Stats;
    use std::sync::Arc;

    #[test]
    fn renders_counters_with_a_pipeline_label() {
        let stats = Arc::new(Stats::default());
        Stats::add(&stats.consumed, 42);
        let view = PipelineView::new("p\"1", "persister", "abc", &["metrics".into()], "g", stats);
        let text = render(&Registry { pipelines: vec![Arc::new(view)], ..Default::default() });
        assert!(text.contains("# TYPE monasca_wasm_messages_consumed_total counter\n"), "{text}");
        assert!(text.contains("monasca_wasm_messages_consumed_total{pipeline=\"p\\\"1\"} 42\n"), "{text}");
        assert!(
            text.contains("monasca_wasm_module_info{pipeline=\"p\\\"1\",module=\"persister\",digest=\"sha256:abc\"} 1")
        );
        assert!(text.contains("monasca_wasm_pipeline_up{pipeline=\"p\\\"1\"} 1"));
    }
}
