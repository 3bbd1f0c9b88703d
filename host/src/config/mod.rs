//! The service configuration: `monasca-wasm run --config host.toml`.
//!
//! Every field is documented here; `docs/configuration.md` is the reference
//! made from these comments. Unknown keys are errors, and [`HostConfig::load`]
//! names the file, the line and the key of any problem; [`check`] finds every
//! problem of a file at once, each with its line (`monasca-wasm validate`).

pub mod check;
mod delivery;
mod guest_files;
mod http;
mod notifiers;
mod restart;
#[cfg(test)]
mod tests;
mod validate;

pub use check::{KeyPath, Problem};
pub use delivery::{Delivery, StateConfig, TransactionConfig};
pub use http::{HttpSourceConfig, KeystoneConfig, StaticToken};
pub use notifiers::{EmailConfig, JiraConfig, LedgerConfig, NotifiersConfig, SmtpTls};
pub use restart::RestartConfig;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
pub use validate::Invalid;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TOML syntax or a field of the wrong type, with line and key.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What toml says, including the line and the key.
        message: String,
    },
    /// A value that parses but cannot work.
    #[error("{path}: `{key}`: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// The offending key, e.g. `pipeline[0].batch.max_messages`.
        key: String,
        /// Why.
        message: String,
    },
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// How to reach Kafka.
    pub kafka: KafkaConfig,
    /// Engine and sandbox settings shared by all pipelines.
    #[serde(default)]
    pub engine: EngineConfig,
    /// Sinks that `store` effects can name, by name.
    #[serde(default)]
    pub sinks: BTreeMap<String, SinkConfig>,
    /// Databases that lookups (`[pipeline.lookups.<name>]`) query, by name.
    #[serde(default)]
    pub databases: BTreeMap<String, DatabaseConfig>,
    /// The pipelines to run (`[[pipeline]]` tables), at least one.
    #[serde(rename = "pipeline", default)]
    pub pipelines: Vec<PipelineConfig>,
    /// Optional built-in load generator (for the quickstart and benchmarks).
    #[serde(default)]
    pub generator: Option<GeneratorConfig>,
    /// The admin HTTP server (health, Prometheus metrics, pipelines); off
    /// without an `[admin]` table.
    #[serde(default)]
    pub admin: Option<AdminConfig>,
    /// How `notify` effects are delivered (HTTP, email, Jira) and remembered;
    /// without a `[notifiers]` table a guest's notification stops its pipeline.
    #[serde(default)]
    pub notifiers: Option<NotifiersConfig>,
}

/// `[admin]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// `address:port` to listen on; loopback unless you name another address.
    #[serde(default = "default_admin_listen")]
    pub listen: String,
    /// Bearer token that the mutating calls (deploy, rollback) need; the
    /// environment variable `MONASCA_WASM_ADMIN_TOKEN` is used when unset.
    /// Without either, those calls are refused. Never logged.
    #[serde(default)]
    pub token: Option<Secret>,
    /// The largest module upload (or JSON deployment) accepted, MiB; a
    /// larger one is refused (413) as it streams in, never held whole.
    #[serde(default = "default_max_upload_mib")]
    pub max_upload_mib: usize,
}

fn default_max_upload_mib() -> usize {
    64
}

impl AdminConfig {
    /// The token from the file, else from `MONASCA_WASM_ADMIN_TOKEN` (empty means none).
    pub fn token(&self) -> Option<String> {
        let token = match &self.token {
            Some(secret) => secret.0.clone(),
            None => std::env::var("MONASCA_WASM_ADMIN_TOKEN").unwrap_or_default(),
        };
        (!token.is_empty()).then_some(token)
    }
}

fn default_admin_listen() -> String {
    "127.0.0.1:9464".to_string()
}

/// `[kafka]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// `host:port,...` of the brokers, or `"embedded"` for an in-process
    /// mock cluster (development only: nothing survives the process).
    pub bootstrap: String,
    /// librdkafka properties passed through to every client (e.g.
    /// `"security.protocol" = "ssl"`); they override the host's defaults.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Partitions per topic in the embedded cluster.
    #[serde(default = "default_embedded_partitions")]
    pub embedded_partitions: i32,
    /// This host's stable name (e.g. its host name), unique among the hosts
    /// that share a consumer group: it makes each pipeline's consumer a
    /// static member (`group.instance.id` `<instance_id>.<pipeline>`), so a
    /// restarted host takes its partitions back at once, and it names the
    /// pipeline's transactional producer, so a restart aborts its
    /// predecessor's open transaction at once.
    #[serde(default)]
    pub instance_id: Option<String>,
}

