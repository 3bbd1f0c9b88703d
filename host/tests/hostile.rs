//! Guests written to break the sandbox, each stopped with a typed error in
//! bounded time and memory, the host and its log unharmed: a guest asleep in
//! a WASI call (in `process` and in `init`), a log flood with forged lines
//! and terminal escapes, a panic message that forges a line, a batch whose
//! effects pass the output budget, and components with more memories or
//! core instances than one instance may have.

mod common;

use common::{engine_with, messages, METRIC};
use monasca_test_programs::{HOSTILE, PERSISTER};
use monasca_wasm::engine::budget::{OutputBudget, Spent};
use monasca_wasm::engine::types::Effect;
use monasca_wasm::engine::{Engine, GuestErrorKind, LoadError};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_millis(300);

fn hostile_engine(budget: OutputBudget) -> Engine {
    engine_with(|s| {
        s.call_deadline = DEADLINE;
        s.memory_limit = 32 * 1024 * 1024;
        s.output_budget = budget;
    })
}

fn options(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

async fn assert_engine_still_serves(engine: &Engine) {
    let module = engine.load_file(PERSISTER).expect("persister loads");
    let mut instance = module.instantiate("after", vec![]).await.expect("persister starts");
    let effects = instance.process(&messages("metrics", &[METRIC])).await.expect("persister processes");
    assert!(matches!(effects.as_slice(), [Effect::StoreEncoded(_)]), "{effects:?}");
}

/// Everything this test process logs, as text lines (the format the host
/// writes), kept for the log tests.
fn captured_log() -> Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log: Arc<Mutex<Vec<u8>>> = Arc::default();
        let sink = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || Capture(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        log
    })
    .clone()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The captured log's lines written by `module` since `from` bytes.
