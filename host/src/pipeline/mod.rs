//! A pipeline: one consumer group, one guest module, the effects it asks for.
//!
//! A dedicated consumer thread polls librdkafka (`BaseConsumer::poll`, no
//! per-message future), sweeps up what librdkafka already holds, and hands
//! each partition's share of the sweep to that partition's worker task
//! (`worker`) in one piece (one channel send and one wake-up per partition
//! and sweep, not per message). The worker batches them, runs the guest
//! through a bounded pool of instances (`pool`), isolates poison messages
//! (`isolate`), carries out the effects (`executor`) and then stores the
//! offset. Offsets are committed asynchronously by librdkafka (only stored
//! ones). On revocation the revoked partitions' workers finish what they have
//! and the offsets are committed synchronously before the partitions go; on
//! shutdown every worker drains and the final commit is synchronous.

mod copy;
pub mod executor;
pub mod isolate;
mod keyed;
pub mod log_budget;
pub mod notifications;
pub mod pool;
mod rebalance;
pub mod stats;
pub mod transaction;
mod worker;

use crate::config::{BatchConfig, Delivery, PipelineConfig};
use crate::engine::types::Message;
use crate::engine::Module;
use crate::kafka::fetch_queue::{FetchQueue, Fetched};
use copy::{fetched, owned, TopicNames, Values};
use executor::Executor;
use pool::InstancePool;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::ClientConfig;
use stats::Stats;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;
use transaction::Transactions;

pub use rebalance::RebalanceHandler;

/// The consumer type of a pipeline.
pub type PipelineConsumer = BaseConsumer<RebalanceHandler>;

/// Why a pipeline stopped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The consumer could not be created or subscribed.
    #[error("pipeline `{pipeline}`: cannot consume: {error}")]
    Consumer {
        /// Pipeline name.
        pipeline: String,
        /// What librdkafka said.
        error: rdkafka::error::KafkaError,
    },
    /// A batch failed for good (delivery, sink, guest start-up): the pipeline
    /// stopped without storing that batch's offsets.
    #[error("pipeline `{pipeline}` stopped: {reason}")]
    Failed {
        /// Pipeline name.
        pipeline: String,
        /// What failed.
        reason: String,
    },
}

type WorkerKey = (String, i32);

struct Worker {
    tx: mpsc::Sender<Vec<Message>>,
    join: JoinHandle<()>,
}

type Workers = Arc<Mutex<HashMap<WorkerKey, Worker>>>;

/// Partitions revoked while the consumer thread held swept messages of
/// theirs. `any` lets the consumer thread skip the lock on every poll.
#[derive(Default)]
struct RevokedList {
    any: AtomicBool,
    keys: Mutex<Vec<WorkerKey>>,
}

type Revoked = Arc<RevokedList>;

/// The pipeline's fetch queue, once its consumer exists (the rebalance
/// handler, created before the consumer, routes partitions to it).
type FetchSlot = Arc<Mutex<Option<Arc<FetchQueue>>>>;

/// Most messages taken from librdkafka in one sweep before they are handed on.
const SWEEP: usize = 2048;

/// Chunks (one sweep's share) a partition's worker may have queued.
const QUEUED_CHUNKS: usize = 8;

