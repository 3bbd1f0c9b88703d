//! Logging from a guest. Lines go to the host's structured log, tagged with
//! the pipeline and the module; under the native [`crate::testing::Harness`]
//! they are collected for assertions.

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the guest handled.
    Warn,
    /// Something failed.
    Error,
}

/// Write one log line at `level`.
pub fn log(level: Level, message: &str) {
    imp::log(level, message)
}

/// Write an `info` line.
pub fn info(message: &str) {
    log(Level::Info, message)
}

/// Write a `warn` line.
pub fn warn(message: &str) {
    log(Level::Warn, message)
}

/// Write an `error` line.
pub fn error(message: &str) {
    log(Level::Error, message)
}

/// Write a `debug` line.
pub fn debug(message: &str) {
    log(Level::Debug, message)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::Level;
    use crate::bindings::monasca::processor::log as host;
    use crate::bindings::monasca::processor::types::Level as WitLevel;

    pub fn log(level: Level, message: &str) {
        let level = match level {
            Level::Trace => WitLevel::Trace,
            Level::Debug => WitLevel::Debug,
            Level::Info => WitLevel::Info,
            Level::Warn => WitLevel::Warn,
            Level::Error => WitLevel::Error,
        };
        host::log(level, message);
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::Level;
    use std::cell::RefCell;

    thread_local! {
        static LINES: RefCell<Vec<(Level, String)>> = const { RefCell::new(Vec::new()) };
    }

    pub fn log(level: Level, message: &str) {
        LINES.with(|lines| lines.borrow_mut().push((level, message.to_string())));
    }

    /// Take the lines logged on this thread so far.
    pub fn take() -> Vec<(Level, String)> {
        LINES.with(|lines| std::mem::take(&mut *lines.borrow_mut()))
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use imp::take as take_native_lines;
