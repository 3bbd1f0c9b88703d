//! `monasca-wasm validate --config host.toml`: every problem of a
//! configuration at once, rather than `run` meeting them one at a time.
//!
//! First the file (`config::check`): TOML syntax, unknown keys, values of
//! the wrong type, values that cannot work, files it names; each problem
//! with its line. Then, unless `--offline`, what `run` needs when it starts,
//! each wait bounded by `--timeout-ms`: every `[databases]` entry reached and
//! every lookup's query prepared by its database; every pipeline's module
//! loaded as `run` loads it (world, version, sandbox links) and its `init`
//! run with the pipeline's options; the Kafka brokers reached, the clients'
//! settings accepted, the consumed and output topics present, the
//! dead-letter (and a keyed guest's changelog) topics present or allowed to
//! be created; every sink reached (InfluxDB's `/ping`, a SQLite file opened
//! for writing, or its directory writable). Nothing the file names is
//! created or changed (a SQLite sink's directory is tried with a file made
//! and removed at once; compiled modules go to the module cache, as for
//! every command that loads modules).
//!
//! One line per problem on stdout, `host.toml:LINE: [section] key: message`;
//! then `ok: ...` and exit code 0, or an error with the count.

use super::run::starting_module;
use crate::config::check::{check_file, Checked, Locator};
use crate::config::{DatabaseConfig, HostConfig, InfluxDbConfig, KeyPath, Problem, SinkConfig};
use crate::databases::{Database, Dialect};
use crate::deploy::store::ModuleStore;
use crate::engine::{Engine, Lookups, NoLookups};
use crate::kafka;
use crate::lookups::SqlLookups;
use crate::notify::Notifiers;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::BaseProducer;
use rdkafka::types::RDKafkaErrorCode;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The configuration file.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Check the file only: load no module, contact nothing.
    #[arg(long)]
    pub offline: bool,
    /// Longest wait of each check that waits (brokers, a topic creation, a
    /// database, a sink, a guest's `init`), in milliseconds.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub timeout_ms: u64,
}

/// The problems found so far, placed by the file's lines.
struct Report {
    locator: Locator,
    problems: Vec<Problem>,
}

impl Report {
    fn at(&mut self, path: KeyPath, message: impl Into<String>) {
        let problem = self.locator.problem(path, message);
        self.problems.push(problem);
    }
}

fn pipeline_at(i: usize) -> KeyPath {
    KeyPath::top("pipeline").at(i)
}

/// Check the configuration; an error (with the count) when anything is wrong.
pub async fn run(args: &ValidateArgs) -> anyhow::Result<()> {
    let origin = args.config.display().to_string();
    let timeout = Duration::from_millis(args.timeout_ms.max(1));
    let Checked { config, problems, locator, .. } = check_file(&args.config, true);
    let mut report = Report { locator, problems };
    let mut reached = String::new();
    if let Some(config) = &config {
        check_notifiers(config, &mut report);
        if args.offline {
            reached = " (offline: modules, Kafka, databases and sinks not checked)".to_string();
        } else {
            let databases = check_databases(config, timeout, &mut report).await;
            let keyed = check_modules(config, &databases, timeout, &mut report).await;
            let topics = check_kafka(config, &keyed, timeout, &mut report).await;
            check_sinks(config, timeout, &mut report).await;
            reached = match topics {
                Some(n) => format!("; modules loaded, {n} topics present or creatable, databases and sinks reached"),
                None => "; modules loaded, databases and sinks reached (Kafka embedded)".to_string(),
            };
        }
    }
    let mut out = std::io::stdout().lock();
    for problem in &report.problems {
        writeln!(out, "{}", problem.render(&origin))?;
    }
    match (&config, report.problems.len()) {
        (Some(config), 0) => {
            let lookups: usize = config.pipelines.iter().map(|p| p.lookups.len()).sum();
            writeln!(
                out,
                "ok: {}, {}, {}, {}{reached}",
                counted(config.pipelines.len(), "pipeline"),
                counted(config.sinks.len(), "sink"),
                counted(config.databases.len(), "database"),
                counted(lookups, "lookup"),
            )?;
            Ok(())
        }
        (_, 0) => anyhow::bail!("{origin}: cannot be checked"),
        (_, 1) => anyhow::bail!("1 problem in {origin}"),
        (_, n) => anyhow::bail!("{n} problems in {origin}"),
    }
}

