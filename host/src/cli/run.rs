//! `monasca-wasm run --config host.toml`: the service. Starts every
//! pipeline, prints a summary line per pipeline every few seconds, and on
//! SIGTERM/SIGINT drains, flushes and commits before exiting.

use super::supervise::{supervise, Supervised};
use crate::admin::{self, PipelineState, PipelineView, Registry};
use crate::config::HostConfig;
use crate::config::PipelineConfig;
use crate::databases::open_all as open_databases;
use crate::deploy::store::{Deployment, ModuleStore, StoredModule};
use crate::deploy::Deployer;
use crate::engine::{Engine, Module};
use crate::http_source::HttpPipeline;
use crate::kafka::{self, embedded::EmbeddedKafka};
use crate::lookups::SqlLookups;
use crate::notify::Notifiers;
use crate::pipeline::stats::{Snapshot, Stats};
use crate::pipeline::{Pipeline, PipelineParts};
use crate::sinks::Sinks;
use anyhow::Context;
use rdkafka::producer::{FutureProducer, Producer};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// A pipeline as started: consuming Kafka, or serving HTTP.
enum Started {
    Kafka(Pipeline),
    Http(HttpPipeline),
}

impl Started {
    fn pool_and_stats(&self) -> (Arc<crate::pipeline::pool::InstancePool>, Arc<Stats>) {
        match self {
            Started::Kafka(p) => (p.pool(), p.stats()),
            Started::Http(p) => (p.pool(), p.stats()),
        }
    }
}

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The configuration file.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Seconds between summary lines (0: none).
    #[arg(long, default_value_t = 5)]
    pub summary_every: u64,
    /// Exit once the `[generator]` is done, messages have flowed, and none
    /// arrived for this many seconds (for demos and tests).
    #[arg(long, value_name = "SECONDS")]
    pub exit_when_idle: Option<u64>,
}