fn default_embedded_partitions() -> i32 {
    6
}

impl KafkaConfig {
    /// True for the in-process mock cluster.
    pub fn is_embedded(&self) -> bool {
        self.bootstrap == "embedded"
    }
}

/// `[engine]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Memory cap per guest instance, MiB.
    #[serde(default = "default_memory_limit_mib")]
    pub memory_limit_mib: usize,
    /// Deadline of one guest call, milliseconds.
    #[serde(default = "default_call_deadline_ms")]
    pub call_deadline_ms: u64,
    /// Compiled-module cache directory; empty string disables it.
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// Guest instances live at once, across pipelines.
    #[serde(default = "default_max_instances")]
    pub max_instances: u32,
    /// The module store: modules deployed through the admin API, by digest,
    /// and what each pipeline runs. A pipeline with a deployment there runs
    /// it after a restart instead of its `module`. Relative to the
    /// configuration file; default `monasca-wasm-modules` next to it.
    #[serde(default)]
    pub module_store: Option<PathBuf>,
    /// Most effects a guest may return for one batch (all its calls).
    #[serde(default = "default_max_batch_effects")]
    pub max_batch_effects: usize,
    /// Most bytes (estimated as the host holds them) of a batch's effects, MiB.
    #[serde(default = "default_max_batch_output_mib")]
    pub max_batch_output_mib: usize,
}

fn default_max_batch_effects() -> usize {
    crate::engine::budget::OutputBudget::default().max_effects
}
fn default_max_batch_output_mib() -> usize {
    crate::engine::budget::OutputBudget::default().max_bytes >> 20
}
fn default_memory_limit_mib() -> usize {
    64
}
fn default_call_deadline_ms() -> u64 {
    5000
}
fn default_max_instances() -> u32 {
    64
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            memory_limit_mib: default_memory_limit_mib(),
            call_deadline_ms: default_call_deadline_ms(),
            cache_dir: None,
            max_instances: default_max_instances(),
            module_store: None,
            max_batch_effects: default_max_batch_effects(),
            max_batch_output_mib: default_max_batch_output_mib(),
        }
    }
}

impl EngineConfig {
    /// The engine settings this describes.
    pub fn settings(&self) -> crate::engine::EngineSettings {
        let defaults = crate::engine::EngineSettings::default();
        crate::engine::EngineSettings {
            memory_limit: self.memory_limit_mib * 1024 * 1024,
            call_deadline: Duration::from_millis(self.call_deadline_ms),
            cache_dir: match &self.cache_dir {
                Some(dir) if dir.as_os_str().is_empty() => None,
                Some(dir) => Some(dir.clone()),
                None => defaults.cache_dir.clone(),
            },
            max_instances: self.max_instances,
            output_budget: crate::engine::budget::OutputBudget {
                max_effects: self.max_batch_effects.max(1),
                max_bytes: self.max_batch_output_mib.max(1).saturating_mul(1 << 20),
            },
            ..defaults
        }
    }
}

/// A sink (`[sinks.<name>]`), selected by `type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum SinkConfig {
    /// Counts points and discards them (for development and benchmarks).
    Null,
    /// InfluxDB 1.x over HTTP.
    Influxdb(InfluxDbConfig),
    /// A SQLite file: the embedded default.
    Sqlite(SqliteConfig),
}

/// The sink used when the configuration names none: `tsdb`, a SQLite file
/// next to the configuration.
pub const DEFAULT_SINK: &str = "tsdb";

