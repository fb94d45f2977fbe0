//! `plainjobs`: run workers, look at queues and fix problems from a terminal; `plainjobs demo`
//! shows the whole system working.

mod demo;
mod logging;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use plainjobs::cli::{self, Command, GlobalArgs};
use plainjobs::Registry;

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
    #[command(flatten)]
    logs: logging::LogArgs,
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

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match &cli.command {
        Top::Jobs(Command::Worker(_)) => "info",
        Top::Jobs(_) => "warn",
        // The demo's own view shows what happens; logs only for real trouble.
        Top::Demo(_) => "error",
    };
    if let Err(e) = logging::init(&cli.logs, default_level) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let outcome = match cli.command {
        Top::Jobs(command) => cli::run(cli.global, command, Registry::new()).await,
        Top::Demo(args) => demo::run(cli.global, args).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
