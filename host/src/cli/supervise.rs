//! Keeps one pipeline of `run` going: a pipeline that fails stops alone
//! (the host's other pipelines go on), shows it on `/readyz` and `/metrics`,
//! and starts again after a back-off as a fresh host would: it rejoins its
//! group, resumes at the committed offsets and restores its partition state.
//! The instance pool (with any module deployed into it) and the counters
//! carry over.

use crate::admin::{PipelineState, PipelineView};
use crate::config::RestartConfig;
use crate::pipeline::stats::Stats;
use crate::pipeline::{Carried, Pipeline, PipelineParts};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Builds the parts of a new start of the pipeline.
pub type PartsFactory = Box<dyn Fn(Carried) -> anyhow::Result<PipelineParts> + Send + Sync>;

/// One pipeline under supervision.
pub struct Supervised {
    /// What the admin server shows of it.
    pub view: Arc<PipelineView>,
    /// When and how often it restarts.
    pub restart: RestartConfig,
    /// Its parts for each restart.
    pub parts: PartsFactory,
}

/// Run `pipeline` until `shutdown`, restarting it after failures as
/// `supervised.restart` says. An error only when restarts are off (or a
/// failure at shutdown): the host then stops.
pub async fn supervise(
    mut pipeline: Pipeline,
    supervised: Supervised,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let Supervised { view, restart, parts } = supervised;
    let mut backoff = restart.initial();
    view.set_state(PipelineState::Running);
    loop {
        let (name, pool, stats) = (pipeline.name().to_string(), pipeline.pool(), pipeline.stats());
        let began = Instant::now();
        let run = pipeline.run(shutdown.clone());
        let outcome = if view.state() == PipelineState::Restarting {
            until_recovered(run, &view, &stats, restart.max()).await
        } else {
            run.await
        };
        let error = match outcome {
            Ok(()) => {
                view.set_state(PipelineState::Stopped);
                return Ok(());
            }
            Err(error) => error,
        };
        view.set_failure(&error.to_string());
        if !restart.enabled || *shutdown.borrow() {
            view.set_state(PipelineState::Failed);
            return Err(error.into());
        }
        view.set_state(PipelineState::Restarting);
        Stats::add(&stats.restarts, 1);
        if began.elapsed() >= restart.max() {
            backoff = restart.initial();
        }
        let mut reason = error.to_string();
        pipeline = loop {
            tracing::error!(
                pipeline = %name,
                reason = %crate::text::escape_capped(&reason, 1024),
                backoff_ms = backoff.as_millis() as u64,
                "pipeline failed; the host's other pipelines go on; restarting it after the back-off"
            );
            if !sleep_unless_stopped(backoff, &mut shutdown).await {
                tracing::info!(pipeline = %name, "stopping while waiting to restart");
                view.set_state(PipelineState::Failed);
                return Ok(());
            }
            backoff = restart.next(backoff);
            let carried = Carried { pool: pool.clone(), stats: stats.clone() };
            let started = match parts(carried) {
                Ok(parts) => Pipeline::start(parts).await.map_err(anyhow::Error::from),
                Err(e) => Err(e),
            };
            match started {
                Ok(pipeline) => {
                    tracing::info!(pipeline = %name, "pipeline started again");
                    break pipeline;
                }
                Err(e) => {
                    reason = format!("{e:#}");
                    view.set_failure(&reason);
                }
            }
        };
    }
}

/// Run a restarted pipeline; it shows as running again (on `/readyz`) once
/// it completes a batch, or once it has run `settle` without failing.
async fn until_recovered<F: std::future::Future>(
    run: F,
    view: &PipelineView,
    stats: &Stats,
    settle: Duration,
) -> F::Output {
    let batches = || stats.batches.load(std::sync::atomic::Ordering::Relaxed);
    let (before, began) = (batches(), Instant::now());
    let mut run = std::pin::pin!(run);
    loop {
        tokio::select! {
            outcome = &mut run => return outcome,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {
                if batches() > before || began.elapsed() >= settle {
                    view.set_state(PipelineState::Running);
                    return run.await;
                }
            }
        }
    }
}

/// Sleep `duration`; `false` if `shutdown` turned true (or its sender went) first.
async fn sleep_unless_stopped(duration: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    let stopped = async {
        while !*shutdown.borrow_and_update() {
            if shutdown.changed().await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = tokio::time::sleep(duration) => true,
        _ = stopped => false,
    }
}
