//! `monasca-wasm`: the command line. A thin shell over the library: parse
//! arguments, set up logging, run the subcommand, turn errors into a message
//! and an exit code.

use clap::{Parser, Subcommand};
use monasca_wasm::cli;
use std::process::ExitCode;

/// mimalloc: lifting guest results allocates many small strings, where it is
/// markedly faster than the system allocator (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_t`, the
/// same in mimalloc 2 and 3; the Rust bindings name no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keep freed memory ten seconds before handing it back to the system. The
/// host's use swings by tens of megabytes within a second or two (batches in
/// flight, fetch buffers), and every page handed back and taken again is a
/// page fault and a page the kernel zeroes: with mimalloc's default 10 ms,
/// and still with one second, that was a tenth of the persister host's time
/// (`clear_page` and the fault path; 20,000 faults/s at 180k metrics/s,
/// 5,000/s with ten seconds). What a quieter host no longer uses still goes
/// back, that much later. `MIMALLOC_PURGE_DELAY` in the environment wins.
fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's global options (an atomic store);
        // any value is valid for this option.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 10_000) };
    }
    tune_c_allocator();
}

/// librdkafka allocates with the C library's `malloc`: its fetch and
/// decompression buffers (a megabyte or more each) came from fresh `mmap`s
/// or from heap tops that glibc trimmed as soon as they were freed, so they
/// too were page faults and zeroed pages, over and over. Keep up to 64 MiB
/// at a heap's top (per malloc arena) and serve blocks below 32 MiB from the
/// heap. `MALLOC_TRIM_THRESHOLD_`/`MALLOC_MMAP_THRESHOLD_` or
/// `GLIBC_TUNABLES` in the environment win.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_c_allocator() {
    // An operator who tunes glibc's malloc through its tunables keeps them.
    if std::env::var_os("GLIBC_TUNABLES").is_some() {
        return;
    }
    // mallopt answers 0 for a value it refuses, which leaves glibc's default:
    // nothing to do then (and nothing logs yet this early).
    if std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_none() {
        // SAFETY: sets a glibc malloc parameter; called before other threads start.
        unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20) };
    }
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: as above.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) };
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_c_allocator() {}

/// Run Monasca pipeline logic as sandboxed WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "monasca-wasm", version, about)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the pipelines of a configuration file (the service).
    Run(cli::run::RunArgs),
    /// Produce synthetic Monasca metrics (or alarm transitions) to a topic.
    Generate(cli::generate::GenerateArgs),
    /// Show a module's world, version, exports, imports, digest and size.
    Inspect(cli::inspect::InspectArgs),
    /// Run a guest on a file of messages (one value per line) and print its effects as JSON lines
    /// (with --host-config and --pipeline: as that pipeline's guest, its lookups answered from its databases).
    Test(cli::test::TestArgs),
    /// Check a configuration file: every problem at once with its line, then (unless --offline) its modules, Kafka topics, databases and sinks.
    Validate(cli::validate::ValidateArgs),
    /// Create a new guest crate from the template.
    New(cli::new::NewArgs),
    /// Deploy a module to a pipeline of a running host (admin API).
    Deploy(cli::admin::DeployArgs),
    /// Swap a pipeline's previous module back in (admin API).
    Rollback(cli::admin::RollbackArgs),
    /// Show what a running host runs (admin API).
    Status(cli::admin::StatusArgs),
    /// Write the host configuration equivalent to a monasca-persister or monasca-notification configuration file.
    ImportConfig(cli::import_config::ImportConfigArgs),
}

fn main() -> ExitCode {
    tune_allocator();
    let args = Cli::parse();
    let default_filter = match args.command {
        Command::Run(_) => "info,librdkafka=warn,rdkafka=warn",
        // Its own lines say what is wrong with the brokers.
        Command::Validate(_) => "warn,librdkafka=off,rdkafka=off",
        _ => "warn",
    };
    monasca_wasm::telemetry::init(matches!(args.log_format, LogFormat::Json), default_filter);
    let result = match &args.command {
        Command::Run(a) => runtime().and_then(|rt| rt.block_on(cli::run::run(a))),
        Command::Generate(a) => runtime().and_then(|rt| rt.block_on(cli::generate::run(a))),
        Command::Inspect(a) => runtime().and_then(|rt| rt.block_on(cli::inspect::run(a))),
        Command::New(a) => cli::new::run(a),
        Command::Test(a) => runtime().and_then(|rt| rt.block_on(cli::test::run(a))),
        Command::Validate(a) => runtime().and_then(|rt| rt.block_on(cli::validate::run(a))),
        Command::Deploy(a) => runtime().and_then(|rt| rt.block_on(cli::admin::deploy(a))),
        Command::Rollback(a) => runtime().and_then(|rt| rt.block_on(cli::admin::rollback(a))),
        Command::Status(a) => runtime().and_then(|rt| rt.block_on(cli::admin::status(a))),
        Command::ImportConfig(a) => cli::import_config::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            // The admin commands tell a refusal (1) from an unreachable host (2).
            if e.downcast_ref::<cli::admin::Unreachable>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}
