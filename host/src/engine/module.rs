//! A loaded guest module: compiled (or taken from the cache), checked against
//! the world, and pre-instantiated so that new instances are cheap.

use super::cache::CacheOutcome;
use super::error::LoadError;
use super::instance::Instance;
use super::sandbox::{GuestIdentity, Lookups, NoLookups};
use super::world::WorldInfo;
use super::{Engine, GuestError};
use sha2::{Digest as _, Sha256};
use std::sync::Arc;
use wasmtime::component::Component;

/// A checked, pre-instantiated component. Cheap to clone.
#[derive(Clone)]
pub struct Module {
    pub(crate) inner: Arc<ModuleInner>,
}

pub(crate) struct ModuleInner {
    pub(crate) engine: Engine,
    pub(crate) name: String,
    pub(crate) digest: String,
    pub(crate) size: usize,
    pub(crate) world: WorldInfo,
    pub(crate) cache: CacheOutcome,
    pub(crate) pre: wasmtime::component::InstancePre<super::sandbox::HostState>,
}

/// `\0asm` then the layer/version word: components use layer 1.
fn classify(name: &str, bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(LoadError::NotWasm { name: name.to_string() });
    }
    if bytes[6..8] != [1, 0] {
        return Err(LoadError::NotAComponent { name: name.to_string() });
    }
    Ok(())
}

/// The module's sha256 digest in hex.
pub fn digest_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Module {
    pub(crate) fn load(engine: &Engine, name: &str, bytes: &[u8]) -> Result<Module, LoadError> {
        let (component, world, digest, cache) = Self::compile(engine, name, bytes)?;
        world.check_compatible(name)?;
        let link_error = |e: wasmtime::Error| LoadError::Link { name: name.to_string(), reason: format!("{e:#}") };
        let pre = engine.linker().instantiate_pre(&component).map_err(link_error)?;
        tracing::debug!(module = name, digest = %digest, cache = ?cache, "module loaded");
        Ok(Module {
            inner: Arc::new(ModuleInner {
                engine: engine.clone(),
                name: name.to_string(),
                digest,
                size: bytes.len(),
                world,
                cache,
                pre,
            }),
        })
    }

    /// Compile (or fetch from the cache) and describe a component without
    /// checking it: what `monasca-wasm inspect` shows.
    pub fn describe(engine: &Engine, name: &str, bytes: &[u8]) -> Result<(WorldInfo, String), LoadError> {
        let (_, world, digest, _) = Self::compile(engine, name, bytes)?;
        Ok((world, digest))
    }

    fn compile(
        engine: &Engine,
        name: &str,
        bytes: &[u8],
    ) -> Result<(Component, WorldInfo, String, CacheOutcome), LoadError> {
        classify(name, bytes)?;
        let digest = digest_hex(bytes);
        let compile_error =
            |e: wasmtime::Error| LoadError::Compile { name: name.to_string(), reason: format!("{e:#}") };
        let (component, cache) = match engine.cache() {
            Some(cache) => cache.load_or_compile(engine.wasmtime(), &digest, bytes).map_err(compile_error)?,
            None => (Component::new(engine.wasmtime(), bytes).map_err(compile_error)?, CacheOutcome::Disabled),
        };
        let world = WorldInfo::of(engine.wasmtime(), &component);
        Ok((component, world, digest, cache))
    }

    /// Module name (file stem or the name given).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Full sha256 digest in hex.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    /// `sha256:` and the first 12 hex digits, for logs and errors.
    pub fn short_digest(&self) -> String {
        format!("sha256:{}", &self.inner.digest[..12])
    }

    /// Size of the component in bytes.
    pub fn size(&self) -> usize {
        self.inner.size
    }

    /// The world, version, exports and imports.
    pub fn world(&self) -> &WorldInfo {
        &self.inner.world
    }

    /// Whether the compiled code came from the cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.inner.cache
    }

    /// Check, as every instance start does but without calling `init`, that
    /// the module links in the sandbox and that its exports have the
    /// world's types (what `inspect` reports).
    pub async fn check(&self) -> Result<(), GuestError> {
        super::instance::check(self).await
    }

    /// A new instance for `pipeline`, initialised with `config`, with no lookups.
    pub async fn instantiate(&self, pipeline: &str, config: Vec<(String, String)>) -> Result<Instance, GuestError> {
        self.instantiate_with(pipeline, config, Arc::new(NoLookups)).await
    }

    /// A new instance for `pipeline` with the operator's lookups.
    pub async fn instantiate_with(
        &self,
        pipeline: &str,
        config: Vec<(String, String)>,
        lookups: Arc<dyn Lookups>,
    ) -> Result<Instance, GuestError> {
        let identity = GuestIdentity {
            pipeline: pipeline.to_string(),
            module: self.name().to_string(),
            digest: self.short_digest(),
        };
        Instance::start(self.clone(), identity, config, lookups).await
    }
}
