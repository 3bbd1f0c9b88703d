//! The sandbox policy, in one place: what a guest may import and what each
//! instance may use.
//!
//! A guest gets:
//! - `monasca:processor/log`: its lines go to `tracing`, tagged with the
//!   pipeline and the module, escaped, capped and rate-limited
//!   (`engine::guest_log`);
//! - `monasca:processor/lookup`: only the queries the operator configured
//!   (see [`Lookups`]);
//! - `monasca:processor/partition-state`: the keyed state of the partition
//!   whose batch the call processes (a [`Session`] the host lends the store
//!   for the call; without one every access fails the call);
//! - `monasca:processor/http-reply`: answers to the HTTP requests of the
//!   call's batch, bounded (`engine::http_reply`); for a batch of Kafka
//!   messages they are dropped unread;
//! - the same `log` and `lookup` under their 0.3 names, for guests built
//!   against `monasca:processor@0.3.x`;
//! - WASI 0.2 as the Rust standard library needs it, with nothing granted: no
//!   preopened directories (every file open fails), no environment variables,
//!   no arguments, no sockets or name lookups, each linked to a stub that
//!   refuses (`engine::wasi_stubs`); stdout and stderr are captured
//!   (the tail is kept for error reports), stdin is empty. Clocks and random
//!   numbers are available.
//!
//! Each instance has a memory cap ([`MemoryCap`], all its memories together)
//! and each call a deadline, enforced by epoch interruption in
//! `engine::instance`, with a host-side timeout around every call as a
//! backstop for a guest blocked in a host call.

use super::bindings::{monasca, AllImports};
use super::guest_log::{GuestLog, LineLevel};
use crate::state::store::{Session, StateError};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, ResourceLimiter};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// A row returned by a lookup.
pub type Row = Vec<(String, monasca::processor::types::Cell)>;

/// The future a lookup returns.
pub type LookupFuture = Pin<Box<dyn Future<Output = Result<Vec<Row>, String>> + Send>>;

/// The read-only queries an operator allows a pipeline's guest to run.
pub trait Lookups: Send + Sync {
    /// Run the named query with positional parameters.
    fn query(&self, name: &str, params: Vec<String>) -> LookupFuture;

    /// How many queries failed because their database did not answer, so
    /// far: a guest failing a batch after one of those is not given poison
    /// messages, the batch is retried later.
    fn unavailable(&self) -> u64 {
        0
    }

    /// Answers cached and their bytes.
    fn cache_size(&self) -> (u64, u64) {
        (0, 0)
    }
}

/// No lookups configured: every query is refused with a clear reason.
pub struct NoLookups;

impl Lookups for NoLookups {
    fn query(&self, name: &str, _params: Vec<String>) -> LookupFuture {
        let reason = format!("no lookup named `{name}` is configured for this pipeline");
        Box::pin(async move { Err(reason) })
    }
}

/// Who a store belongs to, for log lines and errors.
#[derive(Debug, Clone)]
pub struct GuestIdentity {
    /// Pipeline name.
    pub pipeline: String,
    /// Module name (file stem).
    pub module: String,
    /// Short module digest.
    pub digest: String,
}

/// Everything a guest's store holds.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: MemoryCap,
    pub(crate) deadline: Instant,
    pub(crate) deadline_hit: bool,
    pub(crate) call_deadline: std::time::Duration,
    pub(crate) output: GuestOutput,
    lookups: Arc<dyn Lookups>,
    /// The partition state lent to the current call, if any.
    pub(crate) partition: Option<Session>,
    /// The current call's answers to HTTP requests.
    pub(crate) replies: super::http_reply::Replies,
}

