//! Modules for another world, another major version, or not components at
//! all are refused with a message that says why.

mod common;

use common::engine;
use monasca_test_programs::{PASSTHROUGH, PERSISTER, WRONG_VERSION, WRONG_WORLD};
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
    assert!(message.contains("9.0.0") && message.contains("0.3.x") && message.contains("major"), "{message}");
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
    assert_eq!(persister.world().package.as_deref(), Some("monasca:processor@0.3.0"));
    assert_eq!(persister.world().world, Some("stateless"));
    assert_eq!(persister.digest().len(), 64);
    let passthrough = engine.load_file(PASSTHROUGH).unwrap();
    assert_ne!(passthrough.digest(), persister.digest());
}
