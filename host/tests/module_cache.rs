//! The compiled-module cache: a known module is not compiled again; a
//! corrupt or foreign entry is ignored and rebuilt.

mod common;

use common::{engine_with, messages, METRIC};
use monasca_test_programs::PERSISTER;
use monasca_wasm::engine::{CacheOutcome, Engine};
use std::path::Path;

fn engine_in(dir: &Path) -> Engine {
    engine_with(|s| s.cache_dir = Some(dir.to_path_buf()))
}

async fn still_works(engine: &Engine) {
    let module = engine.load_file(PERSISTER).unwrap();
    let mut instance = module.instantiate("cache", vec![]).await.unwrap();
    assert_eq!(instance.process(&messages("metrics", &[METRIC])).await.unwrap().len(), 1);
}

fn only_entry(dir: &Path) -> std::path::PathBuf {
    let entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries[0].clone()
}

#[tokio::test]
async fn second_load_is_a_hit() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(engine_in(dir.path()).load_file(PERSISTER).unwrap().cache_outcome(), CacheOutcome::Miss);
    // A new engine, as after a restart.
    let engine = engine_in(dir.path());
    assert_eq!(engine.load_file(PERSISTER).unwrap().cache_outcome(), CacheOutcome::Hit);
    still_works(&engine).await;
}

#[tokio::test]
async fn corrupt_entry_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    engine_in(dir.path()).load_file(PERSISTER).unwrap();
    let entry = only_entry(dir.path());
    let mut bytes = std::fs::read(&entry).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&entry, &bytes).unwrap();

    let engine = engine_in(dir.path());
    assert_eq!(engine.load_file(PERSISTER).unwrap().cache_outcome(), CacheOutcome::Rebuilt);
    still_works(&engine).await;
    assert_eq!(engine_in(dir.path()).load_file(PERSISTER).unwrap().cache_outcome(), CacheOutcome::Hit);
}

#[tokio::test]
async fn foreign_entry_with_a_valid_checksum_is_rebuilt() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    engine_in(dir.path()).load_file(PERSISTER).unwrap();
    let entry = only_entry(dir.path());
    // Well-formed entry, but the payload is not an artifact of this engine.
    let payload = b"\x7fELF not a wasmtime artifact of this engine".to_vec();
    let mut bytes = b"MWCC".to_vec();
    bytes.extend_from_slice(&Sha256::digest(&payload));
    bytes.extend_from_slice(&payload);
    std::fs::write(&entry, &bytes).unwrap();

    let engine = engine_in(dir.path());
    assert_eq!(engine.load_file(PERSISTER).unwrap().cache_outcome(), CacheOutcome::Rebuilt);
    still_works(&engine).await;
}

#[tokio::test]
async fn disabled_cache_compiles() {
    let engine = engine_with(|s| s.cache_dir = None);
    assert_eq!(engine.load_file(PERSISTER).unwrap().cache_outcome(), CacheOutcome::Disabled);
    still_works(&engine).await;
}