/// A credential: shown as `***` in logs and debug output.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// `type = "influxdb"`: InfluxDB 1.x `/write` with line protocol.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxDbConfig {
    /// Base URL, e.g. `http://127.0.0.1:8086` (https works too).
    pub url: String,
    /// Database (monasca-persister's `database_name`).
    #[serde(default = "default_database")]
    pub database: String,
    /// One database per tenant, `<database>_<tenant>` (monasca-persister's
    /// `db_per_tenant`).
    #[serde(default)]
    pub db_per_tenant: bool,
    /// Retention, hours, of the default policy given to a database this sink
    /// creates; 0 leaves InfluxDB's (monasca-persister's `default_retention_hours`).
    #[serde(default)]
    pub default_retention_hours: u32,
    /// User name; the environment variable `MONASCA_WASM_INFLUXDB_USER` wins.
    #[serde(default)]
    pub user: Option<String>,
    /// Password; `MONASCA_WASM_INFLUXDB_PASSWORD` wins. Never logged.
    #[serde(default)]
    pub password: Option<Secret>,
    /// Points per HTTP request (monasca-persister's `batch_size`).
    #[serde(default = "default_batch_points")]
    pub batch_points: usize,
    /// Requests in flight at once, across the host.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Timeout of one request, ms.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Compress request bodies with gzip.
    #[serde(default = "default_true")]
    pub gzip: bool,
    /// Longest pause between retries of a failing request, ms (the pause
    /// doubles from 100 ms up to this).
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// PEM file of certificate authorities trusted for an `https` URL, in
    /// addition to the system's (relative to the configuration file).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate for an `https` URL (monasca-persister's
    /// `verify_ssl = false`): encrypted but not authenticated.
    #[serde(default)]
    pub tls_insecure: bool,
}

/// `type = "sqlite"`: points in a SQLite file (see `docs/configuration.md`
/// for the schema).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteConfig {
    /// The file, relative to the configuration file; created when missing.
    pub path: PathBuf,
    /// Value of the `database` column.
    #[serde(default = "default_database")]
    pub database: String,
    /// `database` is `<database>_<tenant>` for each point, as with InfluxDB.
    #[serde(default)]
    pub db_per_tenant: bool,
}

fn default_database() -> String {
    "mon".to_string()
}
fn default_batch_points() -> usize {
    5000
}
fn default_max_in_flight() -> usize {
    4
}
fn default_timeout_ms() -> u64 {
    10_000
}
fn default_true() -> bool {
    true
}
fn default_max_backoff_ms() -> u64 {
    10_000
}

/// One `[[pipeline]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Pipeline name, unique; used in logs, metrics and dead-letter headers.
    pub name: String,
    /// The guest component (`.wasm`), relative to the configuration file.
    pub module: PathBuf,
    /// Topics to consume (none for a pipeline with an HTTP source).
    #[serde(default)]
    pub topics: Vec<String>,
    /// Kafka consumer group (not used with an HTTP source).
    #[serde(default)]
    pub group_id: String,
    /// An HTTP listener as the pipeline's input instead of Kafka topics.
    #[serde(default)]
    pub http: Option<HttpSourceConfig>,
    /// Where `produce` effects without a topic go.
    #[serde(default)]
    pub output_topic: Option<String>,
    /// Where rejected and poison messages go [default: `<name>.dead-letter`].
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
    /// How batches are cut.
    #[serde(default)]
    pub batch: BatchConfig,
    /// Partitions processed at once (guest instances of this pipeline).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// How long a produce may wait for acknowledgement before the pipeline
    /// stops without committing, milliseconds.
    #[serde(default = "default_delivery_timeout_ms")]
    pub delivery_timeout_ms: u64,
    /// Options handed to the guest's `init`.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Options handed to the guest's `init` whose values are the contents of
    /// files (relative to the configuration file, UTF-8, at most 1 MiB each),
    /// e.g. the transform's specs. A key may not be in `config` as well.
    #[serde(default)]
    pub config_files: BTreeMap<String, PathBuf>,
    /// When a newly deployed module is rolled back on its own.
    #[serde(default)]
    pub rollback: RollbackConfig,
    /// The read-only queries the guest may run through its `lookup`
    /// import, by name; a guest can call no other.
    #[serde(default)]
    pub lookups: BTreeMap<String, LookupConfig>,
    /// A directory watched for modules: a `.wasm` file moved (renamed) into
    /// it is deployed to this pipeline like `monasca-wasm deploy` would, with
    /// `<stem>.canary.jsonl` beside it as its canary if present. Relative to
    /// the configuration file.
    #[serde(default)]
    pub watch_dir: Option<PathBuf>,
    /// Hold each message until its Kafka timestamp is this many seconds old
    /// before processing it (0: no hold). For retry and periodic topics: a
    /// notification put on `retry-notifications` is retried `delay_seconds`
    /// later, one on `60-seconds-notifications` sent again a period later.
    #[serde(default)]
    pub delay_seconds: u64,
    /// `at-least-once` (the default) or `exactly-once` (Kafka to Kafka
    /// pipelines: outputs, dead letters, state and offsets in one transaction).
    #[serde(default)]
    pub delivery: Delivery,
    /// The partition state of a keyed guest.
    #[serde(default)]
    pub state: StateConfig,
    /// The pipeline's Kafka transactions (exactly-once, or a keyed guest).
    #[serde(default)]
    pub transaction: TransactionConfig,
    /// What happens when the running pipeline fails.
    #[serde(default)]
    pub restart: RestartConfig,
    /// The topics the guest may produce to (`"*"`: any). Default: the
    /// output and dead-letter topics, the input topics of every pipeline of
    /// the host, and the topics the guest's options name (options whose key
    /// ends in `topic` or `topics`).
    #[serde(default)]
    pub produce_topics: Option<Vec<String>>,
}

