//! What a hostile guest costs the host: for each misdeed of the `hostile`
//! test guest, how long the call takes to be stopped and how far the host's
//! resident memory peaks above where it was; and what isolating a batch of
//! poison messages costs, plain bisection against the host's isolation, side
//! by side in one run.
//!
//! Run: `cargo bench -p monasca-wasm --bench hostile` (env `ROUNDS`, default
//! 3). Prints the tables and writes `target/bench-reports/hostile.md`.
//!
//! Method. Each misdeed runs on a fresh instance with the engine's default
//! sandbox (64 MiB memory cap, 5 s call deadline, output budget 200,000
//! effects / 128 MiB) on a batch of 128 messages (the `flood` batch: 1,000).
//! "Stopped after" is the wall time of the failing call; "peak RSS" is the
//! process's peak resident set (`VmHWM`, reset through
//! `/proc/self/clear_refs` before each run) less its resident set before the
//! run. Poison: a batch of n messages that all panic (n = 200), and one of
//! messages that all hang until the deadline (n = 12, deadline 300 ms), once
//! with plain bisection (what the host did before: halve until alone) and
//! once with `pipeline::isolate`; the table gives failed calls and time.
//! Medians over `ROUNDS`.

mod common;

use common::{env_number, median};
use monasca_test_programs::HOSTILE;
use monasca_wasm::engine::types::Message;
use monasca_wasm::engine::{Engine, EngineSettings, Instance};
use monasca_wasm::pipeline::stats::Stats;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn messages(n: usize, value: &str) -> Vec<Message> {
    (0..n)
        .map(|i| Message {
            topic: "in".into(),
            partition: 0,
            offset: i as i64,
            timestamp_ms: None,
            key: None,
            value: bytes::Bytes::from(format!("{value}-{i}")),
            headers: Vec::new(),
            tombstone: false,
        })
        .collect()
}

fn engine(deadline: Duration) -> Engine {
    let settings = EngineSettings { call_deadline: deadline, cache_dir: None, ..EngineSettings::default() };
    Engine::new(settings).expect("engine")
}

async fn instance(engine: &Engine, mode: &str) -> Instance {
    let module = engine.load_file(HOSTILE).expect("the hostile guest loads");
    module.instantiate("bench", vec![("mode".into(), mode.into())]).await.expect("starts")
}

/// One misdeed: (milliseconds until the call stopped, peak RSS above the start in MiB, outcome).
async fn misdeed(engine: &Engine, mode: &str) -> (f64, f64, String) {
    let mut guest = instance(engine, mode).await;
    let batch = messages(if mode == "flood" { 1000 } else { 128 }, "m");
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = status_kib("VmRSS:");
    let started = Instant::now();
    let outcome = match guest.process(&batch).await {
        Ok(effects) => format!("ok ({} effects)", effects.len()),
        Err(e) => {
            let text = e.kind.to_string();
            text.split([':', '(']).next().unwrap_or_default().trim().to_string()
        }
    };
    let took = started.elapsed().as_secs_f64() * 1000.0;
    let peak = status_kib("VmHWM:").saturating_sub(before) as f64 / 1024.0;
    drop(guest);
    (took, peak, outcome)
}

/// Isolation by plain bisection, as the host did before: (failed calls, seconds).
async fn bisect(guest: &mut Instance, batch: &[Message]) -> (usize, f64) {
    let started = Instant::now();
    let mut failed = 0;
    let mut todo: VecDeque<std::ops::Range<usize>> = VecDeque::new();
    todo.push_back(0..batch.len());
    while let Some(range) = todo.pop_front() {
        if guest.process(&batch[range.clone()]).await.is_err() {
            failed += 1;
            if range.len() > 1 {
                let middle = range.start + range.len() / 2;
                todo.push_front(middle..range.end);
                todo.push_front(range.start..middle);
            }
        }
    }
    (failed, started.elapsed().as_secs_f64())
}

/// Isolation as the host does it now: (failed calls, seconds).
async fn isolate(guest: &mut Instance, batch: &[Message]) -> (usize, f64) {
    let started = Instant::now();
    let stats = Stats::default();
    let isolated = monasca_wasm::pipeline::isolate::process(guest, batch, None, &stats, None, || 0)
        .await
        .unwrap_or_else(|_| panic!("isolation runs"));
    (isolated.failed_calls, started.elapsed().as_secs_f64())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: usize = env_number("ROUNDS", 3);
    let defaults = EngineSettings::default();
    let sandbox = engine(defaults.call_deadline);
    let modes = ["loop", "sleep", "bomb", "panic", "forge", "log-flood", "flood"];
    let mut report = format!(
        "### Hostile guests ({rounds} rounds, medians)\n\nSandbox: memory cap {} MiB, call deadline {} ms, output budget {} effects / {} MiB.\n\n\
         | misdeed | stopped after (ms) | peak RSS above start (MiB) | outcome |\n|---|---:|---:|---|\n",
        defaults.memory_limit >> 20,
        defaults.call_deadline.as_millis(),
        defaults.output_budget.max_effects,
        defaults.output_budget.max_bytes >> 20,
    );
    for mode in modes {
        let mut took = Vec::new();
        let mut peaks = Vec::new();
        let mut outcome = String::new();
        for _ in 0..rounds {
            let (t, p, o) = misdeed(&sandbox, mode).await;
            took.push(t);
            peaks.push(p);
            outcome = o;
        }
        report.push_str(&format!("| `{mode}` | {:.0} | {:.1} | {outcome} |\n", median(took), median(peaks)));
    }

    report.push_str(
        "\n### Poison isolation: failed calls and time per batch\n\n\
         | batch | plain bisection: failed calls | seconds | isolation now: failed calls | seconds |\n|---|---:|---:|---:|---:|\n",
    );
    let quick = engine(Duration::from_millis(300));
    for (mode, n, label) in
        [("poison", 200, "200 messages that panic"), ("loop", 12, "12 messages that hang (deadline 300 ms)")]
    {
        let batch = messages(n, "POISON");
        let (mut old, mut new) = (Vec::new(), Vec::new());
        let (mut old_calls, mut new_calls) = (0, 0);
        for _ in 0..rounds {
            let mut guest = instance(&quick, mode).await;
            let (calls, seconds) = bisect(&mut guest, &batch).await;
            old_calls = calls;
            old.push(seconds);
            let mut guest = instance(&quick, mode).await;
            let (calls, seconds) = isolate(&mut guest, &batch).await;
            new_calls = calls;
            new.push(seconds);
        }
        report.push_str(&format!(
            "| {label} | {old_calls} | {:.2} | {new_calls} | {:.2} |\n",
            median(old),
            median(new)
        ));
    }
    print!("{report}");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let reports = root.join("target/bench-reports");
    let _ = std::fs::create_dir_all(&reports);
    std::fs::write(reports.join("hostile.md"), &report).expect("report written");
}
