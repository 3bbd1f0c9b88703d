//! The admin HTTP server: what runs, for operators and for Prometheus.
//!
//! - `GET /healthz`: 200 while the process serves requests;
//! - `GET /readyz`: 200 once every pipeline has started, 503 before and after
//!   one failed;
//! - `GET /metrics`: Prometheus text format (see [`prometheus`]);
//! - `GET /v1/pipelines`: the pipelines as JSON (name, state, module name and
//!   digest, the deployment's current and previous module, topics, group,
//!   counters);
//! - `PUT /v1/pipelines/{name}/module`: deploy a module (see [`deploy`]):
//!   the body is the component (`?name=` names it), or JSON
//!   `{"name", "module": base64, "canary": fixture text}`;
//! - `POST /v1/pipelines/{name}/rollback`: swap the previous module back.
//!
//! The two mutating calls need `Authorization: Bearer <token>` with the
//! token of `[admin] token` or `MONASCA_WASM_ADMIN_TOKEN`; without a token
//! configured they are refused (403). It listens on 127.0.0.1 unless the
//! configuration names another address.

mod deploy;

pub mod prometheus;

use crate::pipeline::stats::Stats;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// Where a pipeline is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PipelineState {
    /// Created, consuming.
    Running = 0,
    /// Stopped after a shutdown.
    Stopped = 1,
    /// Stopped on a failure.
    Failed = 2,
    /// Failed, waiting out its back-off before it starts again.
    Restarting = 3,
}

impl PipelineState {
    fn name(self) -> &'static str {
        match self {
            PipelineState::Running => "running",
            PipelineState::Stopped => "stopped",
            PipelineState::Failed => "failed",
            PipelineState::Restarting => "restarting",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => PipelineState::Stopped,
            2 => PipelineState::Failed,
            3 => PipelineState::Restarting,
            _ => PipelineState::Running,
        }
    }
}

/// What the admin server shows of one pipeline.
pub struct PipelineView {
    /// Pipeline name.
    pub name: String,
    /// Guest module name at start-up.
    module: String,
    /// Its sha256 digest (hex).
    digest: String,
    /// Deploys modules to the pipeline (and knows what runs now).
    pub deployer: Option<Arc<crate::deploy::Deployer>>,
    /// Input topics.
    pub topics: Vec<String>,
    /// Consumer group.
    pub group: String,
    /// Its counters.
    pub stats: Arc<Stats>,
    state: AtomicU8,
    /// Why it last failed (escaped, capped), if it ever did.
    last_failure: std::sync::Mutex<Option<String>>,
}

impl PipelineView {
    /// A running pipeline's view.
    pub fn new(name: &str, module: &str, digest: &str, topics: &[String], group: &str, stats: Arc<Stats>) -> Self {
        PipelineView {
            name: name.to_string(),
            module: module.to_string(),
            digest: digest.to_string(),
            topics: topics.to_vec(),
            group: group.to_string(),
            stats,
            deployer: None,
            state: AtomicU8::new(PipelineState::Running as u8),
            last_failure: Default::default(),
        }
    }

    /// The same view, able to deploy modules.
    pub fn with_deployer(mut self, deployer: Arc<crate::deploy::Deployer>) -> Self {
        self.deployer = Some(deployer);
        self
    }

    /// Name and digest (hex) of the module that runs now.
    pub fn module(&self) -> (String, String) {
        match &self.deployer {
            Some(d) => {
                let current = d.deployment().current;
                (current.name, current.digest)
            }
            None => (self.module.clone(), self.digest.clone()),
        }
    }

    /// Record a new state.
    pub fn set_state(&self, state: PipelineState) {
        self.state.store(state as u8, Ordering::Relaxed);
    }

    /// The current state.
    pub fn state(&self) -> PipelineState {
        PipelineState::from_u8(self.state.load(Ordering::Relaxed))
    }

    /// Record why the pipeline failed.
    pub fn set_failure(&self, reason: &str) {
        let shown = crate::text::escape_capped(reason, 512);
        *self.last_failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(shown);
    }

