//! `monasca-wasm test`: run a guest on a file of messages, one value per
//! line, and print its effects as JSON lines. No Kafka needed. A keyed guest
//! (one that imports `partition-state`) keeps its state across the batches
//! of the run, as the host keeps a partition's; `--tick` ends with a timer
//! call and `--print-state` prints what the state holds at the end. An HTTP
//! API guest gets each line as a request's body, with the request headers
//! `--header` gives (`:method=POST`, `:path=/v2.0/metrics`, `:roles=...`),
//! and its answers print as `reply` objects.

use super::EngineArgs;
use crate::effects;
use crate::engine::types::{Message, Origin};
use crate::state::PartitionStore;
use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// The guest component.
    #[arg(long, short)]
    pub module: PathBuf,
    /// Messages, one value per line (`-` reads stdin). Empty lines are skipped.
    #[arg(long, short)]
    pub input: PathBuf,
    /// Topic the messages appear to come from.
    #[arg(long, short, default_value = "test")]
    pub topic: String,
    /// Partition the messages appear to come from; offsets are line numbers from 0.
    #[arg(long, default_value_t = 0)]
    pub partition: i32,
    /// Guest configuration entry, `key=value` (repeatable).
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
    /// Pipeline name shown in logs and errors.
    #[arg(long, default_value = "test")]
    pub pipeline: String,
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
    let input = read_input(&args.input)?;
    let topic: std::sync::Arc<str> = args.topic.as_str().into();
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
    let module = engine.load_file(&args.module)?;
    let mut instance = module.instantiate(&args.pipeline, args.config.clone()).await?;

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
            None => instance.tick(&args.topic, args.partition, &mut state).await?,
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
