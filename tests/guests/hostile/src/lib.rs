//! A guest that misbehaves on request, to test the sandbox. Its `mode`
//! option picks the misdeed, done on every batch:
//! - `loop`: never returns (must stop at the call deadline);
//! - `bomb`: allocates until memory runs out (must stop at the memory cap);
//! - `panic`: panics (must be a trap carrying the panic message);
//! - `oversize`: passes messages through but answers one containing `FAIL`
//!   with a record too large to produce (its batch's effects fail);
//! - `refused`: passes messages through but sends one containing `FAIL` to
//!   a topic whose name the broker refuses (its batch's effects fail);
//! - `blame`: fails the batch with an error naming the first message
//!   containing `BLAME` as its culprit, otherwise passes messages through;
//! - `poison`: panics when the batch holds a message containing `POISON`,
//!   otherwise passes messages through (keys kept);
//! - `probe`: tries to read files, list directories, read the environment and
//!   open a socket, and reports each result as a produced record
//!   (`<probe>: <result>`), then logs a warning; the sandbox must grant none
//!   of them.
//! - `lookup`: runs the lookup `methods` with each message's value as its
//!   parameter and produces `<value>: <rows> <first column of the first row>`,
//!   or `<value>: error <reason>`; then the lookup `undeclared`, whose answer
//!   (an error) it produces as `undeclared: <reason>`;
//! - `sleep`: sleeps in a WASI call for an hour (must stop at the call
//!   deadline all the same); with `init_sleep_ms` set, `init` sleeps that long
//!   first, whatever the mode;
//! - `log-flood`: logs `log_lines` lines (default 100,000) of 1 KiB, each
//!   with a newline and terminal escapes in it (must be capped, rate-limited
//!   and escaped);
//! - `forge`: logs a line that tries to forge another, then panics with a
//!   message that tries the same;
//! - `flood`: produces `flood_per_message` (default 1,000) small records per
//!   message (must stop at the batch's output budget);
//! - `fine` (default): passes messages through.

use monasca_guest_sdk::{Config, Effects, Message, ProcessError, Processor};
use std::hint::black_box;

/// The misbehaving guest.
pub struct Hostile {
    mode: String,
    log_lines: usize,
    flood_per_message: usize,
}

/// A line that tries to end itself and forge the next, with terminal escapes.
const FORGERY: &str = "innocent\n2026-01-01T00:00:00.000000Z ERROR monasca_wasm: forged line\x1b[2J\x1b]0;owned\x07";