impl HostState {
    /// A fresh state with nothing granted.
    pub fn new(
        identity: GuestIdentity,
        memory_limit: usize,
        call_deadline: std::time::Duration,
        lookups: Arc<dyn Lookups>,
    ) -> Self {
        let output = GuestOutput::new(identity);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(output.clone())
            .stderr(output.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }));
        #[cfg(test)]
        super::wasi_stubs::tests::grant_everything_when_asked(&mut wasi);
        let wasi = wasi.build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            limits: MemoryCap::new(memory_limit),
            deadline: Instant::now(),
            deadline_hit: false,
            call_deadline,
            output,
            lookups,
            partition: None,
            replies: Default::default(),
        }
    }

    fn session(&mut self) -> Result<&mut Session, StateError> {
        self.partition.as_mut().ok_or(StateError::NoSession)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl monasca::processor::types::Host for HostState {}

impl monasca::processor::log::Host for HostState {
    fn log(&mut self, level: monasca::processor::types::Level, message: String) {
        use monasca::processor::types::Level;
        let level = match level {
            Level::Trace => LineLevel::Trace,
            Level::Debug => LineLevel::Debug,
            Level::Info => LineLevel::Info,
            Level::Warn => LineLevel::Warn,
            Level::Error => LineLevel::Error,
        };
        self.output.log.line(level, &message);
    }
}

impl monasca::processor::lookup::Host for HostState {
    async fn query(&mut self, name: String, params: Vec<String>) -> Result<Vec<Row>, String> {
        self.lookups.query(&name, params).await
    }
}

impl monasca::processor::partition_state::Host for HostState {
    fn get(&mut self, key: Vec<u8>) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(self.session()?.get(&key))
    }

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> wasmtime::Result<()> {
        Ok(self.session()?.put(key, value)?)
    }

    fn delete(&mut self, key: Vec<u8>) -> wasmtime::Result<()> {
        self.session()?.delete(key);
        Ok(())
    }

    fn range(&mut self, start: Vec<u8>, end: Option<Vec<u8>>, limit: u32) -> wasmtime::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Ok(self.session()?.range(&start, end.as_deref(), limit))
    }
}

impl monasca::processor::http_reply::Host for HostState {
    fn respond(
        &mut self,
        offset: i64,
        status: u16,
        headers: Vec<monasca::processor::types::Header>,
        body: Vec<u8>,
    ) -> wasmtime::Result<()> {
        let headers = headers.into_iter().map(|h| (h.key, h.value)).collect();
        let reply = super::http_reply::Reply { offset, status, headers, body };
        Ok(self.replies.respond(reply)?)
    }
}

/// The linker every guest is instantiated with: the `monasca:processor`
/// imports (0.4, and 0.3's under their names) and WASI with nothing granted.
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    super::wasi_stubs::shadow(&mut linker)?;
    AllImports::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)?;
    link_v03(&mut linker)?;
    Ok(linker)
}

/// The imports of `monasca:processor@0.3.x`: the same `log` and `lookup`
/// (0.4 only added `partition-state`), under the older names. The types are
/// the same records, so the 0.4 host functions serve both.
fn link_v03(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use monasca::processor::log::Host as _;
    use monasca::processor::types::Level;
    linker.instance("monasca:processor/types@0.3.0")?;
    linker.instance("monasca:processor/log@0.3.0")?.func_wrap(
        "log",
        |mut store: wasmtime::StoreContextMut<'_, HostState>, (level, message): (Level, String)| {
            store.data_mut().log(level, message);
            Ok(())
        },
    )?;
    linker.instance("monasca:processor/lookup@0.3.0")?.func_wrap_async(
        "query",
        |store: wasmtime::StoreContextMut<'_, HostState>, (name, params): (String, Vec<String>)| {
            let lookups = store.data().lookups.clone();
            Box::new(async move { Ok((lookups.query(&name, params).await,)) })
        },
    )?;
    Ok(())
}

/// The per-instance memory cap: all of an instance's linear memories
/// together (a component may define several), not each one. Growing past it
/// fails the call with a limit error (recorded in `hit`, so the host can tell
/// it from other traps).
pub struct MemoryCap {
    pub(crate) limit: usize,
    pub(crate) hit: bool,
    /// Bytes of linear memory the instance holds, all memories together.
    used: usize,
}

