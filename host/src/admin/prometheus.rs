//! The pipelines' counters in the Prometheus text exposition format (0.0.4):
//! one `# HELP`/`# TYPE` pair per metric family, a `pipeline` label on every
//! sample, units in the names.

use super::Registry;
use crate::pipeline::stats::Snapshot;
use std::fmt::Write;

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
    let up = "monasca_wasm_pipeline_up";
    let _ = writeln!(out, "# HELP {up} 1 while the pipeline runs, 0 once it stopped or failed.\n# TYPE {up} gauge");
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
        let text = render(&Registry { pipelines: vec![Arc::new(view)], token: None });
        assert!(text.contains("# TYPE monasca_wasm_messages_consumed_total counter\n"), "{text}");
        assert!(text.contains("monasca_wasm_messages_consumed_total{pipeline=\"p\\\"1\"} 42\n"), "{text}");
        assert!(
            text.contains("monasca_wasm_module_info{pipeline=\"p\\\"1\",module=\"persister\",digest=\"sha256:abc\"} 1")
        );
        assert!(text.contains("monasca_wasm_pipeline_up{pipeline=\"p\\\"1\"} 1"));
    }
}
