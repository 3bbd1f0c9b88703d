//! Pipelines whose input is an HTTP listener (`[pipeline.http]`): the log,
//! events and metrics APIs.
//!
//! The host owns HTTP, authentication and Kafka; the guest owns validation,
//! envelopes and each request's answer:
//! - [`server`] accepts connections (bounded, with header and body
//!   timeouts), authenticates each request ([`auth`]), reads its body
//!   (bounded) and queues it (503 with `Retry-After` when the queue is full);
//! - [`lanes`] hand the requests that are waiting to the guest together, one
//!   message per request, produce the records the guest makes, and answer
//!   each request once its records are acknowledged (503 when one is not).

pub mod auth;
mod keystone;
mod lanes;
mod server;

use crate::config::HttpSourceConfig;
use crate::pipeline::executor::Executor;
use crate::pipeline::pool::InstancePool;
use crate::pipeline::stats::Stats;
use crate::pipeline::{PipelineError, PipelineParts};
use bytes::Bytes;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// The topic name an HTTP pipeline's messages carry (in dead letters'
/// `dlq.topic` and the guest's batch).
pub const TOPIC: &str = "http";

/// An answer to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Status.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Body.
    pub body: Bytes,
}

impl Answer {
    /// A JSON error body as the originals' falcon writes them:
    /// `{"title": ..., "description": ...}`.
    pub fn error(status: u16, title: &str, description: &str) -> Self {
        let mut body = String::from("{\"title\": ");
        monasca_guest_sdk::pyjson::write_string(&mut body, title);
        body.push_str(", \"description\": ");
        monasca_guest_sdk::pyjson::write_string(&mut body, description);
        body.push('}');
        Answer { status, headers: vec![("content-type".into(), b"application/json".to_vec())], body: Bytes::from(body) }
    }

    /// 401 as keystonemiddleware answers a request without a valid token.
    pub fn unauthorized() -> Self {
        let body = r#"{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}"#;
        Answer {
            status: 401,
            headers: vec![
                ("content-type".into(), b"application/json".to_vec()),
                ("www-authenticate".into(), b"Token".to_vec()),
            ],
            body: Bytes::from_static(body.as_bytes()),
        }
    }

    /// 503 with `Retry-After`.
    pub fn unavailable(retry_after_s: u64, description: &str) -> Self {
        let mut answer = Answer::error(503, "Service Unavailable", description);
        answer.headers.push(("retry-after".into(), retry_after_s.to_string().into_bytes()));
        answer
    }
}

/// A request waiting for the guest.
pub struct Pending {
    /// The request as the guest sees it (topic [`TOPIC`], partition 0; the
    /// lane sets the offset).
    pub message: crate::engine::types::Message,
    /// Where its answer goes.
    pub answer: oneshot::Sender<Answer>,
    /// When it arrived.
    pub arrived: Instant,
}

/// What the server and the lanes share.
pub struct Shared {
    /// Pipeline name.
    pub name: String,
    /// The limits and credentials.
    pub config: HttpSourceConfig,
    /// The guest instances.
    pub pool: Arc<InstancePool>,
    /// Produces records and dead letters.
    pub executor: Executor,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Who may call.
    pub auth: auth::Authenticator,
    /// Batches run at once (`concurrency`).
    pub lanes: usize,
    /// The offset the next request gets.
    pub next_offset: AtomicI64,
    /// `[pipeline.batch] isolation_budget_ms`.
    pub isolation_budget: Option<Duration>,
}

/// A running HTTP pipeline.
pub struct HttpPipeline {
    shared: Arc<Shared>,
    listener: tokio::net::TcpListener,
    queue: (mpsc::Sender<Pending>, mpsc::Receiver<Pending>),
}

impl HttpPipeline {
    /// Bind the listener, prepare the dead-letter topic and the instances.
    pub async fn start(parts: PipelineParts) -> Result<Self, PipelineError> {
        let name = parts.config.name.clone();
        let failed = |reason: String| PipelineError::Failed { pipeline: name.clone(), reason };
        let Some(config) = parts.config.http.clone() else {
            return Err(failed("no [pipeline.http]".into()));
        };
        let outputs: Vec<String> = parts.config.output_topic.iter().cloned().collect();
        let limits = crate::kafka::topics::prepare(
            &parts.client_config,
            &parts.producer_config,
            &parts.config.dead_letter_topic(),
            &outputs,
            &[],
        )
        .await
        .map_err(|e| failed(e.to_string()))?;
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .map_err(|e| failed(format!("cannot listen on {}: {e}", config.listen)))?;
        let (pool, stats) = match parts.carried {
            Some(carried) => (carried.pool, carried.stats),
            None => {
                let guest_config = parts.config.config.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
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
        let executor = Executor {
            pipeline: name.clone(),
            producer: parts.producer,
            output_topic: parts.config.output_topic.as_deref().map(Arc::from),
            dead_letter_topic: Arc::from(parts.config.dead_letter_topic()),
            sinks: parts.sinks,
            delivery_timeout: Duration::from_millis(parts.config.delivery_timeout_ms),
            stats: stats.clone(),
            notifiers: None,
            exactly_once: false,
            limits,
            allowed_topics: parts.config.produce_allowlist(&parts.host_inputs),
        };
        let auth = auth::Authenticator::new(&config.tokens, config.keystone.as_ref()).map_err(failed)?;
        let queue = mpsc::channel(config.max_queued_requests);
        let isolation_budget = match parts.config.batch.isolation_budget_ms {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        };
        let shared = Arc::new(Shared {
            name,
            config,
            pool,
            executor,
            stats,
            auth,
            lanes: parts.config.concurrency,
            next_offset: AtomicI64::new(0),
            isolation_budget,
        });
        Ok(HttpPipeline { shared, listener, queue })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// The pipeline's counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.shared.stats.clone()
    }

    /// The instance pool (for deployments).
    pub fn pool(&self) -> Arc<InstancePool> {
        self.shared.pool.clone()
    }

    /// Pipeline name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Serve until `shutdown`: then stop accepting, answer what is queued
    /// and return.
    pub async fn run(self, shutdown: watch::Receiver<bool>) -> Result<(), PipelineError> {
        let HttpPipeline { shared, listener, queue: (sender, receiver) } = self;
        let lanes = lanes::spawn(shared.clone(), receiver);
        server::serve(shared.clone(), listener, sender, shutdown).await;
        // Every sender is gone once the connections are: the lanes answer
        // what is queued and end.
        let _ = tokio::time::timeout(Duration::from_millis(shared.config.ack_timeout_ms) * 2, lanes).await;
        Ok(())
    }
}
