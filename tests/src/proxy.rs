//! A TCP proxy in front of a Kafka broker that can lose acknowledgements
//! and go down:
//! - when armed, it forwards a Produce request to the broker, lets the
//!   broker append it, and cuts the client's connection before the response
//!   arrives. The client then retries a request the broker has already
//!   appended — the case an idempotent producer must turn into no duplicate;
//! - when down, it drops every connection and refuses new ones, as a broker
//!   that restarts does to its clients (its log is kept: nothing is lost
//!   but the connections).
//!
//! The broker must advertise the proxy's port (`KAFKA_ADVERTISED_PORT`), so
//! that every client connection goes through the proxy.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Kafka API key of Produce requests.
const PRODUCE: i16 = 0;

/// A running proxy.
pub struct KafkaProxy {
    port: u16,
    faults: Arc<Faults>,
    /// Tells open relays that the proxy went down.
    outage: tokio::sync::watch::Sender<u64>,
}

#[derive(Default)]
struct Faults {
    /// Cut after every `every`-th Produce request (0: never).
    every: AtomicUsize,
    /// Cuts still allowed.
    remaining: AtomicUsize,
    /// Produce requests seen while armed.
    seen: AtomicUsize,
    /// Cuts made.
    made: AtomicUsize,
    /// Down: no connection is relayed.
    down: AtomicBool,
}

impl KafkaProxy {
    /// Listen on a free loopback port and forward to `127.0.0.1:upstream`.
    pub async fn start(upstream: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let faults = Arc::new(Faults::default());
        let (outage, watching) = tokio::sync::watch::channel(0u64);
        let shared = faults.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if shared.down.load(Ordering::SeqCst) {
                    continue;
                }
                let faults = shared.clone();
                let mut outages = watching.clone();
                outages.mark_unchanged();
                tokio::spawn(async move {
                    if let Ok(broker) = TcpStream::connect(("127.0.0.1", upstream)).await {
                        tokio::select! {
                            _ = relay(client, broker, faults) => {}
                            _ = outages.changed() => {}
                        }
                    }
                });
            }
        });
        Ok(KafkaProxy { port, faults, outage })
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// From now on, lose the acknowledgement of every `every`-th Produce
    /// request, at most `cuts` times.
    pub fn arm(&self, every: usize, cuts: usize) {
        self.faults.remaining.store(cuts, Ordering::SeqCst);
        self.faults.seen.store(0, Ordering::SeqCst);
        self.faults.every.store(every, Ordering::SeqCst);
    }

    /// Go down (drop every connection, refuse new ones) or come back up.
    pub fn set_down(&self, down: bool) {
        self.faults.down.store(down, Ordering::SeqCst);
        if down {
            self.outage.send_modify(|n| *n += 1);
        }
    }

    /// How many acknowledgements were lost so far.
    pub fn cuts_made(&self) -> usize {
        self.faults.made.load(Ordering::SeqCst)
    }
}

impl Faults {
    fn should_cut(&self) -> bool {
        let every = self.every.load(Ordering::SeqCst);
        if every == 0 {
            return false;
        }
        let seen = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        if !seen.is_multiple_of(every) {
            return false;
        }
        let taken = self.remaining.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |r| r.checked_sub(1)).is_ok();
        if taken {
            self.made.fetch_add(1, Ordering::SeqCst);
        }
        taken
    }
}

/// A task aborted when its handle is dropped (a relay dropped at an outage
/// takes its answer direction with it, so the client's socket closes).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn relay(client: TcpStream, broker: TcpStream, faults: Arc<Faults>) -> std::io::Result<()> {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut broker_read, mut broker_write) = broker.into_split();
    let responses =
        AbortOnDrop(tokio::spawn(async move { tokio::io::copy(&mut broker_read, &mut client_write).await }));
    loop {
        let mut length = [0u8; 4];
        if client_read.read_exact(&mut length).await.is_err() {
            break;
        }
        let size = i32::from_be_bytes(length).max(0) as usize;
        let mut frame = vec![0u8; size];
        client_read.read_exact(&mut frame).await?;
        let api_key = if frame.len() >= 2 { i16::from_be_bytes([frame[0], frame[1]]) } else { -1 };
        let cut = api_key == PRODUCE && faults.should_cut();
        if cut {
            // Stop relaying answers first, so this request's answer is lost.
            responses.0.abort();
        }
        broker_write.write_all(&length).await?;
        broker_write.write_all(&frame).await?;
        if cut {
            // Let the broker append, then drop the connection.
            tokio::time::sleep(Duration::from_millis(300)).await;
            return Ok(());
        }
    }
    Ok(())
}
