//! `code-runner`: one binary, one subcommand per role.
//!
//! - `serve`: API and worker in one process (embedded queue without Redis).
//! - `api`: HTTP only; `worker`: executes only; both share a Redis.
//! - `run FILE`: run one file locally in the sandbox, or on a server.
//! - `doctor`: check that this host (or container) can run the native sandbox.

mod client;
mod config;
mod doctor_cli;
mod judge_cli;
mod live_cli;
mod roles;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use config::{ApiArgs, CommonArgs, ProgramLimitArgs, WorkerArgs};

#[derive(Debug, Parser)]
#[command(
    name = "code-runner",
    version,
    about = "Runs untrusted code sent over HTTP, safely and at scale."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API and a worker in one process (an in-process queue unless --redis-url is given).
    Serve {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        api: ApiArgs,
        #[command(flatten)]
        worker: WorkerArgs,
    },
    /// Run the HTTP API only (never runs code); needs --redis-url.
    Api {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        api: ApiArgs,
        #[command(flatten)]
        limits: ProgramLimitArgs,
    },
    /// Run a worker only: take jobs from Redis and run them; needs --redis-url.
    Worker {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        worker: WorkerArgs,
    },
    /// Run one source file and print its output; exits with the program's status.
    Run(client::RunArgs),
    /// Check what the native sandbox needs here (user namespaces, cgroups,
    /// bubblewrap, seccomp, the toolchains); exits 1 when something is missing.
    Doctor(doctor_cli::DoctorArgs),
}

fn main() -> std::process::ExitCode {
    // The native sandbox starts this binary inside each slot's sandbox as
    // its keeper: single-threaded, so before any runtime or parsing.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|arg| arg == "keeper")
    {
        code_runner_sandbox::native::keeper::main();
    }
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let (Command::Run(args), Some(run)) = (&mut cli.command, matches.subcommand_matches("run")) {
        // A remote run asks for the limits the user gave, not the defaults.
        let given = |id: &str| {
            run.value_source(id)
                .is_some_and(|s| s != ValueSource::DefaultValue)
        };
        args.requested = client::RequestedLimits {
            time_limit_ms: given("time_limit_ms").then_some(args.worker.time_limit_ms),
            memory_limit_mb: given("memory_limit_mb").then_some(args.worker.memory_limit_mb),
        };
    }
    if let Command::Doctor(args) = cli.command {
        // No runtime, no logging: a report on stdout and an exit status.
        return match doctor_cli::run(args) {
            Ok(code) => std::process::ExitCode::from(code),
            Err(e) => {
                eprintln!("code-runner doctor: {e:#}");
                std::process::ExitCode::from(2)
            }
        };
    }
    init_tracing();
    if let Command::Serve { common, .. }
    | Command::Api { common, .. }
    | Command::Worker { common, .. } = &cli.command
    {
        if common.scheduling == config::Scheduling::Batch {
            // Before the runtime's threads exist, so that they inherit it.
            if let Err(e) = code_runner_sandbox::native::schedule_as_batch() {
                tracing::warn!(error = %e, "cannot switch to SCHED_BATCH; running as normal");
            }
        }
    }
    // The service's own work is small: on one thread it switches least.
    let threads = match &cli.command {
        Command::Worker { worker, .. } => Some(worker.runtime_threads()),
        Command::Api { api, .. } => Some(api.runtime_threads()),
        // `serve` also runs the worker's inline work (a judge's checker, a
        // slot's rebuild), which must not hold up the API's requests: one
        // thread per core unless --api-threads says otherwise.
        Command::Serve { api, .. } => Some(api.serve_threads()),
        _ => None,
    };
    let runtime = match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Some(threads) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build(),
        None => tokio::runtime::Runtime::new(),
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("code-runner: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve {
                common,
                api,
                worker,
            } => roles::serve(common, api, worker).await.map(|()| 0),
            Command::Api {
                common,
                api,
                limits,
            } => roles::api(common, api, limits).await.map(|()| 0),
            Command::Worker { common, worker } => roles::worker(common, worker).await.map(|()| 0),
            Command::Run(args) => client::run(args).await,
            Command::Doctor(_) => unreachable!("handled before the runtime starts"),
        }
    });
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("code-runner: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs to stderr; `RUST_LOG` filters (default: info).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}