/// `[databases.<name>]`: a database that lookups query, selected by `type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DatabaseConfig {
    /// A SQLite file, opened read-only for lookups.
    Sqlite {
        /// The file, relative to the configuration file.
        path: PathBuf,
    },
    /// MariaDB or MySQL (monasca-notification's default `mysql` driver).
    Mysql {
        /// `mysql://user:password@host:port/database`. Never logged; the
        /// environment variable `MONASCA_WASM_DATABASE_<NAME>_URL` (name in
        /// upper case, `-` as `_`) wins.
        url: Secret,
    },
    /// PostgreSQL.
    Postgresql {
        /// `postgresql://user:password@host:port/database`. Never logged;
        /// `MONASCA_WASM_DATABASE_<NAME>_URL` wins.
        url: Secret,
    },
}

/// `[pipeline.lookups.<name>]`: one named, parameterised, read-only query.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupConfig {
    /// A name from `[databases]`.
    pub database: String,
    /// The query: a `SELECT` with positional parameters (`?1`, `?2`, ...)
    /// that the guest's parameters fill, in order.
    pub query: String,
    /// How long an answer is reused for the same parameters, seconds (0: never).
    #[serde(default = "default_lookup_ttl")]
    pub ttl_seconds: u64,
}

fn default_lookup_ttl() -> u64 {
    30
}

/// `[pipeline.rollback]`: a module deployed into the running pipeline is on
/// probation for its first `probation_batches` batches; if it fails
/// `after_failures` batches in a row meanwhile (trap, deadline, memory limit,
/// batch error), the previous module is swapped back in and reprocesses
/// those batches. Failures outside probation are poison messages, isolated
/// and dead-lettered as usual.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackConfig {
    /// Consecutive failed batches that roll a module back; 0 never does.
    #[serde(default = "default_rollback_after")]
    pub after_failures: u32,
    /// Successful batches after which a deployed module is trusted.
    #[serde(default = "default_probation_batches")]
    pub probation_batches: u64,
}

impl Default for RollbackConfig {
    fn default() -> Self {
        RollbackConfig { after_failures: default_rollback_after(), probation_batches: default_probation_batches() }
    }
}

fn default_rollback_after() -> u32 {
    3
}
fn default_probation_batches() -> u64 {
    100
}

fn default_concurrency() -> usize {
    2
}
fn default_delivery_timeout_ms() -> u64 {
    60_000
}

impl PipelineConfig {
    /// The changelog topic of a keyed guest's state.
    pub fn changelog_topic(&self) -> String {
        self.state.changelog_topic.clone().unwrap_or_else(|| format!("{}.changelog", self.name))
    }

    /// The topics the guest may produce to (`None`: any), given the input
    /// topics of every pipeline of the host.
    pub fn produce_allowlist(&self, host_inputs: &[String]) -> Option<std::collections::BTreeSet<String>> {
        if let Some(listed) = &self.produce_topics {
            return (!listed.iter().any(|t| t == "*")).then(|| listed.iter().cloned().collect());
        }
        let mut allowed: std::collections::BTreeSet<String> = host_inputs.iter().cloned().collect();
        allowed.extend(self.topics.iter().cloned());
        allowed.extend(self.output_topic.iter().cloned());
        allowed.insert(self.dead_letter_topic());
        for (key, value) in &self.config {
            if key.ends_with("topic") || key.ends_with("topics") {
                allowed.extend(value.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string));
            }
        }
        Some(allowed)
    }

    /// The dead-letter topic in force.
    pub fn dead_letter_topic(&self) -> String {
        self.dead_letter_topic.clone().unwrap_or_else(|| format!("{}.dead-letter", self.name))
    }
}