/// `1 sink`, `2 sinks`.
fn counted(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// Build the notifiers as `run` does, but on no file and no connection: the
/// ledger's database is checked with the other databases.
fn check_notifiers(config: &HostConfig, report: &mut Report) {
    let Some(notifiers) = &config.notifiers else { return };
    let mut trial = notifiers.clone();
    let in_sqlite = match &trial.ledger.database {
        Some(name) => matches!(config.databases.get(name), Some(DatabaseConfig::Sqlite { .. })),
        None => true,
    };
    if trial.ledger.database.is_none() {
        if let Some(file) = notifiers.ledger.path.as_deref().filter(|f| !f.exists()) {
            if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty() && !d.is_dir()) {
                let path = KeyPath::top("notifiers").child("ledger").child("path");
                report.at(path, format!("the ledger's directory {} does not exist", dir.display()));
            }
        }
    }
    if in_sqlite {
        trial.ledger.database = None;
        trial.ledger.path = Some(PathBuf::from(":memory:"));
    }
    if let Err(e) = Notifiers::new(&trial, &config.databases) {
        report.at(KeyPath::top("notifiers"), e.to_string());
    }
}

/// Open and reach every database, then prepare every lookup's query on its
/// database. The databases that answered, by name.
async fn check_databases(
    config: &HostConfig,
    timeout: Duration,
    report: &mut Report,
) -> BTreeMap<String, Arc<Database>> {
    let mut open = BTreeMap::new();
    for (name, database) in &config.databases {
        let at = KeyPath::top("databases").child(name);
        let at = match database {
            DatabaseConfig::Sqlite { .. } => at.child("path"),
            DatabaseConfig::Mysql { .. } | DatabaseConfig::Postgresql { .. } => at.child("url"),
        };
        let opened = match Database::open(name, database, false) {
            Ok(opened) => opened,
            Err(e) => {
                report.at(at, e.to_string());
                continue;
            }
        };
        let probe = match opened.dialect() {
            Dialect::Sqlite => "SELECT count(*) FROM sqlite_master",
            Dialect::Mysql | Dialect::Postgresql => "SELECT 1",
        };
        match tokio::time::timeout(timeout, opened.query(probe, &[])).await {
            Ok(Ok(_)) => {
                open.insert(name.clone(), Arc::new(opened));
            }
            Ok(Err(e)) => report.at(at, e.to_string()),
            Err(_) => report.at(at, format!("database `{name}`: no answer within {} ms", timeout.as_millis())),
        }
    }
    for (i, p) in config.pipelines.iter().enumerate() {
        for (name, lookup) in &p.lookups {
            let Some(database) = open.get(&lookup.database) else { continue };
            let at = pipeline_at(i).child("lookups").child(name).child("query");
            match tokio::time::timeout(timeout, database.prepare(&lookup.query)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => report.at(at, e.to_string()),
                Err(_) => report.at(at, format!("no answer within {} ms", timeout.as_millis())),
            }
        }
    }
    open
}

/// Load every pipeline's module as `run` does (the one deployed to it from
/// the module store, else its `module`) and start an instance with the
/// pipeline's options and lookups. Whether each guest is keyed (`None`:
/// not loaded).
async fn check_modules(
    config: &HostConfig,
    databases: &BTreeMap<String, Arc<Database>>,
    timeout: Duration,
    report: &mut Report,
) -> Vec<Option<bool>> {
    let engine = match Engine::new(config.engine.settings()) {
        Ok(engine) => engine,
        Err(e) => {
            report.at(KeyPath::top("engine"), e.to_string());
            return vec![None; config.pipelines.len()];
        }
    };
    let store =
        ModuleStore::new(config.engine.module_store.clone().unwrap_or_else(|| PathBuf::from("monasca-wasm-modules")));
    let mut keyed = Vec::with_capacity(config.pipelines.len());
    for (i, p) in config.pipelines.iter().enumerate() {
        let at = pipeline_at(i);
        // A missing file is already a problem of the file.
        if !p.module.is_file() {
            keyed.push(None);
            continue;
        }
        let module = match starting_module(&engine, &store, p) {
            Ok((module, _)) => module,
            Err(e) => {
                report.at(at.child("module"), format!("{e:#}"));
                keyed.push(None);
                continue;
            }
        };
        let lookups: Arc<dyn Lookups> = match SqlLookups::new(&p.lookups, databases) {
            Ok(lookups) => Arc::new(Arc::new(lookups)),
            // A lookup's database did not answer: that is reported already.
            Err(_) => Arc::new(NoLookups),
        };
        let options: Vec<(String, String)> = p.config.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        match tokio::time::timeout(timeout, module.instantiate_with(&p.name, options, lookups)).await {
            Ok(Ok(_instance)) => {}
            Ok(Err(e)) => {
                report.at(at.child("config"), format!("module {}: the guest cannot start: {e}", module.name()))
            }
            Err(_) => report.at(
                at.child("module"),
                format!("module {}: `init` did not finish within {} ms", module.name(), timeout.as_millis()),
            ),
        }
        keyed.push(Some(module.world().is_keyed()));
    }
    keyed
}