impl Processor for Hostile {
    fn init(config: &Config) -> Result<Self, String> {
        if let Some(ms) = config.get("init_sleep_ms").and_then(|v| v.parse().ok()) {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        let number = |key: &str, default: usize| config.get(key).and_then(|v| v.parse().ok()).unwrap_or(default);
        Ok(Hostile {
            mode: config.get_or("mode", "fine").to_string(),
            log_lines: number("log_lines", 100_000),
            flood_per_message: number("flood_per_message", 1_000),
        })
    }

    fn process(&mut self, batch: Vec<Message>, out: &mut Effects) -> Result<(), ProcessError> {
        let Some(first) = batch.first() else { return Ok(()) };
        match self.mode.as_str() {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            "bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(black_box(vec![7u8; 1 << 20]));
                }
            }
            "panic" => panic!("hostile guest panics on purpose"),
            "sleep" => std::thread::sleep(std::time::Duration::from_secs(3600)),
            "log-flood" => {
                let line = format!("{FORGERY} {}", "x".repeat(1024));
                for _ in 0..self.log_lines {
                    monasca_guest_sdk::log::info(&line);
                }
                for message in &batch {
                    out.produce(message, message.value.clone());
                }
            }
            "forge" => {
                monasca_guest_sdk::log::error(FORGERY);
                panic!("{FORGERY}");
            }
            "flood" => {
                for message in &batch {
                    for i in 0..self.flood_per_message {
                        out.produce(message, format!("{i:016}"));
                    }
                }
            }
            "oversize" => {
                // Passes messages through, but answers a message containing FAIL
                // with a 2 MiB record, which the producer refuses: the batch's
                // effects fail, so its offsets must not be stored.
                for message in &batch {
                    if message.value.windows(4).any(|w| w == b"FAIL") {
                        out.produce(message, vec![b'x'; 2 << 20]);
                    } else {
                        out.produce(message, message.value.clone());
                    }
                }
            }
            "blame" => {
                if let Some(culprit) = batch.iter().find(|m| m.value.windows(5).any(|w| w == b"BLAME")) {
                    return Err(ProcessError::new("this message is to blame").caused_by(culprit));
                }
                for message in &batch {
                    out.produce(message, message.value.clone());
                }
            }
            "refused" => {
                for message in &batch {
                    let record = out.produce(message, message.value.clone());
                    if message.value.windows(4).any(|w| w == b"FAIL") {
                        record.topic = Some("no such topic: refused by the broker".into());
                    }
                }
            }
            "poison" => {
                // Traps on any message containing POISON, passes the rest through:
                // the host must isolate exactly those.
                for message in &batch {
                    if message.value.windows(6).any(|w| w == b"POISON") {
                        panic!("poisoned by offset {}", message.offset);
                    }
                }
                for message in &batch {
                    let record = out.produce(message, message.value.clone());
                    record.key = message.key.clone();
                }
            }
            "lookup" => {
                for message in &batch {
                    let value = String::from_utf8_lossy(&message.value).into_owned();
                    let answer = match monasca_guest_sdk::lookup::query("methods", &[&value]) {
                        Ok(rows) => {
                            let first = rows.first().and_then(|r| r.first()).and_then(|(_, cell)| cell.as_str());
                            format!("{value}: {} {}", rows.len(), first.unwrap_or("-"))
                        }
                        Err(reason) => format!("{value}: error {reason}"),
                    };
                    out.produce(message, answer);
                }
                let undeclared = monasca_guest_sdk::lookup::query("undeclared", &[]).err().unwrap_or_default();
                out.produce(first, format!("undeclared: {undeclared}"));
            }
            "probe" => {
                for (probe, result) in probes() {
                    out.produce(first, format!("{probe}: {result}"));
                }
                monasca_guest_sdk::log::warn("hostile guest probed the sandbox");
            }
            _ => {
                for message in &batch {
                    out.produce(message, message.value.clone());
                }
            }
        }
        Ok(())
    }
}

fn outcome<T: std::fmt::Debug, E: std::fmt::Display>(result: Result<T, E>) -> String {
    match result {
        Ok(value) => format!("GRANTED {value:?}"),
        Err(e) => format!("denied ({e})"),
    }
}

fn probes() -> Vec<(&'static str, String)> {
    vec![
        ("read /etc/passwd", outcome(std::fs::read_to_string("/etc/passwd").map(|s| s.len()))),
        ("read ./Cargo.toml", outcome(std::fs::read_to_string("Cargo.toml").map(|s| s.len()))),
        ("list /", outcome(std::fs::read_dir("/").map(|d| d.count()))),
        ("create /tmp/hostile", outcome(std::fs::write("/tmp/hostile", b"x"))),
        ("env HOME", outcome(std::env::var("HOME"))),
        ("env PATH", outcome(std::env::var("PATH"))),
        (
            "env count",
            match std::env::vars().count() {
                0 => "denied (empty environment)".to_string(),
                n => format!("GRANTED {n} variables"),
            },
        ),
        ("tcp 127.0.0.1:22", outcome(std::net::TcpStream::connect("127.0.0.1:22").map(|_| "connected"))),
        ("udp bind", outcome(std::net::UdpSocket::bind("127.0.0.1:0").map(|_| "bound"))),
        ("dns localhost", outcome(std::net::ToSocketAddrs::to_socket_addrs("localhost:80").map(|a| a.count()))),
    ]
}

monasca_guest_sdk::export!(Hostile);
