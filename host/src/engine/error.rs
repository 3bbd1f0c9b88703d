//! Typed errors of the engine: why a module could not be loaded, and why a
//! guest call failed.

use std::time::Duration;

/// Why a module was refused at load time.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read module {path}: {source}")]
    Read {
        /// Path given.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are not WebAssembly at all.
    #[error("{name} is not a WebAssembly file (no `\\0asm` header)")]
    NotWasm {
        /// Module name.
        name: String,
    },
    /// A core module rather than a component.
    #[error("{name} is a core WebAssembly module, not a component: build the guest with `--target wasm32-wasip2`")]
    NotAComponent {
        /// Module name.
        name: String,
    },
    /// The component does not target the `monasca:processor` world.
    #[error("{name} was not built for the monasca:processor world: it does not export `monasca:processor/processor` (its exports: {found})")]
    WrongWorld {
        /// Module name.
        name: String,
        /// What it exports instead.
        found: String,
    },
    /// The component targets an incompatible version of the world.
    #[error("{name} targets monasca:processor@{found}, which this host cannot run: it supports monasca:processor@{expected} ({rule})")]
    IncompatibleVersion {
        /// Module name.
        name: String,
        /// Version the module was built for.
        found: String,
        /// Version range this host supports.
        expected: String,
        /// The compatibility rule that failed.
        rule: &'static str,
    },
    /// The component imports something the sandbox does not provide.
    #[error("{name} cannot be linked in the sandbox: {reason}")]
    Link {
        /// Module name.
        name: String,
        /// What wasmtime said.
        reason: String,
    },
    /// Compilation failed (invalid or unsupported WebAssembly).
    #[error("{name} does not compile: {reason}")]
    Compile {
        /// Module name.
        name: String,
        /// What wasmtime said.
        reason: String,
    },
}

/// What went wrong in a guest call.
#[derive(Debug, Clone, PartialEq)]
pub enum GuestErrorKind {
    /// The guest trapped (a panic, an out-of-bounds access, `unreachable`...).
    Trap {
        /// The trap and its backtrace, as wasmtime reports them.
        reason: String,
        /// The tail of what the guest wrote to stdout/stderr (a Rust panic message).
        output: String,
        /// The guest's call stack at the trap, when wasmtime captured one.
        backtrace: String,
    },
    /// The call ran past its deadline and was interrupted.
    Deadline {
        /// The deadline.
        limit: Duration,
    },
    /// The guest grew its memory past the cap.
    MemoryLimit {
        /// The cap in bytes.
        limit: usize,
    },
    /// `init` refused the configuration.
    Init {
        /// The guest's reason.
        reason: String,
    },
    /// `process` returned an error for the whole batch.
    Batch {
        /// The guest's reason.
        reason: String,
        /// The message the guest blamed, as (partition, offset).
        culprit: Option<(i32, i64)>,
    },
}

/// A failed guest call, naming the pipeline and the module digest.
#[derive(Debug, Clone, thiserror::Error)]
#[error("pipeline `{pipeline}`, module {module} ({digest}): {kind}")]
pub struct GuestError {
    /// Pipeline the instance serves.
    pub pipeline: String,
    /// Module name.
    pub module: String,
    /// `sha256:` digest prefix of the module.
    pub digest: String,
    /// What happened.
    pub kind: GuestErrorKind,
}

impl GuestError {
    /// True when the instance cannot be used again and must be rebuilt
    /// (after a trap, a deadline or a limit hit).
    pub fn poisons_instance(&self) -> bool {
        matches!(
            self.kind,
            GuestErrorKind::Trap { .. } | GuestErrorKind::Deadline { .. } | GuestErrorKind::MemoryLimit { .. }
        )
    }
}

impl std::fmt::Display for GuestErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GuestErrorKind::Trap { reason, output, .. } if output.is_empty() => write!(f, "guest trapped: {reason}"),
            GuestErrorKind::Trap { reason, output, .. } => {
                write!(f, "guest trapped: {reason}; guest output: {}", output.replace('\n', " | "))
            }
            GuestErrorKind::Deadline { limit } => write!(f, "call exceeded its deadline of {limit:?}"),
            GuestErrorKind::MemoryLimit { limit } => write!(f, "guest exceeded its memory limit of {limit} bytes"),
            GuestErrorKind::Init { reason } => write!(f, "init refused the configuration: {reason}"),
            GuestErrorKind::Batch { reason, culprit: Some((p, o)) } => {
                write!(f, "batch failed at partition {p} offset {o}: {reason}")
            }
            GuestErrorKind::Batch { reason, culprit: None } => write!(f, "batch failed: {reason}"),
        }
    }
}
