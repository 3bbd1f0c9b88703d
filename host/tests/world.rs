//! Modules for another world, another major version, or not components at
//! all are refused with a message that says why.

mod common;

use common::engine;
use monasca_test_programs::{
    COUNTER_V1, KEYED_COUNTER, LEGACY_V03, LEGACY_V04, PASSTHROUGH, PERSISTER, WRONG_VERSION, WRONG_WORLD,
};
use monasca_wasm::engine::LoadError;

#[test]
fn wrong_world_is_refused() {
    let err = engine().load_file(WRONG_WORLD).err().expect("refused");
    assert!(matches!(err, LoadError::WrongWorld { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("monasca:processor/processor") && message.contains("greet"), "{message}");
}

#[test]
fn wrong_major_version_is_refused_naming_both_versions() {
    let err = engine().load_file(WRONG_VERSION).err().expect("refused");
    assert!(matches!(err, LoadError::IncompatibleVersion { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("9.0.0") && message.contains("0.4.x or 0.3.x") && message.contains("major"), "{message}");
}

#[test]
fn core_module_and_garbage_are_refused() {
    let engine = engine();
    let core = engine.load_bytes("core", b"\0asm\x01\0\0\0").err().expect("refused");
    assert!(core.to_string().contains("wasm32-wasip2"), "{core}");
    let text = engine.load_bytes("notes", b"hello, world").err().expect("refused");
    assert!(matches!(text, LoadError::NotWasm { .. }), "{text:?}");
    let missing = engine.load_file("/nonexistent/guest.wasm").err().expect("refused");
    assert!(missing.to_string().contains("/nonexistent/guest.wasm"), "{missing}");
}

#[test]
fn good_guests_report_their_world() {
    let engine = engine();
    let persister = engine.load_file(PERSISTER).unwrap();
    assert_eq!(persister.world().package.as_deref(), Some("monasca:processor@0.4.1"));
    assert_eq!(persister.world().world, Some("stateless"));
    assert!(!persister.world().is_keyed(), "a guest that never calls `state` does not import it");
    assert_eq!(persister.digest().len(), 64);
    let passthrough = engine.load_file(PASSTHROUGH).unwrap();
    assert_ne!(passthrough.digest(), persister.digest());
}

#[test]
fn a_guest_using_partition_state_is_keyed() {
    let counter = engine().load_file(KEYED_COUNTER).unwrap();
    assert_eq!(counter.world().world, Some("keyed"));
    assert!(counter.world().is_keyed());
    assert!(
        counter.world().imports.iter().any(|i| i == "monasca:processor/partition-state@0.4.1"),
        "{:?}",
        counter.world().imports
    );
}

#[tokio::test]
async fn a_guest_built_for_0_3_still_runs() {
    let legacy = engine().load_file(LEGACY_V03).unwrap();
    assert_eq!(legacy.world().package.as_deref(), Some("monasca:processor@0.3.0"));
    assert_eq!(legacy.world().world, Some("stateless"));
    let mut instance = legacy.instantiate("legacy", Vec::new()).await.expect("a 0.3 guest starts");
    let effects = instance.process(&common::messages("in", &["a", "bc"])).await.expect("a 0.3 guest processes");
    let values: Vec<(Vec<u8>, Vec<u8>)> = effects
        .iter()
        .map(|e| match e {
            monasca_wasm::engine::types::Effect::Produce(r) => (r.value.clone(), r.headers[0].value.clone()),
            other => panic!("expected produce, got {other:?}"),
        })
        .collect();
    assert_eq!(values, [(b"a".to_vec(), b"0.3.0".to_vec()), (b"bc".to_vec(), b"0.3.0".to_vec())]);
}

/// A guest built for 0.4.0 imports `log@0.4.0`; the host's 0.4.1 imports
/// serve it (a patch version adds, never changes).
#[tokio::test]
async fn a_guest_built_for_an_earlier_patch_version_runs() {
    let legacy = engine().load_file(LEGACY_V04).unwrap();
    assert_eq!(legacy.world().package.as_deref(), Some("monasca:processor@0.4.0"));
    assert!(legacy.world().imports.iter().any(|i| i == "monasca:processor/log@0.4.0"), "{:?}", legacy.world().imports);
    let mut instance = legacy.instantiate("legacy", Vec::new()).await.expect("a 0.4.0 guest starts");
    let effects = instance.process(&common::messages("in", &["a"])).await.expect("a 0.4.0 guest processes");
    assert!(
        matches!(&effects[..], [monasca_wasm::engine::types::Effect::Produce(r)] if r.headers[0].value == b"0.4.0"),
        "{effects:?}"
    );
}

/// The test guests are built in one cargo invocation (`tests/build.rs`): a
/// stateful guest's export does not leak into its stateless neighbours, nor
/// a keyed guest's import.
#[test]
fn guests_built_together_keep_their_own_worlds() {
    let engine = engine();
    let world = |path: &str| engine.load_file(path).unwrap().world().world;
    assert_eq!(world(COUNTER_V1), Some("stateful"));
    assert_eq!(world(KEYED_COUNTER), Some("keyed"));
    assert_eq!(world(PASSTHROUGH), Some("stateless"));
    assert_eq!(world(PERSISTER), Some("stateless"));
}