/// Run the pipelines until a signal (or idleness, or a failure).
pub async fn run(args: &RunArgs) -> anyhow::Result<()> {
    // Registered before anything starts: a signal that arrives while the
    // pipelines are still starting is held and stops the host cleanly once
    // they run, rather than killing it with the default disposition.
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let config = HostConfig::load(&args.config)?;

    let embedded = if config.kafka.is_embedded() {
        let mut topics: Vec<String> = Vec::new();
        for p in &config.pipelines {
            topics.extend(p.topics.iter().cloned());
            topics.extend(p.output_topic.iter().cloned());
            topics.push(p.dead_letter_topic());
            // The topics a guest's options name (an HTTP API's output topic).
            topics.extend(p.produce_allowlist(&[]).into_iter().flatten());
        }
        topics.extend(config.generator.iter().map(|g| g.topic.clone()));
        topics.sort();
        topics.dedup();
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        let cluster = EmbeddedKafka::start(&refs, config.kafka.embedded_partitions)
            .context("cannot start the embedded Kafka cluster")?;
        eprintln!(
            "embedded Kafka (librdkafka mock cluster) at {} with topics {}",
            cluster.bootstrap(),
            topics.join(", ")
        );
        Some(cluster)
    } else {
        None
    };
    let bootstrap = embedded.as_ref().map(|e| e.bootstrap()).unwrap_or_else(|| config.kafka.bootstrap.clone());

    let engine = Engine::new(config.engine.settings())?;
    let producer: FutureProducer =
        kafka::producer_config(&config.kafka, &bootstrap).create().context("cannot create the Kafka producer")?;
    let sinks = Arc::new(Sinks::new(&config.sinks)?);
    for line in sinks.describe() {
        eprintln!("{line}");
    }
    let (shutdown_tx, shutdown_rx) = watch::channel(false);

    let mut running = JoinSet::new();
    let mut registry = Registry::default();
    let mut stats: Vec<(String, Arc<Stats>)> = Vec::new();
    let databases = open_databases(&config.databases)?;
    let notifiers = match &config.notifiers {
        Some(c) => {
            let notifiers = Notifiers::new(c, &config.databases)?;
            for line in notifiers.describe() {
                eprintln!("{line}");
            }
            Some(Arc::new(notifiers))
        }
        None => None,
    };
    let store =
        ModuleStore::new(config.engine.module_store.clone().unwrap_or_else(|| PathBuf::from("monasca-wasm-modules")));
    for p in &config.pipelines {
        let (module, deployed) = starting_module(&engine, &store, p)?;
        let source = match &p.http {
            Some(http) => format!("HTTP on {}", http.listen),
            None => format!("topics {}, group {}", p.topics.join(", "), p.group_id),
        };
        eprintln!(
            "pipeline `{}`: module {} {} ({:?}), {source}",
            p.name,
            module.name(),
            module.short_digest(),
            module.cache_outcome(),
        );
        let (module_name, digest) = (module.name().to_string(), module.digest().to_string());
        let lookups: Arc<dyn crate::engine::Lookups> = Arc::new(Arc::new(SqlLookups::new(&p.lookups, &databases)?));
        let parts = {
            let (p, producer, sinks, notifiers) = (p.clone(), producer.clone(), sinks.clone(), notifiers.clone());
            let host_inputs: Vec<String> = config.pipelines.iter().flat_map(|p| p.topics.iter().cloned()).collect();
            let mut consumer_config = kafka::consumer_config(&config.kafka, &bootstrap, &p.group_id);
            kafka::static_membership(&mut consumer_config, &config.kafka, &p.name);
            let client_config = kafka::client_config(&config.kafka, &bootstrap);
            let producer_config = kafka::producer_config(&config.kafka, &bootstrap);
            move |module: Module, carried: Option<crate::pipeline::Carried>| PipelineParts {
                config: p.clone(),
                module,
                consumer_config: consumer_config.clone(),
                producer: producer.clone(),
                sinks: sinks.clone(),
                lookups: lookups.clone(),
                notifiers: notifiers.clone(),
                client_config: client_config.clone(),
                producer_config: producer_config.clone(),
                host_inputs: host_inputs.clone(),
                carried,
            }
        };
        let started = if p.http.is_some() {
            let pipeline = HttpPipeline::start(parts(module, None)).await?;
            eprintln!("pipeline `{}`: serving HTTP on http://{}", p.name, pipeline.local_addr()?);
            Started::Http(pipeline)
        } else {
            Started::Kafka(Pipeline::start(parts(module, None)).await?)
        };
        let (pool, pipeline_stats) = started.pool_and_stats();
        stats.push((p.name.clone(), pipeline_stats.clone()));
        let canary_topic = p.topics.first().map(String::as_str).unwrap_or(crate::http_source::TOPIC);
        let deployer = Deployer::new(
            engine.clone(),
            store.clone(),
            &p.name,
            canary_topic,
            pool,
            pipeline_stats.clone(),
            deployed.clone(),
        );
        let deployer = if deployed.previous.is_none() && deployed.current.deployed_at == 0 {
            deployer.with_boot_file(&p.module)
        } else {
            deployer
        };
        let deployer = Arc::new(deployer);
        tokio::spawn(deployer.clone().answer_rollback_requests());
        if let Some(dir) = &p.watch_dir {
            eprintln!("pipeline `{}`: deploying modules moved into {}", p.name, dir.display());
            tokio::spawn(crate::deploy::watch::watch(dir.clone(), deployer.clone(), p.name.clone()));
        }
        let view = PipelineView::new(&p.name, &module_name, &digest, &p.topics, &p.group_id, pipeline_stats);
        let view = Arc::new(view.with_deployer(deployer));
        registry.pipelines.push(view.clone());
        match started {
            Started::Kafka(pipeline) => {
                let supervised = Supervised {
                    view,
                    restart: p.restart,
                    parts: Box::new(move |carried| Ok(parts(carried.pool.module(), Some(carried)))),
                };
                running.spawn(supervise(pipeline, supervised, shutdown_rx.clone()));
            }
            Started::Http(pipeline) => {
                // Guest failures end single requests; the listener itself has nothing to restart.
                let shutdown = shutdown_rx.clone();
                running.spawn(async move {
                    let ended = pipeline.run(shutdown).await;
                    view.set_state(if ended.is_ok() { PipelineState::Stopped } else { PipelineState::Failed });
                    Ok(ended?)
                });
            }
        }
    }
    if let Some(admin) = &config.admin {
        registry.token = admin.token();
        registry.max_upload_bytes = admin.max_upload_mib.max(1).saturating_mul(1 << 20);
        registry.sinks = Some(sinks.clone());
        registry.notifiers = notifiers.clone();
        let listener = tokio::net::TcpListener::bind(&admin.listen)
            .await
            .with_context(|| format!("admin server: cannot listen on {}", admin.listen))?;
        eprintln!(
            "admin server on http://{} (/healthz, /readyz, /metrics, /v1/pipelines; deployments {})",
            listener.local_addr()?,
            if registry.token.is_some() { "on, bearer token required" } else { "off: no token configured" }
        );
        let registry = Arc::new(std::mem::take(&mut registry));
        tokio::spawn(async move {
            if let Err(e) = admin::serve(listener, registry).await {
                tracing::error!(error = %e, "admin server stopped");
            }
        });
    }

    let generated = Arc::new(AtomicBool::new(config.generator.is_none()));
    if let Some(g) = config.generator.clone() {
        let producer = producer.clone();
        let done = generated.clone();
        tokio::spawn(async move {
            let make = crate::generate::metric_envelope;
            match super::generate::produce(&producer, &g.topic, 0..g.count, g.rate, make, |_| {}).await {
                Ok(()) => eprintln!("generator: produced {} metric envelopes to `{}`", g.count, g.topic),
                Err(e) => eprintln!("generator: {e:#}"),
            }
            done.store(true, Ordering::Relaxed);
        });
    }

    let every = Duration::from_secs(args.summary_every.max(1));
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let mut last_print = Instant::now();
    let mut previous: Vec<Snapshot> = vec![Snapshot::default(); stats.len()];
    let mut last_progress = (Instant::now(), 0u64);
    let mut failure: Option<anyhow::Error> = None;
    loop {
        tokio::select! {
            _ = interrupt.recv() => { eprintln!("interrupted: draining, flushing and committing"); break; }
            _ = terminate.recv() => { eprintln!("terminated: draining, flushing and committing"); break; }
            ended = running.join_next() => match ended {
                Some(Ok(Ok(()))) | None => break,
                Some(Ok(Err(e))) => { failure = Some(e); break; }
                Some(Err(e)) => { failure = Some(anyhow::anyhow!("a pipeline task panicked: {e}")); break; }
            },
            _ = ticker.tick() => {
                let now: Vec<Snapshot> = stats.iter().map(|(_, s)| s.snapshot()).collect();
                let consumed: u64 = now.iter().map(|s| s.consumed).sum();
                if consumed != last_progress.1 {
                    last_progress = (Instant::now(), consumed);
                }
                if args.summary_every > 0 && last_print.elapsed() >= every {
                    let seconds = last_print.elapsed().as_secs_f64();
                    for ((name, _), (snap, prev)) in stats.iter().zip(now.iter().zip(&previous)) {
                        eprintln!("pipeline `{name}`: {}", snap.summary(prev, seconds));
                    }
                    previous = now;
                    last_print = Instant::now();
                }
                if let Some(idle) = args.exit_when_idle {
                    let started = last_progress.1 > 0;
                    if started && generated.load(Ordering::Relaxed) && last_progress.0.elapsed() >= Duration::from_secs(idle) {
                        eprintln!("idle for {idle} s: stopping");
                        break;
                    }
                }
            }
        }
    }

    let _ = shutdown_tx.send(true);
    sinks.stop();
    while let Some(ended) = running.join_next().await {
        match ended {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                failure.get_or_insert(e);
            }
            Err(e) => {
                failure.get_or_insert(anyhow::anyhow!("a pipeline task panicked: {e}"));
            }
        }
    }
    if let Err(e) = producer.flush(Duration::from_secs(30)) {
        failure.get_or_insert(anyhow::anyhow!("cannot flush the producer: {e}"));
    }
    for (name, s) in &stats {
        eprintln!("pipeline `{name}` final: {}", s.snapshot().totals());
    }
    // Clients first, then the cluster they talk to.
    drop(producer);
    drop(embedded);
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The module a pipeline starts on: the one last deployed to it (from the
/// module store), else the one its configuration names; and the deployment
/// record that describes it.
pub(crate) fn starting_module(
    engine: &Engine,
    store: &ModuleStore,
    p: &PipelineConfig,
) -> anyhow::Result<(Module, Deployment)> {
    if let Some(deployment) = store.deployment(&p.name)? {
        let bytes = store.get(&deployment.current.digest)?;
        let module = engine.load_bytes(&deployment.current.name, &bytes)?;
        eprintln!(
            "pipeline `{}`: running the module deployed to it, {} sha256:{} (deployed at {} s since the epoch), not {} from the configuration",
            p.name,
            deployment.current.name,
            &deployment.current.digest[..deployment.current.digest.len().min(12)],
            deployment.current.deployed_at,
            p.module.display()
        );
        return Ok((module, deployment));
    }
    let module = engine.load_file(&p.module)?;
    let current = StoredModule {
        digest: module.digest().to_string(),
        name: module.name().to_string(),
        deployed_at: 0,
        rolled_back: None,
    };
    Ok((module, Deployment { current, previous: None }))
}