/// Reach the brokers and check every pipeline's topics. How many topics
/// were checked (`None`: the embedded cluster, made at start).
async fn check_kafka(
    config: &HostConfig,
    keyed: &[Option<bool>],
    timeout: Duration,
    report: &mut Report,
) -> Option<usize> {
    if config.kafka.is_embedded() {
        return None;
    }
    let bootstrap = config.kafka.bootstrap.clone();
    let properties = KeyPath::top("kafka").child("properties");
    // The clients `run` makes accept their settings.
    if let Err(e) = kafka::producer_config(&config.kafka, &bootstrap).create::<BaseProducer>() {
        report.at(properties.clone(), format!("the producer refuses the settings: {e}"));
    }
    let group = config.pipelines.iter().map(|p| p.group_id.as_str()).find(|g| !g.is_empty()).unwrap_or("validate");
    if let Err(e) = kafka::consumer_config(&config.kafka, &bootstrap, group).create::<BaseConsumer>() {
        report.at(properties.clone(), format!("a consumer refuses the settings: {e}"));
    }
    let client = kafka::client_config(&config.kafka, &bootstrap);
    let probe = client.clone();
    let fetched = tokio::task::spawn_blocking(move || -> Result<HashMap<String, usize>, String> {
        let consumer: BaseConsumer = probe.create().map_err(|e| e.to_string())?;
        let metadata = consumer.fetch_metadata(None, timeout).map_err(|e| e.to_string())?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| (t.name().to_string(), t.partitions().len()))
            .collect())
    })
    .await;
    let present = match fetched {
        Ok(Ok(present)) => present,
        Ok(Err(e)) => {
            report
                .at(KeyPath::top("kafka").child("bootstrap"), format!("cannot reach the brokers at {bootstrap}: {e}"));
            return Some(0);
        }
        Err(e) => {
            report.at(KeyPath::top("kafka").child("bootstrap"), format!("cannot read the brokers' metadata: {e}"));
            return Some(0);
        }
    };
    let admin: Option<AdminClient<DefaultClientContext>> = client.create().ok();
    let mut checked = 0;
    for (i, p) in config.pipelines.iter().enumerate() {
        let at = pipeline_at(i);
        let mut widest = 1;
        for topic in &p.topics {
            checked += 1;
            match present.get(topic) {
                Some(partitions) => widest = widest.max(*partitions),
                None => report.at(at.child("topics"), format!("topic `{topic}` does not exist")),
            }
        }
        let dead_letter = p.dead_letter_topic();
        checked += 1;
        if !present.contains_key(&dead_letter) {
            if let Err(reason) = creatable(admin.as_ref(), &dead_letter, widest, timeout).await {
                report.at(
                    at.child("dead_letter_topic"),
                    format!(
                        "dead-letter topic `{dead_letter}` does not exist, and this host may not create it: {reason}"
                    ),
                );
            }
        }
        if let Some(output) = &p.output_topic {
            checked += 1;
            if !present.contains_key(output) {
                report.at(
                    at.child("output_topic"),
                    format!("topic `{output}` does not exist (`run` does not create it)"),
                );
            }
        }
        if keyed.get(i).copied().flatten() == Some(true) {
            let changelog = p.changelog_topic();
            let at = at.child("state").child("changelog_topic");
            checked += 1;
            match present.get(&changelog) {
                Some(partitions) if *partitions >= widest => {}
                Some(partitions) => report.at(
                    at,
                    format!(
                        "changelog topic `{changelog}` has {partitions} partitions, fewer than an input's {widest}"
                    ),
                ),
                None => {
                    if let Err(reason) = creatable(admin.as_ref(), &changelog, widest, timeout).await {
                        report.at(
                            at,
                            format!(
                                "changelog topic `{changelog}` does not exist, and this host may not create it: {reason}"
                            ),
                        );
                    }
                }
            }
        }
    }
    Some(checked)
}

