//! A pipeline's Kafka transactions: one transactional producer per pipeline
//! and host (as Kafka Streams' exactly-once v2: one producer per consumer,
//! fenced by the consumer group's generation), a transaction always open,
//! committed every `commit_interval_ms` with the consumer offsets of the
//! batches it holds.
//!
//! Workers put a batch's records in the open transaction while they hold the
//! gate ([`Transactions::enter`]) and, under the same hold, move their
//! partition's position ([`Transactions::advance`]); a commit takes the gate
//! alone, so a transaction holds a batch's records and its offset together or
//! neither. Every commit sends the positions of every partition the pipeline
//! holds with the group's metadata: a host whose partitions moved (a zombie)
//! is refused by the group coordinator and never commits.
//!
//! A keyed guest's changed keys are staged with the position
//! ([`Transactions::stage_changes`]) and written to the changelog when the
//! transaction commits, each key once with its last value however many
//! batches changed it: a windowed aggregation touches the same keys in batch
//! after batch, and the changelog then grows by the keys of a commit
//! interval rather than by those of every batch.

use super::{PipelineConsumer, Shared};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{RwLock, RwLockReadGuard};

/// Why a transaction failed. The pipeline stops: the in-memory state of its
/// partitions may be ahead of what is committed.
#[derive(Debug, thiserror::Error)]
pub enum TransactionError {
    /// The producer could not start its transactions.
    #[error("cannot start transactions (transactional.id `{id}`): {error}")]
    Start {
        /// The producer's transactional id.
        id: String,
        /// What librdkafka said.
        error: KafkaError,
    },
    /// A commit failed; the transaction was aborted.
    #[error("transaction aborted, nothing of it committed: {0}")]
    Aborted(KafkaError),
    /// The consumer lost its group membership (its partitions moved on).
    #[error("this host was fenced: its consumer is no longer in the group generation (partitions lost); nothing more is committed")]
    Fenced,
}

/// The positions to commit and whether the transaction holds anything.
#[derive(Default)]
struct Open {
    /// Next offset to read, per partition held.
    positions: HashMap<(String, i32), i64>,
    /// The transaction holds records or new positions.
    dirty: bool,
    /// Changelog records to write at the commit: record key → (changelog
    /// partition, value; `None` a tombstone).
    changes: HashMap<Vec<u8>, (i32, Option<Vec<u8>>)>,
}

/// One pipeline's transactions.
pub struct Transactions {
    producer: FutureProducer,
    id: String,
    gate: RwLock<()>,
    open: Mutex<Open>,
    timeout: Duration,
    commits: std::sync::atomic::AtomicU64,
    /// Set when a worker could not finish putting a batch in: the open
    /// transaction must never be committed.
    poisoned: std::sync::atomic::AtomicBool,
    /// The changelog topic staged changes go to (keyed guests).
    changelog: Option<String>,
}

impl Transactions {
    /// A transactional producer with `id`, its transactions initialised
    /// (fencing an earlier producer of the same id) and the first begun.
    /// Blocking.
    pub fn start(
        mut config: ClientConfig,
        id: &str,
        timeout: Duration,
        changelog: Option<String>,
    ) -> Result<Self, TransactionError> {
        let start = |error| TransactionError::Start { id: id.to_string(), error };
        config.set("transactional.id", id);
        let producer: FutureProducer = config.create().map_err(start)?;
        producer.init_transactions(timeout).map_err(start)?;
        producer.begin_transaction().map_err(start)?;
        Ok(Transactions {
            producer,
            id: id.to_string(),
            gate: RwLock::new(()),
            open: Mutex::default(),
            timeout,
            commits: Default::default(),
            poisoned: Default::default(),
            changelog,
        })
    }

    /// The transactional producer: records sent through it while holding
    /// the gate belong to the open transaction.
    pub fn producer(&self) -> &FutureProducer {
        &self.producer
    }

