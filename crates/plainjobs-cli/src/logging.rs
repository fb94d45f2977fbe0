//! Logs of the `plainjobs` command: text (colours only on a terminal) or JSON lines, to stderr.

use std::io::IsTerminal;

use clap::{Args, ValueEnum};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One readable line per event; colours only when stderr is a terminal.
    Text,
    /// One JSON object per line (for log shippers), with the span's fields (job uuids, queue).
    Json,
}

/// Logging options every subcommand takes.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log level: error, warn, info, debug or trace, or a filter such as
    /// "plainjobs=debug,sqlx=warn". Default: RUST_LOG when set, else info for the worker and
    /// warn for the other commands.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
}

const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// A `--log-level`: one of the levels, or a filter with targets (`plainjobs=debug,sqlx=warn`).
/// A single word must be a level: `EnvFilter` would take any word for a target name.
fn filter_for(level: &str) -> Result<EnvFilter, String> {
    let is_filter = level.contains(['=', ',']);
    if !is_filter && !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "--log-level {level:?} is not a level (use {}) or a filter such as plainjobs=debug",
            LEVELS.join(", ")
        ));
    }
    EnvFilter::try_new(level)
        .map_err(|e| format!("--log-level {level:?} is not a level or filter: {e}"))
}

/// Installs the subscriber: the log lines, filtered by `--log-level`/`RUST_LOG`, and, when
/// `otel` is given (OpenTelemetry traces are on), the layer that exports spans at `info` and
/// above whatever the log level. A log line that cannot be written is dropped: with stderr a
/// pipe whose reader went away (a dead `| tee`, a restarting log shipper) the worker carries
/// on. (The subscriber's own report of a failed write would go to that same stderr with
/// `eprintln!`, whose panic would kill whichever task was logging.)
pub fn init<L>(args: &LogArgs, default_level: &str, otel: Option<L>) -> Result<(), String>
where
    L: Layer<Registry> + Send + Sync + 'static,
{
    let filter = match &args.log_level {
        Some(level) => filter_for(level)?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
    };
    let lines = match args.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .log_internal_errors(false)
            .with_ansi(std::io::stderr().is_terminal())
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .log_internal_errors(false)
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    let otel = otel.map(|layer| layer.with_filter(EnvFilter::new("info")));
    let _ = tracing_subscriber::registry()
        .with(otel)
        .with(lines.with_filter(filter))
        .try_init();
    Ok(())
}