/// What a pipeline's tasks share.
pub struct Shared {
    name: String,
    consumer: Arc<PipelineConsumer>,
    pool: Arc<InstancePool>,
    executor: Executor,
    batch: BatchConfig,
    /// How long a message is held after its Kafka timestamp (`delay_seconds`).
    delay: Option<Duration>,
    stats: Arc<Stats>,
    failure: Mutex<Option<String>>,
    failed: Notify,
    stopping: AtomicBool,
    fetch: FetchSlot,
    /// The guest's partition state (a keyed guest only).
    keyed: Option<keyed::KeyedState>,
    /// The pipeline's transactions (exactly-once, or a keyed guest).
    transactions: Option<Arc<Transactions>>,
    delivery: Delivery,
    commit_interval: Duration,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The fetch queue goes before the consumer it belongs to.
        self.fetch.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

impl Shared {
    fn fail(&self, reason: String) {
        tracing::error!(pipeline = %self.name, %reason, "pipeline failed");
        let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        failure.get_or_insert(reason);
        self.stopping.store(true, Ordering::Relaxed);
        self.failed.notify_one();
    }
}

/// Everything a pipeline needs from the host.
pub struct PipelineParts {
    /// The pipeline's configuration.
    pub config: PipelineConfig,
    /// Its guest module.
    pub module: Module,
    /// Consumer client configuration (bootstrap, group, defaults).
    pub consumer_config: ClientConfig,
    /// The shared idempotent producer.
    pub producer: rdkafka::producer::FutureProducer,
    /// The configured sinks.
    pub sinks: Arc<crate::sinks::Sinks>,
    /// What the guest's `lookup` import may query.
    pub lookups: Arc<dyn crate::engine::Lookups>,
    /// The host's notifiers (`None`: a `notify` effect stops the pipeline).
    pub notifiers: Option<Arc<crate::notify::Notifiers>>,
    /// Kafka client settings (bootstrap and the operator's properties) for
    /// the changelog's admin requests and restores.
    pub client_config: ClientConfig,
    /// Producer settings, for the pipeline's transactional producer.
    pub producer_config: ClientConfig,
    /// The input topics of every pipeline of the host (the default produce
    /// allowlist includes them).
    pub host_inputs: Vec<String>,
    /// A restart's instance pool (with the module deployed into it) and
    /// counters, carried over from the pipeline that failed; `module` is
    /// then unused.
    pub carried: Option<Carried>,
}

/// What a restarted pipeline takes over from the one that failed.
pub struct Carried {
    /// The instance pool, which the deployer swaps modules in.
    pub pool: Arc<InstancePool>,
    /// The counters.
    pub stats: Arc<Stats>,
}

/// A running pipeline.
pub struct Pipeline {
    shared: Arc<Shared>,
    workers: Workers,
    revoked: Revoked,
}

impl Pipeline {
    /// Prepare the changelog and the transactions (when the pipeline needs
    /// them), create the consumer and subscribe.
    pub async fn start(parts: PipelineParts) -> Result<Self, PipelineError> {
        let name = parts.config.name.clone();
        let failed = |reason: String| PipelineError::Failed { pipeline: name.clone(), reason };
        let workers: Workers = Arc::default();
        let revoked: Revoked = Arc::default();
        let fetch: FetchSlot = Arc::default();
        let exactly_once = parts.config.delivery == Delivery::ExactlyOnce;
        let module = match &parts.carried {
            Some(carried) => carried.pool.module(),
            None => parts.module.clone(),
        };
        let keyed_guest = module.world().is_keyed();
        let keyed = if keyed_guest {
            let changelog = parts.config.changelog_topic();
            crate::state::changelog::ensure_topic(&parts.client_config, &changelog, &parts.config.topics)
                .await
                .map_err(|e| failed(e.to_string()))?;
            let state = &parts.config.state;
            Some(keyed::KeyedState {
                pending: Default::default(),
                changelog,
                limits: state.limits(),
                timer: (state.timer_interval_ms > 0).then(|| Duration::from_millis(state.timer_interval_ms)),
                restore_timeout: Duration::from_secs(state.restore_timeout_s),
                client: parts.client_config.clone(),
            })
        } else {
            None
        };
        let transactions = if exactly_once || keyed_guest {
            let t = &parts.config.transaction;
            // Fixed per host when the host has a name (a restart fences its
            // predecessor at once), else random per process.
            let id = t.id.clone().unwrap_or_else(|| match parts.consumer_config.get("group.instance.id") {
                Some(member) => format!("monasca-wasm-{}-{member}", parts.config.group_id),
                None => format!("monasca-wasm-{}-{name}-{:016x}", parts.config.group_id, transaction::rand_suffix()),
            });
            let (config, timeout) =
                (transaction::transactional_config(&parts.producer_config, t), Duration::from_millis(t.timeout_ms));
            let changelog = keyed.as_ref().map(|k| k.changelog.clone());
            let started = tokio::task::spawn_blocking(move || Transactions::start(config, &id, timeout, changelog))
                .await
                .map_err(|e| failed(e.to_string()))?
                .map_err(|e| failed(e.to_string()))?;
            tracing::info!(pipeline = %name, transactional_id = started.id(), exactly_once, "transactions ready");
            Some(Arc::new(started))
        } else {
            None
        };
        // The dead-letter topic exists before the first bad message, and no
        // record is made larger than its topic takes.
        let outputs: Vec<String> = parts.config.output_topic.iter().cloned().collect();
        let limits = crate::kafka::topics::prepare(
            &parts.client_config,
            &parts.producer_config,
            &parts.config.dead_letter_topic(),
            &outputs,
            &parts.config.topics,
        )
        .await
        .map_err(|e| failed(e.to_string()))?;
        let shared_slot: Arc<OnceLock<Weak<Shared>>> = Arc::default();
        let handler = RebalanceHandler {
            pipeline: name.clone(),
            workers: workers.clone(),
            revoked: revoked.clone(),
            drain_timeout: Duration::from_secs(30),
            runtime: tokio::runtime::Handle::current(),
            fetch: fetch.clone(),
            transactions: transactions.clone(),
            shared: shared_slot.clone(),
        };
        let mut consumer_config = parts.consumer_config;
        if transactions.is_some() {
            // Offsets are committed in the transactions; what a transaction
            // left uncommitted is never read.
            consumer_config.set("enable.auto.commit", "false").set("isolation.level", "read_committed");
        }
        let consumer: PipelineConsumer = consumer_config
            .create_with_context(handler)
            .map_err(|error| PipelineError::Consumer { pipeline: name.clone(), error })?;
        let topics: Vec<&str> = parts.config.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(|error| PipelineError::Consumer { pipeline: name.clone(), error })?;
        // The first assignment comes in the first `poll`, after this. (Made
        // after `subscribe`: on its error the consumer goes with no queue.)
        *fetch.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(FetchQueue::new(&consumer)));
        let (pool, stats) = match parts.carried {
            Some(carried) => (carried.pool, carried.stats),
            None => {
                let guest_config: Vec<(String, String)> =
                    parts.config.config.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                let pool = InstancePool::new(
                    parts.module,
                    &name,
                    guest_config,
                    parts.config.concurrency,
                    parts.config.rollback,
                    parts.lookups,
                );
                (Arc::new(pool), Arc::new(Stats::default()))
            }
        };
        // Exactly-once: every record of the pipeline goes through the transactional producer.
        let producer = match (&transactions, exactly_once) {
            (Some(t), true) => t.producer().clone(),
            _ => parts.producer,
        };
        let shared = Arc::new(Shared {
            name: name.clone(),
            consumer: Arc::new(consumer),
            pool,
            executor: Executor {
                pipeline: name.clone(),
                producer,
                output_topic: parts.config.output_topic.as_deref().map(Arc::from),
                dead_letter_topic: Arc::from(parts.config.dead_letter_topic()),
                sinks: parts.sinks,
                delivery_timeout: Duration::from_millis(parts.config.delivery_timeout_ms),
                stats: stats.clone(),
                notifiers: parts.notifiers,
                exactly_once,
                limits,
                allowed_topics: parts.config.produce_allowlist(&parts.host_inputs),
            },
            batch: parts.config.batch,
            delay: (parts.config.delay_seconds > 0).then(|| Duration::from_secs(parts.config.delay_seconds)),
            stats,
            failure: Mutex::new(None),
            failed: Notify::new(),
            stopping: AtomicBool::new(false),
            fetch,
            keyed,
            transactions,
            delivery: parts.config.delivery,
            commit_interval: Duration::from_millis(parts.config.transaction.commit_interval_ms),
        });
        let _ = shared_slot.set(Arc::downgrade(&shared));
        Ok(Pipeline { shared, workers, revoked })
    }