impl MemoryCap {
    pub(crate) fn new(limit: usize) -> Self {
        MemoryCap { limit, hit: false, used: 0 }
    }

    /// Bytes of linear memory the instance holds.
    pub fn used(&self) -> usize {
        self.used
    }
}

/// Raised inside the guest when it grows past its memory cap.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes reached (the guest asked for {desired} bytes)")]
pub struct MemoryLimitHit {
    /// The cap.
    pub limit: usize,
    /// What the guest asked for, all its memories together.
    pub desired: usize,
}

/// Most elements of one table.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        // Called for every memory, from 0 when it is created.
        let total = self.used.saturating_sub(current).saturating_add(desired);
        if total > self.limit {
            self.hit = true;
            return Err(MemoryLimitHit { limit: self.limit, desired: total }.into());
        }
        self.used = total;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        super::MAX_CORE_INSTANCES_PER_COMPONENT as usize
    }

    fn memories(&self) -> usize {
        super::MAX_MEMORIES_PER_COMPONENT as usize
    }

    fn tables(&self) -> usize {
        super::MAX_TABLES_PER_COMPONENT as usize
    }
}

/// Captures a guest's stdout and stderr: each line goes to `tracing` at
/// debug level and the last few KiB are kept for error reports (a Rust
/// guest's panic message lands here before the trap).
#[derive(Clone)]
pub struct GuestOutput {
    tail: Arc<Mutex<VecDeque<u8>>>,
    /// The instance's log, which the `log` import shares.
    pub(crate) log: GuestLog,
}

const OUTPUT_TAIL_BYTES: usize = 4096;

impl GuestOutput {
    fn new(identity: GuestIdentity) -> Self {
        GuestOutput { tail: Arc::new(Mutex::new(VecDeque::new())), log: GuestLog::new(identity) }
    }

    fn append(&self, bytes: &[u8]) {
        // Only the tail is kept; a huge write is not copied whole.
        let kept = &bytes[bytes.len().saturating_sub(OUTPUT_TAIL_BYTES)..];
        if tracing::enabled!(tracing::Level::DEBUG) {
            let text = String::from_utf8_lossy(kept);
            for line in text.lines().filter(|l| !l.is_empty()) {
                self.log.line(LineLevel::Debug, &format!("guest output: {line}"));
            }
        }
        let mut tail = self.tail.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        tail.extend(kept);
        let excess = tail.len().saturating_sub(OUTPUT_TAIL_BYTES);
        tail.drain(..excess);
    }

    /// Take what the guest wrote since the last call (at most the tail).
    pub fn take(&self) -> String {
        let mut tail = self.tail.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let bytes: Vec<u8> = tail.drain(..).collect();
        String::from_utf8_lossy(&bytes).trim().to_string()
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_holds_for_all_memories_together() {
        const MIB: usize = 1 << 20;
        let mut cap = MemoryCap::new(64 * MIB);
        // Two memories created, then grown in turn.
        assert!(cap.memory_growing(0, 16 * MIB, None).unwrap());
        assert!(cap.memory_growing(0, 16 * MIB, None).unwrap());
        assert!(cap.memory_growing(16 * MIB, 40 * MIB, None).unwrap());
        assert_eq!(cap.used(), 56 * MIB);
        // The second one to 40 MiB would make 80 MiB: refused, though it is under the cap alone.
        let refused = cap.memory_growing(16 * MIB, 40 * MIB, None).expect_err("over the cap in total");
        assert!(cap.hit);
        let hit = refused.downcast_ref::<MemoryLimitHit>().expect("a limit hit");
        assert_eq!((hit.limit, hit.desired), (64 * MIB, 80 * MIB));
        assert_eq!(cap.used(), 56 * MIB, "a refused growth holds nothing");
        assert!(cap.memory_growing(16 * MIB, 24 * MIB, None).unwrap(), "up to the cap is fine");
        assert!(!cap.table_growing(0, MAX_TABLE_ELEMENTS + 1, None).unwrap());
    }
}
