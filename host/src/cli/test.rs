//! `monasca-wasm test`: run a guest on a file of messages, one value per
//! line, and print its effects as JSON lines. No Kafka needed. A keyed guest
//! (one that imports `partition-state`) keeps its state across the batches
//! of the run, as the host keeps a partition's; `--tick` ends with a timer
//! call and `--print-state` prints what the state holds at the end. An HTTP
//! API guest gets each line as a request's body, with the request headers
//! `--header` gives (`:method=POST`, `:path=/v2.0/metrics`, `:roles=...`),
//! and its answers print as `reply` objects.
//!
//! With `--host-config host.toml --pipeline NAME` the guest runs as that
//! pipeline's: its module, its `[pipeline.config]`, and its lookups answered
//! from its `[databases]` (a SQLite file is enough), so the notification
//! guest can run on a file of alarms and print the notifications it would
//! send. Nothing is sent, produced or stored.

use super::EngineArgs;
use crate::config::{HostConfig, PipelineConfig};
use crate::effects;
use crate::engine::types::{Message, Origin};
use crate::engine::{Lookups, NoLookups};
use crate::lookups::SqlLookups;
use crate::state::PartitionStore;
use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Arguments of `test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// The guest component [default with --host-config: the pipeline's `module`].
    #[arg(long, short)]
    pub module: Option<PathBuf>,
    /// Messages, one value per line (`-` reads stdin). Empty lines are skipped.
    #[arg(long, short)]
    pub input: PathBuf,
    /// Topic the messages appear to come from [default: the pipeline's first
    /// topic with --host-config, else `test`].
    #[arg(long, short)]
    pub topic: Option<String>,
    /// Partition the messages appear to come from; offsets are line numbers from 0.
    #[arg(long, default_value_t = 0)]
    pub partition: i32,
    /// Guest configuration entry, `key=value` (repeatable); with
    /// --host-config, added to the pipeline's `[pipeline.config]` (and wins).
    #[arg(long = "config", short = 'c', value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub config: Vec<(String, String)>,
    /// Messages per `process` call.
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// Output format: `json` (one object per effect) or `text` (one readable
    /// line per effect). Encoded points print one `store` entry per point.
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
    /// Split each line at the first occurrence of this text: what comes
    /// before is the message key, what follows its value.
    #[arg(long, value_name = "TEXT")]
    pub key_delimiter: Option<String>,
    /// After the input, make one timer call (an empty batch, as the host
    /// makes for an idle partition of a keyed guest).
    #[arg(long)]
    pub tick: bool,
    /// At the end, print the keyed guest's state: one JSON object per key
    /// (`kind` = `state`; key and value as text, invalid UTF-8 replaced).
    #[arg(long)]
    pub print_state: bool,
    /// A header every message carries, `key=value` (repeatable): for an
    /// HTTP API guest, the request's `:method`, `:path`, `:project-id`,
    /// `:roles`, `content-type`...
    #[arg(long = "header", short = 'H', value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub headers: Vec<(String, String)>,
    /// Pipeline name shown in logs and errors [default: `test`]; with
    /// --host-config, the `[[pipeline]]` to run (may be left out when the
    /// file has only one).
    #[arg(long)]
    pub pipeline: Option<String>,
    /// A host configuration (`host.toml`): run the guest of its pipeline
    /// `--pipeline` as the host would, with that pipeline's module (unless
    /// --module), options (`[pipeline.config]` and `config_files`) and
    /// lookups, answered from its `[databases]` (SQLite, MariaDB/MySQL,
    /// PostgreSQL). Notifications print as `notify` objects; nothing is sent,
    /// produced or stored, and Kafka is not contacted.
    #[arg(long, value_name = "FILE")]
    pub host_config: Option<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// How effects are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per effect; its `kind` field names the effect.
    Json,
    /// One line per effect for a person: the kind, the offset, then the gist.
    Text,
}

fn parse_pair(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {raw:?}")),
    }
}

/// Run the guest over the input and print one JSON object per effect.
pub async fn run(args: &TestArgs) -> anyhow::Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let setup = setup(args)?;
    let input = read_input(&args.input)?;
    let topic: std::sync::Arc<str> = setup.topic.as_str().into();
    let messages: Vec<Message> = input
        .split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .map(|(number, line)| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let (key, value) = split_key(line, args.key_delimiter.as_deref());
            Message {
                topic: topic.clone(),
                partition: args.partition,
                offset: number as i64,
                timestamp_ms: None,
                key,
                value: bytes::Bytes::copy_from_slice(value),
                headers: args
                    .headers
                    .iter()
                    .map(|(k, v)| crate::engine::types::Header { key: k.clone(), value: v.as_bytes().to_vec() })
                    .collect(),
                tombstone: false,
            }
        })
        .collect();

    let engine = args.engine.engine()?;
    let module = engine.load_file(&setup.module)?;
    let mut instance = module.instantiate_with(&setup.pipeline, setup.config, setup.lookups).await?;

    let keyed = module.world().is_keyed();
    let mut state = PartitionStore::default();
    let started = Instant::now();
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut batches = 0;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let calls = messages.chunks(args.batch_size).map(Some).chain(args.tick.then_some(None));
    for batch in calls {
        let effects = match batch {
            Some(batch) => instance.process_with(batch, keyed.then_some(&mut state)).await?,
            None => instance.tick(&setup.topic, args.partition, &mut state).await?,
        };
        state.take_changes();
        batches += 1;
        // One line per effect (per point for encoded points), in message order.
        let mut lines: Vec<(Origin, Vec<u8>)> = Vec::with_capacity(effects.len());
        for effect in &effects {
            let described: Vec<(Origin, Vec<u8>)> = match args.format {
                Format::Json => effects::to_json_lines(effect)
                    .into_iter()
                    .map(|(o, v)| serde_json::to_vec(&v).map(|bytes| (o, bytes)))
                    .collect::<Result<_, _>>()?,
                Format::Text => effects::to_text_lines(effect).into_iter().map(|(o, t)| (o, t.into_bytes())).collect(),
            };
            *counts.entry(effects::kind(effect)).or_default() += described.len();
            lines.extend(described);
        }
        for reply in instance.take_replies() {
            let origin = Origin { partition: args.partition, offset: reply.offset };
            let line = match args.format {
                Format::Json => serde_json::to_vec(&effects::reply_json(&reply, origin))?,
                Format::Text => effects::reply_text(&reply, origin).into_bytes(),
            };
            *counts.entry("reply").or_default() += 1;
            lines.push((origin, line));
        }
        lines.sort_by_key(|(o, _)| (o.partition, o.offset));
        for (_, mut line) in lines {
            line.push(b'\n');
            if stdout_closed(out.write_all(&line))? {
                return Ok(());
            }
        }
    }
    if args.print_state {
        for (key, value) in state.entries() {
            let object = serde_json::json!({
                "kind": "state",
                "key": String::from_utf8_lossy(key),
                "value": String::from_utf8_lossy(value),
            });
            let mut line = serde_json::to_vec(&object)?;
            line.push(b'\n');
            if stdout_closed(out.write_all(&line))? {
                return Ok(());
            }
        }
    }
    if stdout_closed(out.flush())? {
        return Ok(());
    }
    let elapsed = started.elapsed();
    let total: usize = counts.values().sum();
    let by_kind: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    eprintln!(
        "monasca-wasm test: {} messages in {batches} batch(es) -> {total} effects ({}) in {:.1} ms; module {} {} (compiled code: {:?})",
        messages.len(),
        if by_kind.is_empty() { "none".to_string() } else { by_kind.join(", ") },
        elapsed.as_secs_f64() * 1000.0,
        module.name(),
        module.short_digest(),
        module.cache_outcome(),
    );
    if keyed {
        eprintln!("monasca-wasm test: partition state holds {} keys, {} bytes", state.len(), state.bytes());
    }
    Ok(())
}

/// What the guest runs as: its module, pipeline, topic, options, lookups.
struct Setup {
    module: PathBuf,
    pipeline: String,
    topic: String,
    config: Vec<(String, String)>,
    lookups: Arc<dyn Lookups>,
}

/// The run's set-up: from the arguments alone, or from a pipeline of
/// `--host-config` (the arguments win).
fn setup(args: &TestArgs) -> anyhow::Result<Setup> {
    let Some(file) = &args.host_config else {
        let Some(module) = args.module.clone() else {
            bail!("give the guest with --module, or a pipeline with --host-config FILE --pipeline NAME");
        };
        return Ok(Setup {
            module,
            pipeline: args.pipeline.clone().unwrap_or_else(|| "test".to_string()),
            topic: args.topic.clone().unwrap_or_else(|| "test".to_string()),
            config: args.config.clone(),
            lookups: Arc::new(NoLookups),
        });
    };
    let host = host_config(file)?;
    let p = choose(&host, args.pipeline.as_deref(), file)?;
    // Only the databases this pipeline's lookups query are opened.
    let used: BTreeMap<String, crate::config::DatabaseConfig> = host
        .databases
        .iter()
        .filter(|(name, _)| p.lookups.values().any(|l| &l.database == *name))
        .map(|(name, database)| (name.clone(), database.clone()))
        .collect();
    let databases = crate::databases::open_all(&used)?;
    let lookups = SqlLookups::new(&p.lookups, &databases)?;
    let mut config = p.config.clone();
    config.extend(args.config.iter().cloned());
    let topic = args.topic.clone().or_else(|| p.topics.first().cloned()).unwrap_or_else(|| {
        if p.http.is_some() {
            crate::http_source::TOPIC.to_string()
        } else {
            "test".to_string()
        }
    });
    Ok(Setup {
        module: args.module.clone().unwrap_or_else(|| p.module.clone()),
        pipeline: p.name.clone(),
        topic,
        config: config.into_iter().collect(),
        lookups: Arc::new(Arc::new(lookups)),
    })
}

/// A host configuration as `run` reads it, except that its modules need not
/// exist (`--module` may stand in) and nothing from the environment is needed.
fn host_config(file: &Path) -> anyhow::Result<HostConfig> {
    let shown = file.display().to_string();
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {shown}"))?;
    let mut host = HostConfig::parse(&text, &shown)?;
    if let Some((_, error)) = host.resolve(file.parent().unwrap_or(Path::new(".")), &shown).into_iter().next() {
        return Err(error.into());
    }
    host.validate(&shown, false)?;
    Ok(host)
}

/// The pipeline named `name`, or the only one.
fn choose<'h>(host: &'h HostConfig, name: Option<&str>, file: &Path) -> anyhow::Result<&'h PipelineConfig> {
    let names = || host.pipelines.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ");
    match name {
        Some(name) => host
            .pipelines
            .iter()
            .find(|p| p.name == name)
            .with_context(|| format!("{} has no pipeline `{name}` (it has {})", file.display(), names())),
        None if host.pipelines.len() == 1 => Ok(&host.pipelines[0]),
        None => bail!("{} has several pipelines ({}): name one with --pipeline", file.display(), names()),
    }
}

/// A line's key and value: split at the first `delimiter` when there is one.
fn split_key<'a>(line: &'a [u8], delimiter: Option<&str>) -> (Option<Vec<u8>>, &'a [u8]) {
    let Some(delimiter) = delimiter.map(str::as_bytes).filter(|d| !d.is_empty()) else { return (None, line) };
    match memchr::memmem::find(line, delimiter) {
        Some(at) => (Some(line[..at].to_vec()), &line[at + delimiter.len()..]),
        None => (None, line),
    }
}

/// A reader that stopped reading (`| head`) ends the command quietly.
fn stdout_closed(result: std::io::Result<()>) -> anyhow::Result<bool> {
    match result {
        Ok(()) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(true),
        Err(e) => Err(e).context("cannot write to stdout"),
    }
}

fn read_input(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).context("cannot read stdin")?;
        return Ok(buf);
    }
    std::fs::read(path).with_context(|| format!("cannot read input {}", path.display()))
}
