//! `monasca-wasm inspect <module.wasm>`: what a module is and whether this
//! host can run it.

use super::EngineArgs;
use crate::engine::{world, Module};
use anyhow::Context;
use serde_json::json;
use std::path::PathBuf;

/// Arguments of `inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The component to inspect.
    pub module: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Print the module's package version, world, exports, imports, digest and
/// size, and whether this host runs it: the verdict is the one `run` would
/// reach (the world's version, every import linked in the sandbox, the
/// exports' types), short of calling the guest's `init`.
pub async fn run(args: &InspectArgs) -> anyhow::Result<()> {
    let engine = args.engine.engine()?;
    let bytes = std::fs::read(&args.module).with_context(|| format!("cannot read {}", args.module.display()))?;
    let name = args.module.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let (info, digest) = Module::describe(&engine, &name, &bytes)?;
    let verdict = match engine.load_bytes(&name, &bytes) {
        Ok(module) => module.check().await.map_err(|e| e.kind.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if args.json {
        let report = json!({
            "module": args.module.display().to_string(),
            "size": bytes.len(),
            "sha256": digest,
            "package": info.package,
            "world": info.world,
            "exports": info.exports,
            "imports": info.imports,
            "compatible": verdict.is_ok(),
            "reason": verdict.as_ref().err().map(|e| crate::text::escape_capped(e, 4096)),
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("module:     {}", args.module.display());
        println!("size:       {} bytes", bytes.len());
        println!("sha256:     {digest}");
        println!("package:    {}", info.package.as_deref().unwrap_or("none (not a monasca:processor guest)"));
        println!("world:      {}", info.world.unwrap_or("unknown"));
        println!("exports:");
        for export in &info.exports {
            println!("  {} ({})", export.name, export.functions.join(", "));
        }
        println!("imports:");
        for import in &info.imports {
            println!("  {import}");
        }
        match &verdict {
            Ok(()) => println!("compatible: yes (this host runs {}@{})", world::PACKAGE, world::supported_range()),
            Err(e) => println!("compatible: no: {}", crate::text::escape_capped(e, 4096)),
        }
    }
    Ok(())
}