    /// Why the pipeline last failed.
    pub fn last_failure(&self) -> Option<String> {
        self.last_failure.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Everything the admin server reads.
#[derive(Default)]
pub struct Registry {
    /// The pipelines, in configuration order.
    pub pipelines: Vec<Arc<PipelineView>>,
    /// The bearer token the mutating calls need (none: they are refused).
    pub token: Option<String>,
    /// The sinks, for their counters.
    pub sinks: Option<Arc<crate::sinks::Sinks>>,
    /// The notifiers, for their counters by channel.
    pub notifiers: Option<Arc<crate::notify::Notifiers>>,
    /// The largest upload accepted, bytes (0: the default,
    /// [`DEFAULT_MAX_UPLOAD_BYTES`]).
    pub max_upload_bytes: usize,
}

impl Registry {
    fn pipeline(&self, name: &str) -> Option<&Arc<PipelineView>> {
        self.pipelines.iter().find(|p| p.name == name)
    }
}

/// The largest module (or JSON deployment) the server accepts by default
/// (`[admin] max_upload_mib`): real guests are a few MiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: usize = 64 << 20;

/// The admin routes over `registry`.
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/v1/pipelines", get(pipelines))
        // The upload is read by the handler itself, after the token check
        // and against its own limit.
        .route("/v1/pipelines/{name}/module", put(deploy::put_module).layer(axum::extract::DefaultBodyLimit::disable()))
        .route("/v1/pipelines/{name}/rollback", post(deploy::rollback))
        .fallback(|| async { deploy::not_found() })
        .with_state(registry)
}

/// Serve the admin routes on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, registry: Arc<Registry>) -> std::io::Result<()> {
    axum::serve(listener, router(registry)).await
}

async fn ready(State(registry): State<Arc<Registry>>) -> impl IntoResponse {
    let not_running: Vec<String> = registry
        .pipelines
        .iter()
        .filter(|p| p.state() != PipelineState::Running)
        .map(|p| match p.last_failure() {
            Some(why) => format!("{}: {} (last failure: {why})", p.name, p.state().name()),
            None => format!("{}: {}", p.name, p.state().name()),
        })
        .collect();
    if registry.pipelines.is_empty() {
        (StatusCode::SERVICE_UNAVAILABLE, "no pipeline yet\n".to_string())
    } else if not_running.is_empty() {
        (StatusCode::OK, "ready\n".to_string())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("{}\n", not_running.join("\n")))
    }
}

async fn metrics(State(registry): State<Arc<Registry>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, prometheus::CONTENT_TYPE)], prometheus::render(&registry))
}

async fn pipelines(State(registry): State<Arc<Registry>>) -> Json<serde_json::Value> {
    let list: Vec<serde_json::Value> = registry
        .pipelines
        .iter()
        .map(|p| {
            let s = p.stats.snapshot();
            let (module, digest) = p.module();
            let previous = p.deployer.as_ref().and_then(|d| d.deployment().previous);
            let version = p.deployer.as_ref().and_then(|d| d.module().world().package.clone());
            let partitions: Vec<serde_json::Value> = p
                .stats
                .lag()
                .into_iter()
                .map(|((topic, partition), lag)| serde_json::json!({ "topic": topic, "partition": partition, "lag": lag }))
                .collect();
            serde_json::json!({
                "name": p.name,
                "state": p.state().name(),
                "module": { "name": module, "digest": format!("sha256:{digest}"), "world": version },
                "partitions": partitions,
                "previous_module": previous.map(|m| serde_json::json!({ "name": m.name, "digest": format!("sha256:{}", m.digest) })),
                "topics": p.topics,
                "group": p.group,
                "counters": {
                    "consumed": s.consumed,
                    "batches": s.batches,
                    "produced": s.produced,
                    "stored": s.stored,
                    "dead_lettered": s.dead_lettered,
                    "guest_failures": s.guest_failures,
                    "swaps": s.swaps,
                    "rollbacks": s.rollbacks,
                },
            })
        })
        .collect();
    Json(serde_json::json!({ "pipelines": list }))
}
