//! Test support for the monasca-wasm workspace.
//!
//! `build.rs` compiles the guest components the tests need for
//! `wasm32-wasip2`; the constants below are their paths. [`fixture`] finds a
//! file in `tests/fixtures/`.
//!
//! Test guests (in `tests/guests/`):
//! - `hostile`: misbehaves on request (`mode` = `loop`, `bomb`, `panic`, `probe`);
//! - `wrong-world`: a component for another world;
//! - `wrong-version`: a component for `monasca:processor@9.0.0`.

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

use std::path::PathBuf;

/// Path of a file in `tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

/// The non-empty lines of a fixture, as bytes (a line may be invalid UTF-8 on purpose).
pub fn fixture_lines(name: &str) -> Vec<Vec<u8>> {
    let path = fixture(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect()
}
