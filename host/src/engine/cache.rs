//! The compiled-module cache: compiled components on disk, keyed by the
//! module's sha256 digest and the engine's settings, so that a restart or a
//! redeploy of a known module does not compile again.
//!
//! An entry is `MWCC` + sha256(payload) + payload, where the payload is
//! wasmtime's serialized component. On load the checksum is verified before
//! wasmtime is asked to deserialize, and wasmtime itself refuses artifacts
//! from another version or configuration; an entry that fails either check is
//! logged, removed and rebuilt. The cache directory is trusted like the
//! binary itself: keep it writable only by the host's user.

use sha2::{Digest as _, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::component::Component;
use wasmtime::Engine;

const MAGIC: &[u8; 4] = b"MWCC";
const HEADER_LEN: usize = 4 + 32;

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheOutcome {
    /// No cache configured: compiled.
    Disabled,
    /// Loaded from a valid cache entry.
    Hit,
    /// No entry: compiled and stored.
    Miss,
    /// An entry existed but was corrupt or foreign: compiled and replaced.
    Rebuilt,
}

/// A directory of compiled components.
#[derive(Debug, Clone)]
pub struct ModuleCache {
    dir: PathBuf,
}

impl ModuleCache {
    /// A cache in `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ModuleCache { dir: dir.into() }
    }

    /// The default location: `$XDG_CACHE_HOME/monasca-wasm` or `~/.cache/monasca-wasm`.
    pub fn default_dir() -> Option<PathBuf> {
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|base| base.join("monasca-wasm"))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry path for a module digest under this engine's settings.
    pub fn entry_path(&self, engine: &Engine, digest_hex: &str) -> PathBuf {
        self.dir.join(format!("{digest_hex}-{}.cwasm", engine_key(engine)))
    }

    /// Load the compiled component for `bytes` (whose digest is `digest_hex`),
    /// compiling and storing it when the cache has no valid entry.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        digest_hex: &str,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let path = self.entry_path(engine, digest_hex);
        let mut outcome = CacheOutcome::Miss;
        match std::fs::read(&path) {
            Ok(entry) => match open_entry(engine, &entry) {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(reason) => {
                    tracing::warn!(path = %path.display(), %reason, "ignoring compiled-module cache entry; recompiling");
                    let _ = std::fs::remove_file(&path);
                    outcome = CacheOutcome::Rebuilt;
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot read compiled-module cache entry"),
        }
        let component = Component::new(engine, bytes)?;
        if let Err(e) = self.store(&path, &component) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write compiled-module cache entry");
        }
        Ok((component, outcome))
    }

    fn store(&self, path: &Path, component: &Component) -> anyhow::Result<()> {
        let payload = component.serialize().map_err(|e| anyhow::anyhow!("{e:#}"))?;
        std::fs::create_dir_all(&self.dir)?;
        let mut entry = Vec::with_capacity(HEADER_LEN + payload.len());
        entry.extend_from_slice(MAGIC);
        entry.extend_from_slice(&Sha256::digest(&payload));
        entry.extend_from_slice(&payload);
        // Write then rename, so a reader never sees half an entry.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, &entry)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}

/// Check an entry's header and checksum, then deserialize it.
fn open_entry(engine: &Engine, entry: &[u8]) -> Result<Component, String> {
    if entry.len() < HEADER_LEN || &entry[..4] != MAGIC {
        return Err("not a monasca-wasm cache entry".to_string());
    }
    let (checksum, payload) = entry[4..].split_at(32);
    if Sha256::digest(payload).as_slice() != checksum {
        return Err("checksum mismatch (corrupt entry)".to_string());
    }
    // SAFETY: the payload was written by `store` above for this engine
    // configuration (the file name carries the engine key) and its checksum
    // matches; wasmtime additionally checks its version and settings header.
    unsafe { Component::deserialize(engine, payload) }.map_err(|e| format!("wasmtime refused the artifact: {e}"))
}

/// A short key of everything in the engine's settings that affects compiled code.
fn engine_key(engine: &Engine) -> String {
    let mut hasher = ShaHasher(Sha256::new());
    env!("CARGO_PKG_VERSION").hash(&mut hasher);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..8])
}

/// A `Hasher` over sha256, so the key is stable across Rust versions.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}
