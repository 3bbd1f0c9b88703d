//! `[pipeline.http]`: a pipeline whose input is an HTTP listener instead of
//! Kafka topics (the log, events and metrics APIs), with its limits and the
//! credentials it accepts.

use serde::Deserialize;

/// `[pipeline.http]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSourceConfig {
    /// Address to listen on, e.g. `127.0.0.1:8070` (port 0: any free port).
    pub listen: String,
    /// The largest request body read, bytes; a larger one is answered 413
    /// by the host before the guest sees it. The guest may apply a smaller
    /// limit of its own (as the originals do).
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// How long a client may take to send its headers (and, on a kept-alive
    /// connection, to start its next request), milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub header_timeout_ms: u64,
    /// How long a client may take to send its body, milliseconds (408 after).
    #[serde(default = "default_timeout_ms")]
    pub body_timeout_ms: u64,
    /// Open connections at most; more wait to be accepted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Requests waiting for the guest at most; more are answered 503 with
    /// `Retry-After` at once.
    #[serde(default = "default_max_queued")]
    pub max_queued_requests: usize,
    /// Requests handed to the guest together at most (the requests that
    /// arrived while the previous batch ran).
    #[serde(default = "default_max_batch_requests")]
    pub max_batch_requests: usize,
    /// The most a request may wait for its records' acknowledgements,
    /// milliseconds; after it the client gets 503.
    #[serde(default = "default_ack_timeout_ms")]
    pub ack_timeout_ms: u64,
    /// Seconds a 503 tells the client to wait (`Retry-After`).
    #[serde(default = "default_retry_after_s")]
    pub retry_after_s: u64,
    /// Static tokens (`X-Auth-Token`), each mapped to a project and roles:
    /// for the embedded mode, tests, and sites without Keystone.
    #[serde(default)]
    pub tokens: Vec<StaticToken>,
    /// Tokens validated by Keystone (checked after the static ones).
    #[serde(default)]
    pub keystone: Option<KeystoneConfig>,
}

/// `[pipeline.http.keystone]`: validate `X-Auth-Token` with Keystone's
/// `GET /v3/auth/tokens`, as keystonemiddleware does, the host logging in
/// with its own service user.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeystoneConfig {
    /// Keystone's base URL, e.g. `http://keystone:5000` (`/v3/auth/tokens`
    /// is appended).
    pub url: String,
    /// The service user's name...
    pub username: String,
    /// ...its password, written here...
    #[serde(default)]
    pub password: Option<String>,
    /// ...or read from this environment variable at start-up.
    #[serde(default)]
    pub password_env: Option<String>,
    /// The service user's domain.
    #[serde(default = "default_domain")]
    pub user_domain_name: String,
    /// The project the service user's token is scoped to.
    pub project_name: String,
    /// That project's domain.
    #[serde(default = "default_domain")]
    pub project_domain_name: String,
    /// The longest a validated token is trusted without asking Keystone
    /// again, seconds (never past the token's own expiry).
    #[serde(default = "default_cache_ttl_s")]
    pub cache_ttl_s: u64,
    /// Tokens remembered at most (valid and refused together).
    #[serde(default = "default_cache_entries")]
    pub cache_entries: usize,
    /// How long a Keystone request may take, milliseconds (503 after).
    #[serde(default = "default_keystone_timeout_ms")]
    pub timeout_ms: u64,
}

/// Never print a password.
impl std::fmt::Debug for KeystoneConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeystoneConfig")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("password_env", &self.password_env)
            .field("project_name", &self.project_name)
            .field("cache_ttl_s", &self.cache_ttl_s)
            .field("cache_entries", &self.cache_entries)
            .finish()
    }
}

impl KeystoneConfig {
    /// The service user's password (from the file or its variable).
    pub fn password(&self) -> Option<String> {
        match (&self.password, &self.password_env) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(var)) => std::env::var(var).ok(),
            (None, None) => None,
        }
    }

    fn problem(&self, check_env: bool) -> Option<(&'static str, String)> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Some(("keystone.url", "must start with http:// or https://".into()));
        }
        if self.password.is_some() == self.password_env.is_some() {
            return Some(("keystone.password", "give exactly one of `password` and `password_env`".into()));
        }
        if check_env && self.password().is_none() {
            let var = self.password_env.as_deref().unwrap_or_default();
            return Some(("keystone.password_env", format!("the environment variable `{var}` is not set")));
        }
        if self.cache_entries == 0 {
            return Some(("keystone.cache_entries", "must be at least 1".into()));
        }
        if self.timeout_ms == 0 {
            return Some(("keystone.timeout_ms", "must be at least 1".into()));
        }
        None
    }
}