fn lines_of(log: &Mutex<Vec<u8>>, from: usize, pipeline: &str) -> Vec<String> {
    let bytes = log.lock().unwrap_or_else(|p| p.into_inner());
    String::from_utf8_lossy(&bytes[from.min(bytes.len())..])
        .lines()
        .filter(|l| l.contains(&format!("pipeline={pipeline}")))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn a_guest_asleep_in_a_wasi_call_stops_at_the_deadline() {
    let engine = hostile_engine(OutputBudget::default());
    let module = engine.load_file(HOSTILE).expect("hostile guest loads");
    let mut instance = module.instantiate("sleeper", options(&[("mode", "sleep")])).await.expect("starts");
    let started = Instant::now();
    let err = instance.process(&messages("in", &["x"])).await.expect_err("an hour's sleep cannot finish");
    assert_eq!(err.kind, GuestErrorKind::Deadline { limit: DEADLINE });
    assert!(started.elapsed() < DEADLINE + Duration::from_secs(1), "stopped after {:?}", started.elapsed());
    // The abandoned instance is rebuilt for the next batch, which stops the same way.
    let started = Instant::now();
    let again = instance.process(&messages("in", &["y"])).await.expect_err("sleeps again");
    assert_eq!(again.kind, GuestErrorKind::Deadline { limit: DEADLINE });
    assert!(started.elapsed() < DEADLINE + Duration::from_secs(1), "stopped after {:?}", started.elapsed());
    assert_engine_still_serves(&engine).await;
}

#[tokio::test]
async fn a_guest_asleep_in_init_stops_at_the_deadline() {
    let engine = hostile_engine(OutputBudget::default());
    let module = engine.load_file(HOSTILE).expect("hostile guest loads");
    let started = Instant::now();
    let err = module
        .instantiate("slow-init", options(&[("init_sleep_ms", "3600000")]))
        .await
        .err()
        .expect("init cannot finish");
    assert_eq!(err.kind, GuestErrorKind::Deadline { limit: DEADLINE });
    assert!(started.elapsed() < DEADLINE + Duration::from_secs(1), "stopped after {:?}", started.elapsed());
    assert_engine_still_serves(&engine).await;
}

#[tokio::test]
async fn a_log_flood_is_capped_rate_limited_and_escaped() {
    let log = captured_log();
    let from = log.lock().unwrap().len();
    let engine = hostile_engine(OutputBudget::default());
    let module = engine.load_file(HOSTILE).expect("hostile guest loads");
    let mut instance =
        module.instantiate("flood", options(&[("mode", "log-flood"), ("log_lines", "20000")])).await.expect("starts");
    let before = monasca_wasm::engine::guest_log::DROPPED.load(std::sync::atomic::Ordering::Relaxed);
    let started = Instant::now();
    let effects = instance.process(&messages("in", &["x"])).await.expect("logging is not a failure");
    assert_eq!(effects.len(), 1);
    let took = started.elapsed();
    let dropped = monasca_wasm::engine::guest_log::DROPPED.load(std::sync::atomic::Ordering::Relaxed) - before;
    let lines = lines_of(&log, from, "flood");
    let burst = monasca_wasm::engine::guest_log::BURST_LINES as usize;
    assert!(lines.len() <= burst + 100, "{} lines shown of 20,000 in {took:?}", lines.len());
    assert!(dropped as usize + lines.len() >= 20_000, "{dropped} dropped and {} shown", lines.len());
    let shown_bytes: usize = lines.iter().map(String::len).sum();
    assert!(shown_bytes < (burst + 100) * 2_000, "{shown_bytes} bytes of log");
    let all = String::from_utf8_lossy(&log.lock().unwrap()[from..]).into_owned();
    assert!(!all.contains('\u{1b}') && !all.contains('\u{7}'), "a terminal escape reached the log");
    assert!(!all.lines().any(|l| l.starts_with("2026-01-01T00:00:00.000000Z")), "a forged line in the log");
    // Each guest line shows escaped (the host's own reports of dropped lines aside).
    let unescaped =
        lines.iter().find(|l| !l.contains("innocent\\n2026-01-01") && !l.contains("guest log lines dropped"));
    assert!(unescaped.is_none(), "the newline shows escaped: {unescaped:?}");
}

#[tokio::test]
async fn a_forged_panic_message_is_escaped_in_the_error() {
    let log = captured_log();
    let from = log.lock().unwrap().len();
    let engine = hostile_engine(OutputBudget::default());
    let module = engine.load_file(HOSTILE).expect("hostile guest loads");
    let mut instance = module.instantiate("forger", options(&[("mode", "forge")])).await.expect("starts");
    let err = instance.process(&messages("in", &["x"])).await.expect_err("it panics");
    let shown = err.to_string();
    assert!(!shown.chars().any(char::is_control), "control characters in the error: {shown:?}");
    // The panic message's lines are joined on one line, its escapes shown as text.
    assert!(shown.contains("innocent | 2026-01-01") && shown.contains("\\u{1b}[2J"), "{shown}");
    tracing::error!(error = %err, "as the worker logs it");
    let all = String::from_utf8_lossy(&log.lock().unwrap()[from..]).into_owned();
    assert!(!all.lines().any(|l| l.starts_with("2026-01-01T00:00:00.000000Z")), "a forged line in the log:\n{all}");
    assert!(!all.contains('\u{1b}'), "a terminal escape reached the log");
}

#[tokio::test]
async fn a_batch_over_its_output_budget_fails_as_a_guest_error() {
    let budget = OutputBudget { max_effects: 10_000, max_bytes: 64 << 20 };
    let engine = hostile_engine(budget);
    let module = engine.load_file(HOSTILE).expect("hostile guest loads");
    let mut instance = module.instantiate("flood", options(&[("mode", "flood")])).await.expect("starts");
    // 50 messages of 1,000 records each: 50,000 effects.
    let values: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    let err = instance.process(&messages("in", &values)).await.expect_err("over the budget");
    match &err.kind {
        GuestErrorKind::OutputBudget { spent, budget: b } => {
            assert_eq!(*b, budget);
            assert!(spent.effects > budget.max_effects, "{spent:?}");
        }
        other => panic!("expected the output budget, got {other:?}"),
    }
    assert!(!err.poisons_instance(), "the instance itself is fine");
    // Five messages (5,000 effects) are within it: isolation can carry them.
    let effects = instance.process(&messages("in", &values[..5])).await.expect("within the budget");
    assert_eq!(effects.len(), 5_000);
    let mut spent = Spent::default();
    assert!(spent.charge(&effects, &budget));
}

/// A component of `modules` core modules with one memory each, instantiated.
fn component_with_memories(modules: usize, memories_each: usize) -> Vec<u8> {
    let mut text = String::from("(component\n");
    for m in 0..modules {
        text.push_str(&format!("  (core module $m{m}{})\n", " (memory 1)".repeat(memories_each)));
        text.push_str(&format!("  (core instance (instantiate $m{m}))\n"));
    }
    text.push(')');
    wat::parse_str(&text).expect("valid component text")
}

#[tokio::test]
async fn components_over_the_per_instance_limits_are_refused_at_load() {
    let engine = hostile_engine(OutputBudget::default());
    let max_memories = monasca_wasm::engine::MAX_MEMORIES_PER_COMPONENT as usize;
    let max_instances = monasca_wasm::engine::MAX_CORE_INSTANCES_PER_COMPONENT as usize;
    for (bytes, says) in [
        (component_with_memories(max_memories + 1, 1), "linear memories"),
        (component_with_memories(max_instances + 1, 0), "core module instances"),
    ] {
        let refused = engine.load_bytes("greedy", &bytes).err().expect("refused at load");
        assert!(matches!(refused, LoadError::Compile { .. }), "{refused}");
        assert!(refused.to_string().contains(says), "the reason names the limit: {refused}");
    }
    // Within the limits, the same shape compiles (and is refused only as not a guest).
    let within = engine.load_bytes("modest", &component_with_memories(max_memories, 1)).err().expect("not a guest");
    assert!(matches!(within, LoadError::WrongWorld { .. }), "{within}");
    assert_engine_still_serves(&engine).await;
}

/// Isolate the poison of `values` with the hostile guest in `mode`: the
/// poison messages' indices and the failed calls it took.
async fn isolate_with(mode: &str, values: &[String], budget: Option<Duration>) -> (Vec<usize>, usize) {
    let engine = hostile_engine(OutputBudget::default());
    let module = engine.load_file(HOSTILE).expect("hostile guest loads");
    let mut instance = module.instantiate("isolate", options(&[("mode", mode)])).await.expect("starts");
    let stats = monasca_wasm::pipeline::stats::Stats::default();
    let batch = messages("in", values);
    let isolated = monasca_wasm::pipeline::isolate::process(&mut instance, &batch, None, &stats, budget, || 0)
        .await
        .unwrap_or_else(|_| panic!("the batch is processed"));
    assert_eq!(isolated.effects.len() + isolated.poison.len(), values.len(), "every message is accounted for");
    (isolated.poison.iter().map(|(i, _)| *i).collect(), isolated.failed_calls)
}

#[tokio::test]
async fn poison_batches_cost_at_most_one_failed_call_per_poison_message_and_a_few() {
    use monasca_wasm::pipeline::isolate::BISECT_FAILURES;
    // All poison: bisection alone took 2n − 1 = 199 failed calls.
    let all: Vec<String> = (0..100).map(|i| format!("POISON-{i}")).collect();
    let (poison, failed) = isolate_with("poison", &all, None).await;
    assert_eq!(poison, (0..100).collect::<Vec<_>>());
    assert!(failed <= all.len() + BISECT_FAILURES, "{failed} failed calls for 100 poison messages");
    // Two among a thousand.
    let few: Vec<String> =
        (0..1000).map(|i| if i == 123 || i == 877 { format!("POISON-{i}") } else { format!("ok-{i}") }).collect();
    let (poison, failed) = isolate_with("poison", &few, None).await;
    assert_eq!(poison, vec![123, 877]);
    assert!(failed <= 2 + BISECT_FAILURES, "{failed} failed calls for 2 poison messages");
    // A batch error naming its culprit: one failed call per culprit.
    let blamed: Vec<String> =
        (0..100).map(|i| if i % 20 == 3 { format!("BLAME-{i}") } else { format!("ok-{i}") }).collect();
    let (poison, failed) = isolate_with("blame", &blamed, None).await;
    assert_eq!(poison, vec![3, 23, 43, 63, 83]);
    assert_eq!(failed, 5);
}

#[tokio::test]
async fn a_batch_of_hanging_messages_is_held_no_longer_than_the_isolation_budget() {
    // Every message loops until the deadline (300 ms): a batch of 40 would
    // hold the partition 40 deadlines or more; the budget cuts it at 2 s.
    let hanging: Vec<String> = (0..40).map(|i| format!("hang-{i}")).collect();
    let started = Instant::now();
    let (poison, failed) = isolate_with("loop", &hanging, Some(Duration::from_secs(2))).await;
    let took = started.elapsed();
    assert_eq!(poison, (0..40).collect::<Vec<_>>(), "every message dead-lettered");
    assert!(failed <= 2_000 / 300 + 1, "{failed} failed calls");
    // The budget, the call running when it ran out, and slack for rebuilding
    // trapped instances on a busy machine: far below the 40 deadlines (12 s)
    // the batch would take without a budget.
    assert!(took < Duration::from_secs(2) + DEADLINE * 2 + Duration::from_secs(2), "the partition was held {took:?}");
}