    /// The transactional id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Transactions committed so far.
    pub fn commits(&self) -> u64 {
        self.commits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Hold the gate to put records in the open transaction (no commit
    /// happens while it is held).
    pub async fn enter(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().await
    }

    fn open(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `topic`/`partition` is to resume at `next` (call with the gate held,
    /// after putting in the records of the batches before `next`).
    pub fn advance(&self, topic: &str, partition: i32, next: i64) {
        let mut open = self.open();
        open.positions.insert((topic.to_string(), partition), next);
        open.dirty = true;
    }

    /// The open transaction holds part of a batch and must not be committed
    /// (call with the gate held, before giving it up).
    pub fn poison(&self) {
        self.poisoned.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Stage a batch's changed state keys of `topic`/`partition` for the
    /// changelog (call with the gate held, before [`Self::advance`]): they
    /// are written when the transaction commits, a key changed again before
    /// then only with its last value.
    pub fn stage_changes(&self, topic: &str, partition: i32, changes: Vec<crate::state::store::Change>) {
        if changes.is_empty() {
            return;
        }
        let mut open = self.open();
        open.dirty = true;
        for (key, value) in changes {
            open.changes.insert(crate::state::changelog::record_key(topic, partition, &key), (partition, value));
        }
    }

    /// Changelog records staged and not yet written (the open transaction's).
    pub fn staged(&self) -> usize {
        self.open().changes.len()
    }

    /// Write the staged changelog records into the open transaction
    /// (blocking; the gate is held alone).
    fn write_staged(&self, open: &mut Open) -> Result<(), KafkaError> {
        use rdkafka::error::RDKafkaErrorCode;
        use rdkafka::producer::FutureRecord;
        let Some(changelog) = &self.changelog else {
            open.changes.clear();
            return Ok(());
        };
        for (key, (partition, value)) in open.changes.drain() {
            let mut record = FutureRecord::<[u8], [u8]>::to(changelog).partition(partition).key(&key);
            if let Some(value) = &value {
                record = record.payload(value.as_slice());
            }
            loop {
                match self.producer.send_result(record) {
                    Ok(_delivery) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                        record = returned;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err((error, _)) => return Err(error),
                }
            }
        }
        Ok(())
    }

    /// The open transaction holds records (call with the gate held).
    pub fn touched(&self) {
        self.open().dirty = true;
    }

    /// Forget partitions that went (after the commit that covered them).
    pub fn forget(&self, partitions: &[(String, i32)]) {
        let mut open = self.open();
        for key in partitions {
            open.positions.remove(key);
        }
    }

    /// Commit the open transaction with the positions of every partition
    /// held, and begin the next. Takes the gate; blocking (run it off the
    /// runtime, or on the consumer thread).
    pub fn commit_blocking(&self, consumer: &PipelineConsumer) -> Result<(), TransactionError> {
        let _alone = self.gate.blocking_write();
        self.commit_held(consumer)
    }

    /// [`Self::commit_blocking`] for async callers.
    pub async fn commit(
        self: &std::sync::Arc<Self>,
        consumer: &std::sync::Arc<PipelineConsumer>,
    ) -> Result<(), TransactionError> {
        let alone = self.gate.write().await;
        let (this, consumer) = (self.clone(), consumer.clone());
        let result = tokio::task::spawn_blocking(move || this.commit_held(&consumer))
            .await
            .unwrap_or(Err(TransactionError::Aborted(KafkaError::Canceled)));
        drop(alone);
        result
    }

    /// Abort the open transaction (nothing of it becomes visible). Best
    /// effort: used when the pipeline stops on a failure.
    pub fn abort_blocking(&self) {
        let _alone = self.gate.blocking_write();
        if let Err(e) = self.producer.abort_transaction(self.timeout) {
            tracing::warn!(transactional_id = %self.id, error = %e, "could not abort the open transaction");
        }
    }

    fn commit_held(&self, consumer: &PipelineConsumer) -> Result<(), TransactionError> {
        let mut open = self.open();
        if self.poisoned.load(std::sync::atomic::Ordering::Acquire) {
            open.changes.clear();
            drop(open);
            let _ = self.producer.abort_transaction(self.timeout);
            return Err(TransactionError::Aborted(KafkaError::Canceled));
        }
        if !open.dirty {
            return Ok(());
        }
        if consumer.assignment_lost() {
            open.changes.clear();
            drop(open);
            let _ = self.producer.abort_transaction(self.timeout);
            return Err(TransactionError::Fenced);
        }
        let started = std::time::Instant::now();
        let result = (|| {
            self.write_staged(&mut open)?;
            if !open.positions.is_empty() {
                let mut offsets = TopicPartitionList::new();
                for ((topic, partition), next) in &open.positions {
                    offsets.add_partition_offset(topic, *partition, Offset::Offset(*next))?;
                }
                let group = consumer.group_metadata().ok_or(KafkaError::Canceled)?;
                self.producer.send_offsets_to_transaction(&offsets, &group, self.timeout)?;
            }
            // rust-rdkafka's `commit_transaction` flushes first, polling in
            // naps of up to 100 ms on a queue that the producer's own thread
            // serves: each commit took 100 ms more. Wait for the records
            // here in short naps (no one can add any: the gate is held), so
            // that its flush finds nothing left.
            let flushed = std::time::Instant::now() + self.timeout;
            while self.producer.in_flight_count() > 0 && std::time::Instant::now() < flushed {
                std::thread::sleep(Duration::from_micros(500));
            }
            self.producer.commit_transaction(self.timeout)
        })();
        match result {
            Ok(()) => {
                tracing::debug!(transactional_id = %self.id, ms = started.elapsed().as_secs_f64() * 1000.0, "transaction committed");
                open.dirty = false;
                self.commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.producer.begin_transaction().map_err(TransactionError::Aborted)
            }
            Err(error) => {
                open.changes.clear();
                drop(open);
                if let Err(e) = self.producer.abort_transaction(self.timeout) {
                    tracing::warn!(transactional_id = %self.id, error = %e, "could not abort the failed transaction");
                }
                Err(fenced_or(error))
            }
        }
    }
}

/// A commit refused because the group moved on is a fence, not a failure.
fn fenced_or(error: KafkaError) -> TransactionError {
    use rdkafka::types::RDKafkaErrorCode as Code;
    match error.rdkafka_error_code() {
        Some(
            Code::IllegalGeneration
            | Code::UnknownMemberId
            | Code::FencedInstanceId
            | Code::ProducerFenced
            | Code::InvalidProducerEpoch,
        ) => TransactionError::Fenced,
        _ => TransactionError::Aborted(error),
    }
}

/// Commit the open transaction every `commit_interval_ms` until the pipeline
/// stops; a failed commit stops it (the in-memory state of its partitions
/// may be ahead of what is committed: the next start replays from there).
pub(super) async fn commit_every(shared: Arc<Shared>, transactions: Arc<Transactions>) {
    let every = shared.commit_interval;
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The counter outlives this producer (a restarted pipeline keeps it).
    let mut counted = 0;
    loop {
        ticker.tick().await;
        if shared.stopping.load(Ordering::Relaxed) {
            return;
        }
        match transactions.commit(&shared.consumer).await {
            Ok(()) => {
                let commits = transactions.commits();
                crate::pipeline::stats::Stats::add(&shared.stats.transactions, commits - counted);
                counted = commits;
            }
            Err(e) => {
                shared.fail(e.to_string());
                return;
            }
        }
    }
}

/// The transactional producer's settings: the pipeline's producer settings
/// and its transaction timeout.
pub(super) fn transactional_config(producer: &ClientConfig, t: &crate::config::TransactionConfig) -> ClientConfig {
    let mut config = producer.clone();
    config.set("transaction.timeout.ms", t.timeout_ms.to_string());
    // A record may wait no longer than its transaction lives.
    config.set("message.timeout.ms", t.timeout_ms.to_string());
    // The broker finishes a commit in the background and answers the next
    // transaction's first request "concurrent transactions" meanwhile; with
    // librdkafka's default 100 ms retry back-off every transaction started
    // 100 ms late (commits took 103 ms each, exactly-once ran at a fifth of
    // at-least-once). The operator's `[kafka.properties]` still win.
    if producer.get("retry.backoff.ms").is_none() {
        config.set("retry.backoff.ms", "5");
    }
    config
}

/// A random suffix for a default transactional id (distinct per process).
pub(super) fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0),
    );
    hasher.finish()
}