/// Whether the brokers would create `topic` as `run` asks them to (a
/// validate-only request: nothing is created).
async fn creatable(
    admin: Option<&AdminClient<DefaultClientContext>>,
    topic: &str,
    partitions: usize,
    timeout: Duration,
) -> Result<(), String> {
    let Some(admin) = admin else { return Err("cannot make an admin client".to_string()) };
    let options =
        AdminOptions::new().validate_only(true).request_timeout(Some(timeout)).operation_timeout(Some(timeout));
    let partitions = i32::try_from(partitions).unwrap_or(i32::MAX);
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1));
    match tokio::time::timeout(timeout + Duration::from_secs(1), admin.create_topics([&new], &options)).await {
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(results)) => match results.into_iter().next() {
            Some(Ok(_)) | None | Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => Ok(()),
            Some(Err((_, code))) => Err(code.to_string()),
        },
    }
}

/// Reach every sink.
async fn check_sinks(config: &HostConfig, timeout: Duration, report: &mut Report) {
    for (name, sink) in &config.sinks {
        let at = KeyPath::top("sinks").child(name);
        match sink {
            SinkConfig::Null => {}
            SinkConfig::Influxdb(influx) => {
                if let Err((key, message)) = reach_influxdb(influx, timeout).await {
                    report.at(at.child(key), message);
                }
            }
            SinkConfig::Sqlite(sqlite) => {
                if let Err(message) = sqlite_writable(&sqlite.path) {
                    report.at(at.child("path"), message);
                }
            }
        }
    }
}

/// InfluxDB answers `/ping`; with credentials, it accepts them for a read.
async fn reach_influxdb(config: &InfluxDbConfig, timeout: Duration) -> Result<(), (&'static str, String)> {
    // The sink's own client: its TLS settings and credentials.
    let client = crate::sinks::influxdb::client::Client::new(config)
        .map_err(|e| (if e.starts_with("ca_file") { "ca_file" } else { "url" }, e))?;
    let mut builder = reqwest::Client::builder().timeout(timeout).danger_accept_invalid_certs(config.tls_insecure);
    if let Some(file) = &config.ca_file {
        let pem = std::fs::read(file).map_err(|e| ("ca_file", format!("{}: {e}", file.display())))?;
        let certificates =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ("ca_file", format!("{}: {e}", file.display())))?;
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    let http = builder.build().map_err(|e| ("url", format!("HTTP client: {e}")))?;
    let base = client.base().to_string();
    let response = http.get(format!("{base}/ping")).send().await.map_err(|e| {
        ("url", format!("cannot reach InfluxDB at {base}: {}", crate::sinks::influxdb::client::describe(&e)))
    })?;
    if !response.status().is_success() {
        return Err(("url", format!("InfluxDB at {base} answers /ping with {}", response.status())));
    }
    let user = config.user.is_some() || std::env::var_os("MONASCA_WASM_INFLUXDB_USER").is_some();
    if user {
        match tokio::time::timeout(timeout, client.query("SHOW DATABASES")).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(("user", format!("InfluxDB at {base} refuses the credentials for a read: {e}"))),
            Err(_) => return Err(("url", format!("InfluxDB at {base}: no answer within {} ms", timeout.as_millis()))),
        }
    }
    Ok(())
}

/// A SQLite sink's file opens for writing; one that does not exist yet can
/// be made (`run` makes it, and its directories).
fn sqlite_writable(path: &Path) -> Result<(), String> {
    use rusqlite::OpenFlags;
    if path.exists() {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = rusqlite::Connection::open_with_flags(path, flags)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        connection
            .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get::<_, i64>(0))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if connection.is_readonly("main").unwrap_or(false) {
            return Err(format!("{} is read-only", path.display()));
        }
        return Ok(());
    }
    let mut dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    while !dir.exists() {
        match dir.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(up) => dir = up,
            None => {
                dir = Path::new(".");
                break;
            }
        }
    }
    if !dir.is_dir() {
        return Err(format!("cannot create {}: {} is not a directory", path.display(), dir.display()));
    }
    // Try: a file made and removed at once.
    let trial = dir.join(format!(".monasca-wasm-validate-{}", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&trial) {
        Ok(_) => {
            let _ = std::fs::remove_file(&trial);
            Ok(())
        }
        Err(e) => Err(format!("cannot create {}: cannot write in {} ({e})", path.display(), dir.display())),
    }
}
