//! `monasca-wasm new` writes a guest crate that passes its own unit test,
//! builds for wasm32-wasip2 and runs under `monasca-wasm test`, with no edits.

use std::path::Path;
use std::process::Command;

fn run(command: &mut Command) -> std::process::Output {
    let output = command.output().expect("command runs");
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn new_guest_builds_and_runs_without_edits() {
    let dir = tempfile::tempdir().unwrap();
    let guest = dir.path().join("alarm-tagger");
    let bin = env!("CARGO_BIN_EXE_monasca-wasm");
    let created = run(Command::new(bin).args(["new", "alarm-tagger", "--path"]).arg(&guest));
    assert!(String::from_utf8_lossy(&created.stdout).contains("cargo build --release --target wasm32-wasip2"));

    // Share the test guests' target dir so dependencies compile once.
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-guests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(&cargo).current_dir(&guest).args(["test", "--quiet"]).env("CARGO_TARGET_DIR", &target));
    run(Command::new(&cargo)
        .current_dir(&guest)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--quiet"])
        .env("CARGO_TARGET_DIR", &target));

    let wasm = target.join("wasm32-wasip2/release/alarm_tagger.wasm");
    let output =
        run(Command::new(bin).arg("test").arg("--module").arg(&wasm).arg("--input").arg(guest.join("sample.jsonl")));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let kinds: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(kinds.len(), 2, "{stdout}");
    assert!(kinds.iter().all(|e| e["kind"] == "produce"), "{stdout}");
}

#[test]
fn new_refuses_a_bad_name_or_a_non_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_monasca-wasm");
    let bad = Command::new(bin).args(["new", "Bad Name", "--path"]).arg(dir.path().join("x")).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid guest name"));
    std::fs::write(dir.path().join("file"), "x").unwrap();
    let taken = Command::new(bin).args(["new", "ok", "--path"]).arg(dir.path()).output().unwrap();
    assert!(!taken.status.success());
    assert!(String::from_utf8_lossy(&taken.stderr).contains("not empty"));
}
