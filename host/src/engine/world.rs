//! What a component is: the world and version it targets, its exports and
//! imports. Used to refuse incompatible modules with a clear reason and by
//! `monasca-wasm inspect`.

use super::error::LoadError;
use serde::Serialize;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::Component;
use wasmtime::Engine;

/// The WIT package this host implements.
pub const PACKAGE: &str = "monasca:processor";
/// Its version.
pub const VERSION: &str = "0.4.1";

/// Older versions whose guests this host still runs (their imports are
/// linked under their own names, see `engine::sandbox`).
pub const STILL_SUPPORTED: &[&str] = &["0.3"];

const PROCESSOR: &str = "monasca:processor/processor";
const STATE: &str = "monasca:processor/state";
const PARTITION_STATE: &str = "monasca:processor/partition-state";
const HTTP_REPLY: &str = "monasca:processor/http-reply";

/// One export of a component.
#[derive(Debug, Clone, Serialize)]
pub struct ExportInfo {
    /// Export name, e.g. `monasca:processor/processor@0.3.0`.
    pub name: String,
    /// Functions it holds.
    pub functions: Vec<String>,
}

/// What a component targets.
#[derive(Debug, Clone, Serialize)]
pub struct WorldInfo {
    /// `monasca:processor@<version>` the module was built for, if any.
    pub package: Option<String>,
    /// `stateless`, `keyed` (imports `partition-state`), `http-api`
    /// (imports `http-reply`) or `stateful` (exports `state`), if it targets
    /// our package.
    pub world: Option<&'static str>,
    /// Exports with their functions.
    pub exports: Vec<ExportInfo>,
    /// Import names.
    pub imports: Vec<String>,
}

impl WorldInfo {
    /// Read a compiled component's world.
    pub fn of(engine: &Engine, component: &Component) -> Self {
        let ty = component.component_type();
        let exports: Vec<ExportInfo> = ty
            .exports(engine)
            .map(|(name, item)| {
                let functions = match item.ty {
                    ComponentItem::ComponentInstance(instance) => instance
                        .exports(engine)
                        .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentFunc(_)))
                        .map(|(f, _)| f.to_string())
                        .collect(),
                    ComponentItem::ComponentFunc(_) => vec![name.to_string()],
                    _ => Vec::new(),
                };
                ExportInfo { name: name.to_string(), functions }
            })
            .collect();
        let imports: Vec<String> = ty.imports(engine).map(|(name, _)| name.to_string()).collect();
        let version = exports.iter().find_map(|e| export_version(&e.name, PROCESSOR)).map(str::to_string);
        let world = version.as_ref().map(|_| {
            if exports.iter().any(|e| export_version(&e.name, STATE).is_some()) {
                "stateful"
            } else if imports.iter().any(|i| export_version(i, PARTITION_STATE).is_some()) {
                "keyed"
            } else if imports.iter().any(|i| export_version(i, HTTP_REPLY).is_some()) {
                "http-api"
            } else {
                "stateless"
            }
        });
        WorldInfo { package: version.map(|v| format!("{PACKAGE}@{v}")), world, exports, imports }
    }

    /// The version of `monasca:processor` the module targets.
    pub fn version(&self) -> Option<&str> {
        self.package.as_deref().and_then(|p| p.split_once('@')).map(|(_, v)| v)
    }

    /// True when the module exports `state` (snapshot/restore).
    pub fn is_stateful(&self) -> bool {
        self.world == Some("stateful")
    }

    /// True when the module imports `partition-state`: the host keeps its
    /// state per partition (changelog, restore, timer calls).
    pub fn is_keyed(&self) -> bool {
        self.imports.iter().any(|i| export_version(i, PARTITION_STATE).is_some())
    }

    /// The name of an interface of ours as this module's version spells it,
    /// e.g. `monasca:processor/processor@0.3.0`.
    pub fn interface(&self, name: &str) -> String {
        format!("{PACKAGE}/{name}@{}", self.version().unwrap_or(VERSION))
    }

    /// Refuse a module that does not target a compatible version of our world.
    pub fn check_compatible(&self, name: &str) -> Result<(), LoadError> {
        let Some(found) = self.version() else {
            let found = if self.exports.is_empty() {
                "nothing".to_string()
            } else {
                self.exports.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", ")
            };
            return Err(LoadError::WrongWorld { name: name.to_string(), found });
        };
        check_version(name, found)
    }
}

/// `Some(version)` when `export` is `interface@version`.
fn export_version<'a>(export: &'a str, interface: &str) -> Option<&'a str> {
    export.strip_prefix(interface)?.strip_prefix('@')
}

/// Semver compatibility with [`VERSION`]: the same major version, and for
/// 0.x versions the same minor version.
fn check_version(name: &str, found: &str) -> Result<(), LoadError> {
    let refuse = |rule| LoadError::IncompatibleVersion {
        name: name.to_string(),
        found: found.to_string(),
        expected: supported_range(),
        rule,
    };
    let ours = semver::Version::parse(VERSION).map_err(|_| refuse("the host's own version is malformed"))?;
    let theirs = semver::Version::parse(found).map_err(|_| refuse("the version is not semver"))?;
    if theirs.major != ours.major {
        return Err(refuse("the major version differs"));
    }
    let older =
        STILL_SUPPORTED.iter().any(|s| semver::VersionReq::parse(&format!("~{s}")).is_ok_and(|r| r.matches(&theirs)));
    if ours.major == 0 && theirs.minor != ours.minor && !older {
        return Err(refuse("for 0.x versions the minor version must match"));
    }
    Ok(())
}

/// The versions this host accepts, e.g. `0.4.x or 0.3.x`.
pub fn supported_range() -> String {
    let current = match semver::Version::parse(VERSION) {
        Ok(v) if v.major == 0 => format!("0.{}.x", v.minor),
        Ok(v) => format!("{}.x", v.major),
        Err(_) => VERSION.to_string(),
    };
    std::iter::once(current).chain(STILL_SUPPORTED.iter().map(|s| format!("{s}.x"))).collect::<Vec<_>>().join(" or ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compatible_versions() {
        assert!(check_version("m", "0.4.0").is_ok());
        assert!(check_version("m", "0.4.1").is_ok());
        assert!(check_version("m", "0.4.7").is_ok());
        assert!(check_version("m", "0.3.0").is_ok(), "0.3 guests keep running");
        let err = check_version("m", "0.2.0").unwrap_err().to_string();
        assert!(err.contains("0.2.0") && err.contains("0.4.x or 0.3.x") && err.contains("minor"), "{err}");
        let err = check_version("m", "1.0.0").unwrap_err().to_string();
        assert!(err.contains("major version differs"), "{err}");
    }
}