/// One `[[pipeline.http.tokens]]` entry.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticToken {
    /// The token, written in the file...
    #[serde(default)]
    pub token: Option<String>,
    /// ...or read from this environment variable at start-up.
    #[serde(default)]
    pub token_env: Option<String>,
    /// The project (tenant) the token acts for.
    pub project_id: String,
    /// Its roles, e.g. `["monasca-user"]`, `["monasca-agent"]`, `["admin"]`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Its user id.
    #[serde(default)]
    pub user_id: Option<String>,
}

/// Never print a token.
impl std::fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticToken")
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .field("token_env", &self.token_env)
            .field("project_id", &self.project_id)
            .field("roles", &self.roles)
            .field("user_id", &self.user_id)
            .finish()
    }
}

impl StaticToken {
    /// The token's value (from the file or its environment variable).
    pub fn value(&self) -> Option<String> {
        match (&self.token, &self.token_env) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(var)) => std::env::var(var).ok(),
            (None, None) => None,
        }
    }
}

impl HttpSourceConfig {
    /// What is wrong with it, as (key under `http`, message). Tokens read
    /// from the environment are checked only when `check_env` (at start-up,
    /// not when a file is only parsed).
    pub fn problem(&self, check_env: bool) -> Option<(&'static str, String)> {
        if self.listen.trim().is_empty() {
            return Some(("listen", "must name an address such as 127.0.0.1:8070".into()));
        }
        let zero = [
            ("max_body_bytes", self.max_body_bytes as u64),
            ("header_timeout_ms", self.header_timeout_ms),
            ("body_timeout_ms", self.body_timeout_ms),
            ("max_connections", self.max_connections as u64),
            ("max_queued_requests", self.max_queued_requests as u64),
            ("max_batch_requests", self.max_batch_requests as u64),
            ("ack_timeout_ms", self.ack_timeout_ms),
        ];
        if let Some((key, _)) = zero.iter().find(|(_, v)| *v == 0) {
            return Some((key, "must be at least 1".into()));
        }
        if let Some(problem) = self.keystone.as_ref().and_then(|k| k.problem(check_env)) {
            return Some(problem);
        }
        if self.tokens.is_empty() && self.keystone.is_none() {
            return Some((
                "tokens",
                "give static tokens or [pipeline.http.keystone]: every request is authenticated".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, t) in self.tokens.iter().enumerate() {
            if t.token.is_some() == t.token_env.is_some() {
                return Some(("tokens", format!("entry {i}: give exactly one of `token` and `token_env`")));
            }
            if t.project_id.is_empty() {
                return Some(("tokens", format!("entry {i}: project_id must not be empty")));
            }
            if t.token.is_none() && !check_env {
                continue;
            }
            match t.value() {
                Some(v) if !seen.insert(v.clone()) => {
                    return Some(("tokens", format!("entry {i}: the same token as an earlier entry")))
                }
                Some(v) if v.len() >= 16 => {}
                Some(_) => return Some(("tokens", format!("entry {i}: a token must be at least 16 characters"))),
                None => {
                    let var = t.token_env.as_deref().unwrap_or_default();
                    return Some(("tokens", format!("entry {i}: the environment variable `{var}` is not set")));
                }
            }
        }
        None
    }
}

fn default_max_body_bytes() -> usize {
    2 << 20
}
fn default_timeout_ms() -> u64 {
    10_000
}
fn default_max_connections() -> usize {
    1024
}
fn default_max_queued() -> usize {
    4096
}
fn default_max_batch_requests() -> usize {
    256
}
fn default_ack_timeout_ms() -> u64 {
    30_000
}
fn default_retry_after_s() -> u64 {
    5
}
fn default_domain() -> String {
    "Default".into()
}
fn default_cache_ttl_s() -> u64 {
    300
}
fn default_cache_entries() -> usize {
    10_000
}
fn default_keystone_timeout_ms() -> u64 {
    5_000
}
