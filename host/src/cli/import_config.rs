//! `monasca-wasm import-config FILE.conf [--kind persister|notification]
//! [-o host.toml]`: write the host configuration equivalent to an operator's
//! monasca-persister or monasca-notification configuration file (see
//! `crate::import`), on stdout or into a file readable by its owner only.

use crate::import::{self, Kind};
use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Which original the file configures.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum KindArg {
    /// monasca-persister 9.0.0's `persister.conf`.
    Persister,
    /// monasca-notification 9.0.0's `notification.conf`.
    Notification,
}

impl From<KindArg> for Kind {
    fn from(kind: KindArg) -> Kind {
        match kind {
            KindArg::Persister => Kind::Persister,
            KindArg::Notification => Kind::Notification,
        }
    }
}

/// Arguments of `import-config`.
#[derive(Debug, clap::Args)]
pub struct ImportConfigArgs {
    /// The original's configuration file (oslo.config INI).
    pub file: PathBuf,
    /// Which original it configures [default: guessed from its sections].
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
    /// Write the host configuration to this file (mode 0600 when created)
    /// instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Read the file, map it, write the TOML; the options that were not mapped
/// are counted on stderr (each is a comment in the output).
pub fn run(args: &ImportConfigArgs) -> anyhow::Result<()> {
    let source = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file).with_context(|| format!("cannot read {source}"))?;
    let imported =
        import::import(&text, args.kind.map(Kind::from), &source).with_context(|| format!("cannot import {source}"))?;
    match &args.output {
        Some(path) => {
            write_private(path, &imported.toml).with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "{source} ({}) imported into {}: {} option(s) not mapped, listed at its end",
                imported.kind.original(),
                path.display(),
                imported.unmapped.len()
            );
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(imported.toml.as_bytes())?;
            out.flush()?;
            eprintln!(
                "{source} ({}) imported: {} option(s) not mapped, listed at the end",
                imported.kind.original(),
                imported.unmapped.len()
            );
        }
    }
    Ok(())
}

/// Write `text` to `path`; a file created here is readable by its owner
/// only (the configuration holds the original's passwords).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}
