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
    /// Run a guest on a file of messages (one value per line) and print its effects as JSON lines.
    Test(cli::test::TestArgs),
    /// Create a new guest crate from the template.
    New(cli::new::NewArgs),
    /// Deploy a module to a pipeline of a running host (admin API).
    Deploy(cli::admin::DeployArgs),
    /// Swap a pipeline's previous module back in (admin API).
    Rollback(cli::admin::RollbackArgs),
    /// Show what a running host runs (admin API).
    Status(cli::admin::StatusArgs),
}

fn main() -> ExitCode {
    let args = Cli::parse();
    let default_filter =
        if matches!(args.command, Command::Run(_)) { "info,librdkafka=warn,rdkafka=warn" } else { "warn" };
    monasca_wasm::telemetry::init(matches!(args.log_format, LogFormat::Json), default_filter);
    let result = match &args.command {
        Command::Run(a) => runtime().and_then(|rt| rt.block_on(cli::run::run(a))),
        Command::Generate(a) => runtime().and_then(|rt| rt.block_on(cli::generate::run(a))),
        Command::Inspect(a) => cli::inspect::run(a),
        Command::New(a) => cli::new::run(a),
        Command::Test(a) => runtime().and_then(|rt| rt.block_on(cli::test::run(a))),
        Command::Deploy(a) => runtime().and_then(|rt| rt.block_on(cli::admin::deploy(a))),
        Command::Rollback(a) => runtime().and_then(|rt| rt.block_on(cli::admin::rollback(a))),
        Command::Status(a) => runtime().and_then(|rt| rt.block_on(cli::admin::status(a))),
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