/// `[pipeline.batch]`: a batch is cut at whichever limit comes first.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// Messages per batch.
    #[serde(default = "default_max_messages")]
    pub max_messages: usize,
    /// Bytes of message values per batch.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// Longest wait for more messages once none are queued, ms, counted from
    /// the batch's first message. 0 (the default): cut the batch as soon as
    /// nothing more is queued, so batches are small when traffic is light
    /// (low latency) and fill up under load (while the previous batch runs).
    #[serde(default = "default_max_wait_ms")]
    pub max_wait_ms: u64,
    /// Most time, ms, the guest calls that fail may take while poison
    /// messages of one batch are isolated; past it, the batch's messages not
    /// yet proven good are dead-lettered, saying so (0: no limit).
    #[serde(default = "default_isolation_budget_ms")]
    pub isolation_budget_ms: u64,
}

fn default_isolation_budget_ms() -> u64 {
    60_000
}

fn default_max_messages() -> usize {
    1000
}
fn default_max_bytes() -> usize {
    1024 * 1024
}
fn default_max_wait_ms() -> u64 {
    0
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_messages: default_max_messages(),
            max_bytes: default_max_bytes(),
            max_wait_ms: default_max_wait_ms(),
            isolation_budget_ms: default_isolation_budget_ms(),
        }
    }
}

/// `[generator]`: produce synthetic Monasca metrics while the host runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorConfig {
    /// Topic to produce to.
    pub topic: String,
    /// Messages to produce in all.
    pub count: u64,
    /// Messages per second (0: as fast as possible).
    #[serde(default)]
    pub rate: u64,
}

impl HostConfig {
    /// Read, parse and check a configuration file. Module paths are made
    /// relative to the file's directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: shown.clone(), source })?;
        let mut config = Self::parse(&text, &shown)?;
        let base = path.parent().unwrap_or(Path::new("."));
        if let Some((_, error)) = config.resolve(base, &shown).into_iter().next() {
            return Err(error);
        }
        config.validate(&shown, true)?;
        Ok(config)
    }

    /// Make the file's relative paths relative to `base` (its directory),
    /// read `[pipeline.config_files]` into the guests' options, and add the
    /// default sink when none is configured. What could not be read, each
    /// with the key that names it (`origin` names the file in the errors).
    pub fn resolve(&mut self, base: &Path, origin: &str) -> Vec<(KeyPath, ConfigError)> {
        let mut problems = Vec::new();
        for (i, pipeline) in self.pipelines.iter_mut().enumerate() {
            if pipeline.module.is_relative() {
                pipeline.module = base.join(&pipeline.module);
            }
            if let Some(dir) = pipeline.watch_dir.as_mut().filter(|d| d.is_relative()) {
                *dir = base.join(&*dir);
            }
            for (key, error) in guest_files::read_into_config(pipeline, base, origin) {
                problems.push((KeyPath::top("pipeline").at(i).child("config_files").child(&key), error));
            }
        }
        for database in self.databases.values_mut() {
            if let DatabaseConfig::Sqlite { path } = database {
                if path.is_relative() {
                    *path = base.join(&*path);
                }
            }
        }
        if let Some(notifiers) = self.notifiers.as_mut() {
            notifiers.ledger.path = Some(match notifiers.ledger.path.take() {
                Some(file) if file.is_relative() => base.join(file),
                Some(file) => file,
                None => base.join("monasca-wasm-ledger.sqlite"),
            });
            if let Some(ca) = notifiers.ca_file.as_mut().filter(|f| f.is_relative()) {
                *ca = base.join(&*ca);
            }
        }
        for sink in self.sinks.values_mut() {
            match sink {
                SinkConfig::Sqlite(sqlite) if sqlite.path.is_relative() => sqlite.path = base.join(&sqlite.path),
                SinkConfig::Influxdb(influx) => {
                    if let Some(ca) = influx.ca_file.as_mut().filter(|f| f.is_relative()) {
                        *ca = base.join(&*ca);
                    }
                }
                _ => {}
            }
        }
        self.engine.module_store = Some(match self.engine.module_store.take() {
            Some(dir) if dir.is_relative() => base.join(dir),
            Some(dir) => dir,
            None => base.join("monasca-wasm-modules"),
        });
        if self.sinks.is_empty() {
            let path = base.join("monasca-wasm.sqlite");
            let sqlite = SqliteConfig { path, database: default_database(), db_per_tenant: false };
            self.sinks.insert(DEFAULT_SINK.to_string(), SinkConfig::Sqlite(sqlite));
        }
        problems
    }

    /// Parse a configuration from text (`origin` names it in errors).
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse { path: origin.to_string(), message: e.to_string() })
    }
}
