//! `config`: the configuration in effect, each value with where it came from; `config --help`
//! has the reference of every setting.

use clap::Args;
use serde_json::{json, Value};

use crate::cli::error::CliError;
use crate::cli::output::{print_json, render, table};
use crate::cli::Ctx;
use crate::redact_url;
use crate::settings::{format_duration, Settings, REFERENCE};

/// `config` options (none: it shows what the global options, file and environment give).
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {}

/// The reference shown by `plainjobs config --help`: every setting, its variable and default.
pub(crate) fn reference() -> String {
    let mut out = String::from(
        "Settings come from, in increasing precedence: defaults, the file (./plainjobs.toml or \
         --config FILE), PLAINJOBS_* environment variables (DATABASE_URL when \
         PLAINJOBS_DATABASE_URL is unset or empty), and flags. An empty value counts as unset.\n\n\
         Durations are a number and a unit: 500ms, 90s, 5m, 2h, 7d, 1w, combined as 1h30m. A \
         bare number is refused (is `retention = 7` seconds or days?); 0 alone is allowed.\n\n\
         Settings (file key, environment variable, default):\n",
    );
    for s in REFERENCE {
        out.push_str(&format!(
            "\n  {}  ({}, default {})\n      {}\n",
            s.key, s.env, s.default, s.about
        ));
    }
    out.push_str(
        "\nLogs: --log-level LEVEL (or RUST_LOG, e.g. plainjobs=debug,sqlx=warn) and \
         --log-format text|json. More in docs/configuration.md.",
    );
    out
}

/// The value of `key` as it would be written in the file (the database URL without its
/// password).
fn value_of(s: &Settings, key: &str) -> String {
    let off = |d: Option<std::time::Duration>| d.map_or_else(|| "0 (off)".into(), format_duration);
    match key {
        "database_url" => redact_url(s.database_url_or_default()),
        "queues" => s.queues.join(","),
        "concurrency" => s.concurrency.to_string(),
        "max_pending" => s.max_pending.to_string(),
        "retention" => format_duration(s.retention),
        "heartbeat_interval" => format_duration(s.heartbeat_interval),
        "heartbeat_timeout" => format_duration(s.heartbeat_timeout),
        "stats_every" => off(s.stats_every),
        "shutdown_timeout" => off(s.shutdown_timeout),
        "poll_interval" => format_duration(s.poll_interval),
        "listen" => s.listen.to_string(),
        "timezone" => s.timezone.name().to_string(),
        "schedule" => {
            let pairs: Vec<String> = s
                .schedules
                .iter()
                .map(|(t, c)| format!("{t}={c}"))
                .collect();
            if pairs.is_empty() {
                "(none)".into()
            } else {
                pairs.join("; ")
            }
        }
        "admin_token" => hidden(s.admin_token.is_some()),
        "admin_username" => s.admin_username.clone().unwrap_or_else(|| "(none)".into()),
        "admin_password" => hidden(s.admin_password.is_some()),
        "admin_read_only" => s.admin_read_only.to_string(),
        _ => "?".into(),
    }
}

/// A secret is never shown, only whether it is set.
fn hidden(set: bool) -> String {
    if set { "(set, hidden)" } else { "(none)" }.into()
}

pub(crate) fn config(ctx: &Ctx, _args: ConfigArgs) -> Result<(), CliError> {
    let s = &ctx.settings;
    let file = s.file().map(|p| p.display().to_string());
    if ctx.json {
        let settings: Vec<Value> = REFERENCE
            .iter()
            .map(|r| json!({"key": r.key, "env": r.env, "value": value_of(s, r.key), "from": s.origin(r.key), "default": r.default}))
            .collect();
        return print_json(&json!({"file": file, "settings": settings}));
    }
    match &file {
        Some(f) => println!("configuration file: {f}"),
        None => println!(
            "configuration file: none (./plainjobs.toml does not exist; --config FILE names one)"
        ),
    }
    println!();
    let mut t = table(&["SETTING", "VALUE", "FROM"], &[]);
    for r in REFERENCE {
        t.add_row(vec![
            r.key.to_string(),
            value_of(s, r.key),
            s.origin(r.key).to_string(),
        ]);
    }
    println!("{}", render(&t));
    println!("\n`plainjobs config --help` describes each setting.");
    Ok(())
}
