//! `plainjobs`: run workers, look at queues and fix problems from a terminal; `plainjobs demo`
//! shows the whole system working.

mod demo;
mod logging;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use plainjobs::cli::{self, CliError, Command, GlobalArgs};
use plainjobs::telemetry::Telemetry;
use plainjobs::Registry;

/// Background jobs in PostgreSQL (or an embedded SQLite file), compatible with plain.jobs.
///
/// Configuration comes from plainjobs.toml, PLAINJOBS_* environment variables and flags (in
/// increasing precedence): `plainjobs config` shows what is in effect, `plainjobs config
/// --help` every setting. The database URL: --database-url, PLAINJOBS_DATABASE_URL,
/// DATABASE_URL, or `database_url` in plainjobs.toml; with none of them, the SQLite file
/// plainjobs.sqlite3 in the working directory.
///
/// Exit codes: 0 success, 1 failure, 2 usage error. With --json, output and errors are JSON.
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
    /// Print a shell completion script, e.g. `plainjobs completions bash >
    /// /etc/bash_completion.d/plainjobs` (or ~/.local/share/bash-completion/completions/),
    /// `plainjobs completions zsh > ~/.zfunc/_plainjobs`, `plainjobs completions fish >
    /// ~/.config/fish/completions/plainjobs.fish`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Parses the command line. A usage error is printed by clap (exit 2), or as JSON when
/// `--json` was given, so that a script asking for JSON always gets JSON.
fn parse() -> Result<Cli, ExitCode> {
    match Cli::try_parse() {
        Ok(cli) => Ok(cli),
        Err(e) => {
            let wants_json = std::env::args().any(|a| a == "--json");
            if !wants_json || !e.use_stderr() {
                e.exit();
            }
            let message = e.kind().as_str().map_or_else(
                || e.render().to_string(),
                |kind| format!("{kind}: {}", e.render()),
            );
            CliError::Usage(message.trim().to_string()).print(true);
            Err(ExitCode::from(2))
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let json = cli.global.json;
    let default_level = match &cli.command {
        Top::Jobs(Command::Worker(_)) => "info",
        Top::Jobs(_) | Top::Completions { .. } => "warn",
        // The demo's own view shows what happens; logs only for real trouble.
        Top::Demo(_) => "error",
    };
    let mut logs = cli.logs.clone();
    if json {
        logs.log_format = logging::LogFormat::Json;
    }
    // OTLP from the standard OTEL_* variables; with none set, nothing at all.
    let telemetry = match Telemetry::from_env() {
        Ok(telemetry) => telemetry,
        Err(e) => {
            CliError::Usage(e.to_string()).print(json);
            return ExitCode::from(2);
        }
    };
    if let Err(e) = logging::init(&logs, default_level, telemetry.tracing_layer()) {
        CliError::Usage(e).print(json);
        return ExitCode::from(2);
    }
    let outcome = match cli.command {
        Top::Jobs(command) => {
            cli::run_with_telemetry(cli.global, command, Registry::new(), telemetry).await
        }
        Top::Demo(args) => demo::run(cli.global, args).await,
        Top::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "plainjobs",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            e.print(json);
            ExitCode::from(e.exit_code())
        }
    }
}
