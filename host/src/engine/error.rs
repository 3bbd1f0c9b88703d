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
    /// The batch's effects passed the output budget.
    OutputBudget {
        /// What the effects used when the budget was passed.
        spent: super::budget::Spent,
        /// The budget.
        budget: super::budget::OutputBudget,
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

/// Most bytes of guest-controlled text (a trap's output, a refusal, a
/// batch error) shown in an error message.
const SHOWN_GUEST_TEXT: usize = 2048;

/// Guest-controlled text as an error message shows it: control characters
/// escaped (a newline cannot forge a log line), capped.
fn shown(text: &str) -> String {
    crate::text::escape_capped(text, SHOWN_GUEST_TEXT)
}

impl std::fmt::Display for GuestErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GuestErrorKind::Trap { reason, output, .. } if output.is_empty() => {
                write!(f, "guest trapped: {}", shown(reason))
            }
            GuestErrorKind::Trap { reason, output, .. } => {
                let output = output.lines().collect::<Vec<_>>().join(" | ");
                write!(f, "guest trapped: {}; guest output: {}", shown(reason), shown(&output))
            }
            GuestErrorKind::Deadline { limit } => write!(f, "call exceeded its deadline of {limit:?}"),
            GuestErrorKind::MemoryLimit { limit } => write!(f, "guest exceeded its memory limit of {limit} bytes"),
            GuestErrorKind::Init { reason } => write!(f, "init refused the configuration: {}", shown(reason)),
            GuestErrorKind::OutputBudget { spent, budget } => write!(
                f,
                "the batch's effects passed the output budget: {} effects and about {} bytes so far, \
                 the budget is {} effects and {} bytes ([engine] max_batch_effects, max_batch_output_mib)",
                spent.effects, spent.bytes, budget.max_effects, budget.max_bytes
            ),
            GuestErrorKind::Batch { reason, culprit: Some((p, o)) } => {
                write!(f, "batch failed at partition {p} offset {o}: {}", shown(reason))
            }
            GuestErrorKind::Batch { reason, culprit: None } => write!(f, "batch failed: {}", shown(reason)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_text_in_errors_is_escaped_and_capped() {
        let kind = GuestErrorKind::Init { reason: "bad\nERROR forged line\u{1b}[31m".to_string() };
        let text = kind.to_string();
        assert!(!text.chars().any(char::is_control), "{text}");
        let long = GuestErrorKind::Batch { reason: "x".repeat(1 << 20), culprit: None };
        assert!(long.to_string().len() < SHOWN_GUEST_TEXT + 100);
        let trap = GuestErrorKind::Trap {
            reason: "unreachable".into(),
            output: "panicked at src/lib.rs:1\nboom\r\u{9b}2J".into(),
            backtrace: String::new(),
        };
        let text = trap.to_string();
        assert!(text.contains("panicked at src/lib.rs:1 | boom") && !text.chars().any(char::is_control), "{text}");
    }
}
