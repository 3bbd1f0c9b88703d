//! `monasca-wasm deploy`, `rollback` and `status`: the admin API of a
//! running host from the command line.
//!
//! Exit codes: 0 done; 1 the host refused (bad module, failed canary, no
//! such pipeline, wrong token: the message says which); 2 the host could not
//! be reached or failed itself.

use anyhow::Context;
use base64::Engine as _;
use std::path::PathBuf;
use std::time::Duration;

/// Where the admin API is, and the token for mutating calls.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    /// Base URL of the host's admin API [default: from `--config`'s
    /// `[admin] listen`, else http://127.0.0.1:9464].
    #[arg(long, env = "MONASCA_WASM_ADMIN")]
    pub admin: Option<String>,
    /// Bearer token for deploy and rollback [default: `--config`'s `[admin]
    /// token`].
    #[arg(long, env = "MONASCA_WASM_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The host's configuration file, to take the admin address and token
    /// from (only its `[admin]` table is read).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
}

/// The admin API's base URL and token, from the options, else the host's
/// configuration file, else the defaults.
#[derive(Debug, Clone)]
struct Target {
    base: String,
    token: Option<String>,
}

impl AdminArgs {
    fn target(&self) -> anyhow::Result<Target> {
        let from_file = match &self.config {
            Some(path) => Some(admin_table(path)?),
            None => None,
        };
        let base = self
            .admin
            .clone()
            .or_else(|| from_file.as_ref().map(|a| format!("http://{}", a.listen)))
            .unwrap_or_else(|| "http://127.0.0.1:9464".to_string());
        let token = self.token.clone().or_else(|| from_file.as_ref().and_then(|a| a.token()));
        Ok(Target { base: base.trim_end_matches('/').to_string(), token })
    }
}

/// The `[admin]` table of a host configuration file (defaults when absent).
fn admin_table(path: &std::path::Path) -> anyhow::Result<crate::config::AdminConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let table: toml::Table = toml::from_str(&text).with_context(|| format!("{} is not TOML", path.display()))?;
    match table.get("admin") {
        Some(admin) => admin.clone().try_into().with_context(|| format!("{}: bad [admin] table", path.display())),
        None => anyhow::bail!("{} has no [admin] table: its host serves no admin API", path.display()),
    }
}

/// Arguments of `deploy`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// The pipeline to deploy to.
    #[arg(long)]
    pub pipeline: String,
    /// The component (`.wasm`).
    #[arg(long)]
    pub module: PathBuf,
    /// Run the module on this fixture (one message value per line) before
    /// swapping it in; the deployment is refused if it fails or traps.
    #[arg(long)]
    pub canary: Option<PathBuf>,
    /// Name to show for the module [default: the file's stem].
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// Arguments of `rollback`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The pipeline to roll back.
    #[arg(long)]
    pub pipeline: String,
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// Arguments of `status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// The host could not be reached, or failed (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unreachable(pub String);

/// The host refused the request (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().timeout(Duration::from_secs(300)).build()?)
}

fn url(target: &Target, path: &str) -> String {
    format!("{}{path}", target.base)
}

/// Send a request; a JSON answer on success, typed errors otherwise.
async fn send(request: reqwest::RequestBuilder, target: &Target) -> anyhow::Result<serde_json::Value> {
    let response =
        request.send().await.map_err(|e| Unreachable(format!("cannot reach the admin API at {}: {e}", target.base)))?;
    let status = response.status();
    let bytes = response.bytes().await.unwrap_or_default();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let reason = body.get("error").and_then(|e| e.as_str()).unwrap_or("no reason given");
    let reason = crate::text::escape_capped(reason, 4096);
    if status.is_client_error() {
        Err(Refused(format!("refused ({status}): {reason}")).into())
    } else {
        Err(Unreachable(format!("the host failed ({status}): {reason}")).into())
    }
}

fn describe(module: &serde_json::Value) -> String {
    let name = module.get("name").and_then(|v| v.as_str()).unwrap_or("?");
    let digest = module.get("digest").and_then(|v| v.as_str()).unwrap_or("?");
    format!("{name} {}", &digest[..digest.len().min(19)])
}

/// `monasca-wasm deploy`.
pub async fn deploy(args: &DeployArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.module).with_context(|| format!("cannot read {}", args.module.display()))?;
    let canary = match &args.canary {
        Some(path) => {
            Some(std::fs::read_to_string(path).with_context(|| format!("cannot read the canary {}", path.display()))?)
        }
        None => None,
    };
    let name = args.name.clone().unwrap_or_else(|| {
        args.module.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "module".into())
    });
    let body = serde_json::json!({
        "name": name,
        "module": base64::engine::general_purpose::STANDARD.encode(&bytes),
        "canary": canary,
    });
    let target = args.admin.target()?;
    let request = client()?
        .put(url(&target, &format!("/v1/pipelines/{}/module", args.pipeline)))
        .bearer_auth(target.token.as_deref().unwrap_or_default())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(&body)?);
    let answer = send(request, &target).await?;
    let previous = answer.get("previous_module").filter(|p| !p.is_null()).map(describe);
    println!(
        "deployed {} to pipeline `{}`{}{}",
        describe(&answer["module"]),
        args.pipeline,
        previous.map(|p| format!(" (was {p})")).unwrap_or_default(),
        if args.canary.is_some() { "; canary passed" } else { "" }
    );
    Ok(())
}

/// `monasca-wasm rollback`.
pub async fn rollback(args: &RollbackArgs) -> anyhow::Result<()> {
    let target = args.admin.target()?;
    let request = client()?
        .post(url(&target, &format!("/v1/pipelines/{}/rollback", args.pipeline)))
        .bearer_auth(target.token.as_deref().unwrap_or_default());
    let answer = send(request, &target).await?;
    println!("pipeline `{}` rolled back to {}", args.pipeline, describe(&answer["module"]));
    Ok(())
}

/// `monasca-wasm status`.
pub async fn status(args: &StatusArgs) -> anyhow::Result<()> {
    let target = args.admin.target()?;
    let answer = send(client()?.get(url(&target, "/v1/pipelines")), &target).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    let pipelines = answer.get("pipelines").and_then(|p| p.as_array()).cloned().unwrap_or_default();
    println!(
        "{:<20} {:<8} {:<36} {:<36} {:>12} {:>10} {:>8} {:>6} {:>9}",
        "PIPELINE", "STATE", "MODULE", "PREVIOUS", "CONSUMED", "BATCHES", "DLQ", "SWAPS", "ROLLBACKS"
    );
    for p in pipelines {
        let count = |key: &str| p["counters"][key].as_u64().unwrap_or(0);
        let previous = p.get("previous_module").filter(|m| !m.is_null()).map(describe).unwrap_or_else(|| "-".into());
        println!(
            "{:<20} {:<8} {:<36} {:<36} {:>12} {:>10} {:>8} {:>6} {:>9}",
            p["name"].as_str().unwrap_or("?"),
            p["state"].as_str().unwrap_or("?"),
            describe(&p["module"]),
            previous,
            count("consumed"),
            count("batches"),
            count("dead_lettered"),
            count("swaps"),
            count("rollbacks"),
        );
    }
    Ok(())
}
