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

pub mod agents;
pub mod influx;
pub mod proxy;
pub mod services;

pub use influx::influxdb;
pub use services::{mariadb, postgres, SmtpServer};

use std::path::PathBuf;
use std::sync::OnceLock;

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

/// The bootstrap address of a real Kafka broker for the tests.
///
/// `MONASCA_WASM_KAFKA` names a running broker (`scripts/test.sh` starts one
/// for the whole suite). Without it, the first call starts a broker with
/// `scripts/kafka.sh` (it stops when this test process exits). If no broker
/// can be started the calling test fails and says why; it never skips.
pub fn kafka() -> &'static str {
    static BOOTSTRAP: OnceLock<String> = OnceLock::new();
    BOOTSTRAP.get_or_init(|| {
        if let Ok(bootstrap) = std::env::var("MONASCA_WASM_KAFKA") {
            if !bootstrap.is_empty() {
                return bootstrap;
            }
        }
        start_broker(&std::process::id().to_string(), &[])
    })
}

/// Start a broker with `scripts/kafka.sh` in `target/kafka-tests/<name>`,
/// stopped when this test process exits; returns the bootstrap address.
/// Panics with the script's output when the broker cannot be started.
fn start_broker(name: &str, env: &[(&str, String)]) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root.join("target").join("kafka-tests").join(name);
    let output = std::process::Command::new(root.join("scripts/kafka.sh"))
        .arg("start")
        .arg(&dir)
        .env("KAFKA_OWNER_PID", std::process::id().to_string())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/kafka.sh to start Kafka for the tests: {e}"));
    assert!(
        output.status.success(),
        "cannot start Kafka for the tests (scripts/kafka.sh start):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A topic or group name no other test uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{nanos}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("local address").port()
}

/// Start a broker of its own on `port` that tells clients to connect to
/// `proxy_port` (where a fault-injecting proxy forwards to `port`); it stops
/// when this test process exits. Blocks until the broker answers.
pub fn kafka_behind_proxy(port: u16, proxy_port: u16) {
    let name = format!("{}-proxied-{port}", std::process::id());
    start_broker(&name, &[("KAFKA_PORT", port.to_string()), ("KAFKA_ADVERTISED_PORT", proxy_port.to_string())]);
}
