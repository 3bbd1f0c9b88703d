//! The admin HTTP server: what runs, for operators and for Prometheus.
//!
//! - `GET /healthz`: 200 while the process serves requests;
//! - `GET /readyz`: 200 once every pipeline has started, 503 before and after
//!   one failed;
//! - `GET /metrics`: Prometheus text format (see [`prometheus`]);
//! - `GET /v1/pipelines`: the pipelines as JSON (name, state, module name and
//!   digest, topics, group, counters).
//!
//! Read-only endpoints only, for now; it listens on 127.0.0.1 unless the
//! configuration names another address. Module deployment (the mutating
//! calls, behind a bearer token) comes with hot-swap.

pub mod prometheus;

use crate::pipeline::stats::Stats;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
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
}

impl PipelineState {
    fn name(self) -> &'static str {
        match self {
            PipelineState::Running => "running",
            PipelineState::Stopped => "stopped",
            PipelineState::Failed => "failed",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => PipelineState::Stopped,
            2 => PipelineState::Failed,
            _ => PipelineState::Running,
        }
    }
}

/// What the admin server shows of one pipeline.
pub struct PipelineView {
    /// Pipeline name.
    pub name: String,
    /// Guest module name.
    pub module: String,
    /// Its sha256 digest (hex).
    pub digest: String,
    /// Input topics.
    pub topics: Vec<String>,
    /// Consumer group.
    pub group: String,
    /// Its counters.
    pub stats: Arc<Stats>,
    state: AtomicU8,
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
            state: AtomicU8::new(PipelineState::Running as u8),
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
}

/// Everything the admin server reads.
#[derive(Default)]
pub struct Registry {
    /// The pipelines, in configuration order.
    pub pipelines: Vec<Arc<PipelineView>>,
}

/// The admin routes over `registry`.
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/v1/pipelines", get(pipelines))
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
        .map(|p| format!("{}: {}", p.name, p.state().name()))
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
            serde_json::json!({
                "name": p.name,
                "state": p.state().name(),
                "module": { "name": p.module, "digest": format!("sha256:{}", p.digest) },
                "topics": p.topics,
                "group": p.group,
                "counters": {
                    "consumed": s.consumed,
                    "batches": s.batches,
                    "produced": s.produced,
                    "stored": s.stored,
                    "dead_lettered": s.dead_lettered,
                    "guest_failures": s.guest_failures,
                },
            })
        })
        .collect();
    Json(serde_json::json!({ "pipelines": list }))
}