    /// The pipeline's counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.shared.stats.clone()
    }

    /// The pipeline's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The pool of guest instances, which also swaps the module.
    pub fn pool(&self) -> Arc<InstancePool> {
        self.shared.pool.clone()
    }

    /// Consume until `shutdown` turns true (then drain, flush and commit) or a
    /// batch fails for good.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), PipelineError> {
        let shared = self.shared.clone();
        let runtime = tokio::runtime::Handle::current();
        let poller = {
            let polling = shared.clone();
            let workers = self.workers.clone();
            let revoked = self.revoked.clone();
            std::thread::Builder::new()
                .name(format!("consume-{}", shared.name))
                .spawn(move || poll_loop(&polling, &workers, &revoked, &runtime))
                .map_err(|e| PipelineError::Failed { pipeline: shared.name.clone(), reason: e.to_string() })?
        };
        let committer = shared.transactions.clone().map(|t| tokio::spawn(transaction::commit_every(shared.clone(), t)));
        tokio::select! {
            _ = async { while shutdown.changed().await.is_ok() && !*shutdown.borrow() {} } => {}
            _ = shared.failed.notified() => {}
        }
        shared.stopping.store(true, Ordering::Relaxed);
        if let Some(committer) = committer {
            // It stops at its next tick; a commit under way finishes first.
            let _ = committer.await;
        }
        shared.stopping.store(true, Ordering::Relaxed);
        let poller_ended = tokio::task::spawn_blocking(move || poller.join().is_ok()).await.unwrap_or(false);

        // Drain: close every worker's queue and let it finish what it holds.
        let workers: Vec<Worker> =
            self.workers.lock().unwrap_or_else(|p| p.into_inner()).drain().map(|(_, w)| w).collect();
        let joins: Vec<JoinHandle<()>> = workers.into_iter().map(|w| w.join).collect();
        if tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(joins)).await.is_err() {
            tracing::warn!(pipeline = %shared.name, "workers did not finish within 60 s");
        }
        let failure = shared.failure.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(reason) = failure {
            if let Some(transactions) = shared.transactions.clone() {
                // Nothing of the open transaction becomes visible.
                let _ = tokio::task::spawn_blocking(move || transactions.abort_blocking()).await;
            }
            return Err(PipelineError::Failed { pipeline: shared.name.clone(), reason });
        }
        if !poller_ended {
            let reason = "the consumer thread panicked".to_string();
            return Err(PipelineError::Failed { pipeline: shared.name.clone(), reason });
        }
        if let Some(transactions) = &shared.transactions {
            if let Err(e) = transactions.commit(&shared.consumer).await {
                return Err(PipelineError::Failed { pipeline: shared.name.clone(), reason: e.to_string() });
            }
        } else if let Err(e) = shared.consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(pipeline = %shared.name, error = %e, "final commit");
        }
        tracing::info!(pipeline = %shared.name, "stopped after draining and committing");
        Ok(())
    }
}

