//! The module store: deployed modules on disk, addressed by their sha256
//! digest, and per pipeline the digest that runs now and the one before it.
//!
//! Layout under the store's directory:
//! - `modules/<sha256 hex>.wasm`: one file per module, written once;
//! - `pipelines/<pipeline>.json`: [`Deployment`] (current and previous).
//!
//! Every file is written to a temporary name and renamed into place, so a
//! crash leaves either the old or the new file, never half of one. A
//! restarted host reads the pipeline's record and runs what was deployed
//! last, not the module named in the configuration file.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why the store could not do something.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing a file failed.
    #[error("module store: {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A pipeline record that cannot be read back.
    #[error("module store: {path} is not a deployment record: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// One deployed module, as recorded for a pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredModule {
    /// sha256 digest, hex.
    pub digest: String,
    /// The name it was deployed under (usually the file's stem).
    pub name: String,
    /// When it was deployed (seconds since the Unix epoch).
    pub deployed_at: u64,
    /// Why the host rolled it back on its own, if it did: a manual rollback
    /// will not reinstall it (deploy it again to mean it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back: Option<String>,
}

/// What a pipeline runs, and what it ran before (the rollback target).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The module that runs.
    pub current: StoredModule,
    /// The module that ran before it, if any.
    pub previous: Option<StoredModule>,
}

/// A module store in one directory.
#[derive(Debug, Clone)]
pub struct ModuleStore {
    dir: PathBuf,
}

impl ModuleStore {
    /// A store in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ModuleStore { dir: dir.into() }
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where a module with this digest is (or would be) kept.
    pub fn module_path(&self, digest: &str) -> PathBuf {
        self.dir.join("modules").join(format!("{digest}.wasm"))
    }

    fn record_path(&self, pipeline: &str) -> PathBuf {
        self.dir.join("pipelines").join(format!("{}.json", file_safe(pipeline)))
    }

    /// Keep a module's bytes under their digest (a no-op when present).
    pub fn put(&self, digest: &str, bytes: &[u8]) -> Result<PathBuf, StoreError> {
        let path = self.module_path(digest);
        if !path.exists() {
            write_atomically(&path, bytes)?;
        }
        Ok(path)
    }

    /// A stored module's bytes.
    pub fn get(&self, digest: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.module_path(digest);
        std::fs::read(&path).map_err(|source| StoreError::Io { action: "cannot read", path: show(&path), source })
    }

    /// The pipeline's deployment record, if a module was ever deployed to it.
    pub fn deployment(&self, pipeline: &str) -> Result<Option<Deployment>, StoreError> {
        let path = self.record_path(pipeline);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StoreError::Io { action: "cannot read", path: show(&path), source }),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| StoreError::Corrupt { path: show(&path), reason: e.to_string() })
    }

    /// Record what the pipeline runs now.
    pub fn record(&self, pipeline: &str, deployment: &Deployment) -> Result<(), StoreError> {
        let text = serde_json::to_string_pretty(deployment).unwrap_or_default();
        write_atomically(&self.record_path(pipeline), text.as_bytes())
    }
}

/// Seconds since the Unix epoch, now.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A pipeline name as a file name: letters, digits, `-`, `_` and `.` kept,
/// anything else as `_`.
fn file_safe(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

fn show(path: &Path) -> String {
    path.display().to_string()
}

/// Write `bytes` to a temporary file next to `path`, flush it to disk, and
/// rename it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
        action: "cannot create",
        path: show(dir),
        source,
    })?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
        std::process::id()
    ));
    let io = |action, source| StoreError::Io { action, path: show(&tmp), source };
    let mut file = std::fs::File::create(&tmp).map_err(|e| io("cannot create", e))?;
    file.write_all(bytes).map_err(|e| io("cannot write", e))?;
    file.sync_all().map_err(|e| io("cannot sync", e))?;
    std::fs::rename(&tmp, path).map_err(|source| StoreError::Io {
        action: "cannot rename into",
        path: show(path),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(digest: &str) -> StoredModule {
        StoredModule { digest: digest.into(), name: "m".into(), deployed_at: 1, rolled_back: None }
    }

    #[test]
    fn modules_and_records_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ModuleStore::new(dir.path().join("store"));
        assert_eq!(store.deployment("p").expect("read"), None);
        let path = store.put("abc", b"\0asm").expect("put");
        assert!(path.ends_with("modules/abc.wasm"));
        store.put("abc", b"ignored: same digest").expect("put again");
        assert_eq!(store.get("abc").expect("get"), b"\0asm");
        let deployment = Deployment { current: module("abc"), previous: Some(module("def")) };
        store.record("p/1", &deployment).expect("record");
        assert_eq!(store.deployment("p/1").expect("read"), Some(deployment));
        assert!(dir.path().join("store/pipelines/p_1.json").exists());
    }

    #[test]
    fn a_corrupt_record_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ModuleStore::new(dir.path());
        std::fs::create_dir_all(dir.path().join("pipelines")).expect("mkdir");
        std::fs::write(dir.path().join("pipelines/p.json"), "{").expect("write");
        let err = store.deployment("p").expect_err("corrupt");
        assert!(err.to_string().contains("p.json"), "{err}");
    }
}
