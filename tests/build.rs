//! Builds every guest the tests need for `wasm32-wasip2` (release), in a
//! target directory of its own so the nested cargo never waits on the outer
//! one, and writes their paths as constants for `src/lib.rs` to include.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (constant name, cargo package, artifact stem)
const GUESTS: &[(&str, &str, &str)] = &[
    ("PERSISTER", "persister", "persister"),
    ("NOTIFICATION", "notification", "notification"),
    ("PASSTHROUGH", "passthrough", "passthrough"),
    ("HOSTILE", "hostile", "hostile"),
    ("WRONG_WORLD", "wrong-world", "wrong_world"),
    ("WRONG_VERSION", "wrong-version", "wrong_version"),
    ("TAGGER_V1", "tagger-v1", "tagger_v1"),
    ("TAGGER_V2", "tagger-v2", "tagger_v2"),
    ("COUNTER_V1", "counter-v1", "counter_v1"),
    ("COUNTER_V2", "counter-v2", "counter_v2"),
    ("COUNTER_BAD", "counter-bad", "counter_bad"),
    ("KEYED_COUNTER", "keyed-counter", "keyed_counter"),
    ("KEYED_COUNTER_V2", "keyed-counter-v2", "keyed_counter_v2"),
    ("LEGACY_V03", "legacy-v03", "legacy_v03"),
    ("LEGACY_V04", "legacy-v04", "legacy_v04"),
    ("TRANSFORM", "transform", "transform"),
    ("METRICS_API", "metrics-api", "metrics_api"),
    ("LOG_API", "log-api", "log_api"),
    ("EVENTS_API", "events-api", "events_api"),
];

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir.parent().expect("tests/ sits in the workspace").to_path_buf();
    let target_dir = workspace.join("target").join("test-guests");
    for watched in [
        "guests",
        "guest-sdk/src",
        "guest-sdk/Cargo.toml",
        "wit",
        "tests/guests",
        "Cargo.toml",
        "Cargo.lock",
        ".cargo/config.toml",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(watched).display());
    }

    // Every guest in one build: a guest's world is chosen by its own
    // `export!`, so building stateless and stateful guests together changes
    // none of them (the world tests check it).
    let guests: Vec<_> = GUESTS.iter().collect();
    build(&workspace, &target_dir, &guests);

    let mut constants = String::new();
    for (constant, _, stem) in GUESTS {
        let path = target_dir.join("wasm32-wasip2").join("release").join(format!("{stem}.wasm"));
        assert!(path.exists(), "expected guest artifact {}", path.display());
        constants.push_str(&format!(
            "/// Path of the `{stem}` guest component.\npub const {constant}: &str = {:?};\n",
            path.display().to_string()
        ));
    }
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("guests.rs");
    std::fs::write(out, constants).expect("cannot write guests.rs");
}

/// Build `guests` for wasm32-wasip2 (release) into `target_dir`.
fn build(workspace: &Path, target_dir: &Path, guests: &[&(&str, &str, &str)]) {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .env("CARGO_TARGET_DIR", target_dir);
    for (_, package, _) in guests {
        command.args(["-p", package]);
    }
    // What the outer build set for itself must not leak into the guests' build.
    for var in
        ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_BUILD_TARGET", "RUSTC_WORKSPACE_WRAPPER", "CARGO_MAKEFLAGS"]
    {
        command.env_remove(var);
    }
    let status = command.status().expect("cannot run cargo to build the test guests");
    assert!(
        status.success(),
        "building the test guests for wasm32-wasip2 failed (is the target installed? `rustup target add wasm32-wasip2`)"
    );
}