/// The consumer thread: wait for a message, sweep up to [`SWEEP`] more that
/// librdkafka already holds, copy them, and hand each partition's share to
/// its worker (starting it on the runtime when needed), until the pipeline
/// stops.
fn poll_loop(shared: &Arc<Shared>, workers: &Workers, revoked: &Revoked, runtime: &tokio::runtime::Handle) {
    let mut swept: Vec<(WorkerKey, Vec<Message>)> = Vec::new();
    let mut topics = TopicNames::default();
    let mut values = Values::new();
    let mut last_lag = std::time::Instant::now();
    let fetch = shared.fetch.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut buffer = Vec::with_capacity(SWEEP);
    while !shared.stopping.load(Ordering::Relaxed) {
        let mut taken = 0;
        // The consumer queue first: rebalances (they run inside `poll`),
        // errors, and messages fetched before their partition was routed to
        // the fetch queue (older than any there: taken first).
        while taken < SWEEP {
            let polled = shared.consumer.poll(Duration::ZERO);
            // A revocation runs inside `poll`: what this thread still holds of
            // the revoked partitions was never handed on, so its offsets were
            // never stored; the partitions' next owner reads it again.
            forget_revoked(&mut swept, revoked);
            match polled {
                None => break,
                Some(Err(e)) => {
                    tracing::warn!(pipeline = %shared.name, error = %e, "Kafka error while consuming");
                    break;
                }
                Some(Ok(borrowed)) => {
                    push_swept(&mut swept, owned(&borrowed, &mut topics, &mut values));
                    taken += 1;
                }
            }
        }
        // Then a batch from the fetch queue. librdkafka's batch call waits
        // until the batch is full or the time is up: when nothing came, wait
        // for one message alone, then take what else is there at once.
        match &fetch {
            Some(fetch) => {
                let polled = taken;
                let mut take = |m: Fetched<'_>| match m.error() {
                    Some(error) => tracing::warn!(pipeline = %shared.name, %error, "Kafka error while consuming"),
                    None => {
                        push_swept(&mut swept, fetched(&m, &mut topics, &mut values));
                        taken += 1;
                    }
                };
                let waited = if polled == 0 { fetch.consume(POLL_WAIT, 1, &mut buffer, &mut take) } else { 0 };
                let room = SWEEP.saturating_sub(polled + waited);
                if (polled > 0 || waited > 0) && room > 0 {
                    fetch.consume(Duration::ZERO, room, &mut buffer, &mut take);
                }
            }
            None if taken == 0 => std::thread::sleep(POLL_WAIT),
            None => {}
        }
        Stats::add(&shared.stats.consumed, taken as u64);
        if last_lag.elapsed() >= LAG_EVERY {
            last_lag = std::time::Instant::now();
            update_lag(shared);
        }
        for (key, chunk) in swept.drain(..) {
            let tx = {
                let mut workers = workers.lock().unwrap_or_else(|p| p.into_inner());
                let worker = workers.entry(key).or_insert_with_key(|key| {
                    let (tx, rx) = mpsc::channel(QUEUED_CHUNKS);
                    let join = runtime.spawn(worker::run(shared.clone(), key.0.clone(), key.1, rx));
                    Worker { tx, join }
                });
                worker.tx.clone()
            };
            // Blocks while the partition's queue is full: back-pressure on consumption.
            if tx.blocking_send(chunk).is_err() {
                // The worker stopped (the pipeline is failing); stop consuming.
                return;
            }
        }
    }
}

