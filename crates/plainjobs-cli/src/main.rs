//! `plainjobs`: run workers, look at queues and fix problems from a terminal; `plainjobs demo`
//! shows the whole system working.

mod demo;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use plainjobs::cli::{self, Command, GlobalArgs};
use plainjobs::Registry;
use tracing_subscriber::EnvFilter;

/// Background jobs in PostgreSQL (or an embedded SQLite file), compatible with plain.jobs.
///
/// Configuration comes from plainjobs.toml, PLAINJOBS_* environment variables and flags (in
/// increasing precedence). The database URL: --database-url, PLAINJOBS_DATABASE_URL,
/// DATABASE_URL, or `database_url` in plainjobs.toml; with none of them, the SQLite file
/// plainjobs.sqlite3 in the working directory.
#[derive(Debug, Parser)]
#[command(name = "plainjobs", version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Top,
}

#[derive(Debug, Subcommand)]
enum Top {
    #[command(flatten)]
    Jobs(Command),
    /// A tour: enqueue a success, a failure retried with backoff, a deferral, a delayed job, a
    /// duplicate refused by its concurrency key, a scheduled job and a shell command; run a
    /// worker with a live progress view; print the results.
    Demo(demo::DemoArgs),
}

/// Logs to stderr. A log line that cannot be written is dropped: with stderr a pipe whose reader
/// went away (a dead `| tee`, a restarting log shipper) the worker carries on. (The
/// subscriber's own report of a failed write would go to that same stderr with `eprintln!`,
/// whose panic would kill whichever task was logging.)
fn init_logging(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false)
        .try_init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Top::Jobs(command) => {
            init_logging(if matches!(command, Command::Worker(_)) {
                "info"
            } else {
                "warn"
            });
            cli::run(cli.global, command, Registry::new()).await
        }
        Top::Demo(args) => {
            // The demo's own view shows what happens; logs only for real trouble.
            init_logging("error");
            demo::run(cli.global, args).await
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
