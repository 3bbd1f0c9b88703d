//! Hostile guests are stopped by the sandbox with typed errors, and the same
//! engine keeps serving a good guest afterwards.

mod common;

use common::{engine_with, messages, METRIC};
use monasca_test_programs::{HOSTILE, PERSISTER};
use monasca_wasm::engine::types::Effect;
use monasca_wasm::engine::{Engine, GuestError, GuestErrorKind};
use std::time::{Duration, Instant};

fn sandbox_engine() -> Engine {
    engine_with(|s| {
        s.call_deadline = Duration::from_millis(300);
        s.memory_limit = 32 * 1024 * 1024;
    })
}

async fn run_hostile(engine: &Engine, mode: &str) -> Result<Vec<Effect>, GuestError> {
    let module = engine.load_file(HOSTILE).expect("hostile guest loads");
    let mut instance =
        module.instantiate("sandbox-test", vec![("mode".into(), mode.into())]).await.expect("hostile guest starts");
    instance.process(&messages("in", &["x"])).await
}

/// The engine still runs the persister correctly.
async fn assert_engine_still_serves(engine: &Engine) {
    let module = engine.load_file(PERSISTER).expect("persister loads");
    let mut instance = module.instantiate("after", vec![]).await.expect("persister starts");
    let effects = instance.process(&messages("metrics", &[METRIC])).await.expect("persister processes");
    assert!(matches!(effects.as_slice(), [Effect::StoreEncoded(_)]), "{effects:?}");
}

#[tokio::test]
async fn infinite_loop_stops_at_the_deadline() {
    let engine = sandbox_engine();
    let started = Instant::now();
    let err = run_hostile(&engine, "loop").await.expect_err("a loop cannot finish");
    assert_eq!(err.kind, GuestErrorKind::Deadline { limit: Duration::from_millis(300) });
    assert!(started.elapsed() < Duration::from_secs(3), "stopped after {:?}", started.elapsed());
    let message = err.to_string();
    assert!(message.contains("sandbox-test") && message.contains("sha256:"), "{message}");
    assert!(err.poisons_instance());
    assert_engine_still_serves(&engine).await;
}

#[tokio::test]
async fn memory_bomb_stops_at_the_cap() {
    let engine = sandbox_engine();
    let err = run_hostile(&engine, "bomb").await.expect_err("a bomb cannot finish");
    assert_eq!(err.kind, GuestErrorKind::MemoryLimit { limit: 32 * 1024 * 1024 });
    assert_engine_still_serves(&engine).await;
}

#[tokio::test]
async fn panic_is_a_trap_with_the_panic_message() {
    let engine = sandbox_engine();
    let err = run_hostile(&engine, "panic").await.expect_err("a panic fails the call");
    match &err.kind {
        GuestErrorKind::Trap { output, .. } => {
            assert!(output.contains("hostile guest panics on purpose"), "guest output: {output:?}")
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_engine_still_serves(&engine).await;
}

#[tokio::test]
async fn trapped_instance_is_rebuilt_for_the_next_batch() {
    let engine = sandbox_engine();
    let module = engine.load_file(HOSTILE).unwrap();
    let mut instance = module.instantiate("rebuild", vec![("mode".into(), "panic".into())]).await.unwrap();
    for _ in 0..3 {
        let err = instance.process(&messages("in", &["x"])).await.expect_err("panics every time");
        assert!(matches!(err.kind, GuestErrorKind::Trap { .. }), "{err}");
    }
}

#[tokio::test]
async fn files_environment_and_network_are_denied() {
    let engine = sandbox_engine();
    let effects = run_hostile(&engine, "probe").await.expect("probing does not trap");
    let reports = common::produced_values(&effects);
    assert_eq!(reports.len(), 10, "{reports:#?}");
    for report in &reports {
        assert!(report.contains("denied") && !report.contains("GRANTED"), "sandbox leak: {report}");
    }
    assert_engine_still_serves(&engine).await;
}

#[tokio::test]
async fn init_error_is_reported_as_such() {
    let engine = sandbox_engine();
    let module = engine.load_file(PERSISTER).unwrap();
    let err = module
        .instantiate("bad-config", vec![("max-message-bytes".into(), "lots".into())])
        .await
        .err()
        .expect("init refuses");
    match &err.kind {
        GuestErrorKind::Init { reason } => assert!(reason.contains("max-message-bytes"), "{reason}"),
        other => panic!("expected an init error, got {other:?}"),
    }
}