/// The longest the consumer thread waits for a message when none is there.
/// The wait is on the fetch queue, which events on the consumer queue
/// (rebalances, errors, commit results) do not wake: they wait this long at
/// most, so it is short (an idle pipeline's thread wakes 100 times a second,
/// a few microseconds each).
const POLL_WAIT: Duration = Duration::from_millis(10);

/// How often the consumer thread refreshes the lag table.
const LAG_EVERY: Duration = Duration::from_secs(1);

/// Refresh the lag of every assigned partition: librdkafka's cached high
/// watermark (no request to the broker) minus the consumer's position.
fn update_lag(shared: &Shared) {
    let (Ok(assigned), Ok(positions)) = (shared.consumer.assignment(), shared.consumer.position()) else { return };
    let mut lag = std::collections::BTreeMap::new();
    for element in assigned.elements() {
        let (topic, partition) = (element.topic(), element.partition());
        let Some((low, high)) = cached_watermarks(&shared.consumer, topic, partition) else { continue };
        let position = positions.find_partition(topic, partition).and_then(|p| {
            if let rdkafka::Offset::Offset(o) = p.offset() {
                Some(o)
            } else {
                None
            }
        });
        // No message consumed yet: the whole partition, as far as known (an
        // empty one has no lag).
        let behind = match position {
            Some(position) => Some(high - position),
            None if high == 0 => Some(0),
            None if low >= 0 => Some(high - low),
            None => None,
        };
        if let Some(behind) = behind {
            lag.insert((topic.to_string(), partition), behind.max(0));
        }
    }
    *shared.stats.lag.lock().unwrap_or_else(|p| p.into_inner()) = lag;
}

/// The low (-1 when unknown) and high watermarks librdkafka last saw for a
/// partition (from its fetch responses, no request to the broker), if it has
/// seen the high one. rust-rdkafka only wraps the query that asks the broker,
/// which blocks.
fn cached_watermarks(consumer: &PipelineConsumer, topic: &str, partition: i32) -> Option<(i64, i64)> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client pointer is valid while `consumer` lives; the topic
    // is a NUL-terminated string that outlives the call; librdkafka writes
    // the two offsets and keeps no pointer.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some((low, high))
}

/// Add a message to its partition's share of the sweep.
fn push_swept(swept: &mut Vec<(WorkerKey, Vec<Message>)>, message: Message) {
    let found = swept
        .iter_mut()
        .rev()
        .find(|((topic, partition), _)| *partition == message.partition && **topic == *message.topic);
    match found {
        Some((_, chunk)) => chunk.push(message),
        None => swept.push(((message.topic.to_string(), message.partition), vec![message])),
    }
}

/// Drop the swept messages of partitions revoked since the last look.
fn forget_revoked(swept: &mut Vec<(WorkerKey, Vec<Message>)>, revoked: &Revoked) {
    if !revoked.any.swap(false, Ordering::Acquire) {
        return;
    }
    let mut keys = revoked.keys.lock().unwrap_or_else(|p| p.into_inner());
    swept.retain(|(key, _)| !keys.contains(key));
    keys.clear();
}
