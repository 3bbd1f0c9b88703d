//! Deploy what lands in a directory: a pipeline's `watch_dir`.
//!
//! The directory is looked at every [`EVERY`]; a `.wasm` file that was not
//! there before (or changed size or time) is deployed through the pipeline's
//! [`Deployer`], with `<stem>.canary.jsonl` beside it as its canary when that
//! exists. Write a module elsewhere on the same file system (or under a name
//! starting with `.`) and `mv` it in: the rename is atomic, so the watcher
//! never reads half a file. Files present at start-up are taken as already
//! seen (a restart does not redeploy them; the module store says what runs).

use super::Deployer;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How often the directory is listed.
pub const EVERY: Duration = Duration::from_secs(1);

/// Size and modification time: a file counts as new when either changes.
type Seen = HashMap<PathBuf, (u64, Option<SystemTime>)>;

fn modules_in(dir: &Path) -> Seen {
    let Ok(entries) = std::fs::read_dir(dir) else { return Seen::new() };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.ends_with(".wasm") && !name.starts_with('.')
        })
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            meta.is_file().then(|| (e.path(), (meta.len(), meta.modified().ok())))
        })
        .collect()
}

/// Watch `dir` for `deployer`'s pipeline until the process ends.
pub async fn watch(dir: PathBuf, deployer: Arc<Deployer>, pipeline: String) {
    if let Err(e) = std::fs::create_dir_all(&dir) {
        tracing::error!(%pipeline, dir = %dir.display(), error = %e, "cannot create the watched directory; not watching");
        return;
    }
    let mut seen = modules_in(&dir);
    tracing::info!(%pipeline, dir = %dir.display(), "watching for modules");
    loop {
        tokio::time::sleep(EVERY).await;
        let now = modules_in(&dir);
        for (path, stamp) in &now {
            if seen.get(path) == Some(stamp) {
                continue;
            }
            deploy_file(&deployer, &pipeline, path).await;
        }
        seen = now;
    }
}

async fn deploy_file(deployer: &Deployer, pipeline: &str, path: &Path) {
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "module".into());
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::error!(%pipeline, file = %path.display(), error = %e, "cannot read a watched module");
            return;
        }
    };
    let canary = std::fs::read(path.with_file_name(format!("{name}.canary.jsonl"))).ok();
    match deployer.deploy(&name, bytes, canary).await {
        Ok(done) => {
            tracing::info!(%pipeline, file = %path.display(), digest = %done.current.digest, "watched module deployed")
        }
        Err(e) => {
            tracing::error!(%pipeline, file = %path.display(), error = %e, "watched module refused; the running module keeps running")
        }
    }
}
