//! The consumer's rebalance callbacks: newly assigned partitions deliver to
//! the fetch queue (and a keyed guest's start restoring their state); revoked
//! partitions finish their batches and commit (offsets, or the open
//! transaction) before they go, and lost ones (a fenced host) commit nothing.

use super::{keyed, transaction, FetchSlot, Revoked, Shared, Worker, WorkerKey, Workers};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::ClientContext;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;
use tokio::task::JoinHandle;
use transaction::Transactions;

/// Finishes revoked partitions' work before librdkafka takes them away.
pub struct RebalanceHandler {
    pub(super) pipeline: String,
    pub(super) workers: Workers,
    pub(super) revoked: Revoked,
    pub(super) drain_timeout: Duration,
    pub(super) runtime: tokio::runtime::Handle,
    pub(super) fetch: FetchSlot,
    pub(super) transactions: Option<Arc<Transactions>>,
    /// The pipeline, once started (to fail it from a rebalance).
    pub(super) shared: Arc<OnceLock<Weak<Shared>>>,
}

impl RebalanceHandler {
    fn fail(&self, reason: String) {
        match self.shared.get().and_then(Weak::upgrade) {
            Some(shared) => shared.fail(reason),
            None => tracing::error!(pipeline = %self.pipeline, %reason, "pipeline failed"),
        }
    }
}

impl ClientContext for RebalanceHandler {}

impl ConsumerContext for RebalanceHandler {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // Assigned partitions (after every assignment: an assignment
        // resets their queues) deliver to the fetch queue.
        if let Rebalance::Assign(partitions) = rebalance {
            if let Some(fetch) = self.fetch.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                fetch.route(partitions);
            }
            // A keyed guest's partitions start restoring their state now, together.
            if let Some(shared) = self.shared.get().and_then(Weak::upgrade) {
                let assigned: Vec<WorkerKey> =
                    partitions.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
                let _entered = self.runtime.enter();
                keyed::start_restores(&shared, &assigned);
            }
        }
    }

    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(partitions) = rebalance else { return };
        if let Some(shared) = self.shared.get().and_then(Weak::upgrade) {
            let gone: Vec<WorkerKey> =
                partitions.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
            keyed::cancel_restores(&shared, &gone);
        }
        let revoked: Vec<Worker> = {
            let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
            partitions
                .elements()
                .iter()
                .filter_map(|e| workers.remove(&(e.topic().to_string(), e.partition())))
                .collect()
        };
        self.revoked
            .keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(partitions.elements().iter().map(|e| (e.topic().to_string(), e.partition())));
        self.revoked.any.store(true, Ordering::Release);
        tracing::info!(pipeline = %self.pipeline, partitions = partitions.count(), busy = revoked.len(), "partitions revoked; finishing their batches");
        if !revoked.is_empty() {
            let joins: Vec<JoinHandle<()>> = revoked.into_iter().map(|w| w.join).collect();
            let timeout = self.drain_timeout;
            // The callback runs inside `poll` on the consumer thread, outside
            // the runtime: wait there for the workers, which run on the runtime.
            self.runtime.block_on(async {
                if tokio::time::timeout(timeout, futures::future::join_all(joins)).await.is_err() {
                    tracing::warn!(
                        "revoked partitions did not finish within {timeout:?}; their last batches will be replayed"
                    );
                }
            });
        }
        if let Some(transactions) = &self.transactions {
            // The consumer closing after the pipeline stopped (its last
            // transaction is committed or aborted): nothing to do.
            if self.shared.get().and_then(Weak::upgrade).is_none_or(|s| s.stopping.load(Ordering::Relaxed)) {
                return;
            }
            // The revoked partitions' work goes in the transaction committed
            // now; lost partitions (this host was fenced) commit nothing.
            if consumer.assignment_lost() {
                transactions.poison();
                self.fail(format!("{}", transaction::TransactionError::Fenced));
                return;
            }
            match transactions.commit_blocking(consumer) {
                Ok(()) => {
                    let gone: Vec<WorkerKey> =
                        partitions.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
                    transactions.forget(&gone);
                    tracing::debug!(pipeline = %self.pipeline, "transaction committed before revocation");
                }
                Err(e) => self.fail(e.to_string()),
            }
            return;
        }
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => tracing::debug!(pipeline = %self.pipeline, "offsets committed before revocation"),
            Err(e) => tracing::debug!(pipeline = %self.pipeline, error = %e, "no offsets to commit before revocation"),
        }
    }
}
