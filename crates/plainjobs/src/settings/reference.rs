//! Every setting, described once: the configuration reference that `plainjobs config` prints
//! and docs/configuration.md explains at length.

/// One setting: its file key, its environment variable, its default and what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SettingInfo {
    /// The key in plainjobs.toml.
    pub key: &'static str,
    /// The environment variable.
    pub env: &'static str,
    /// The default, as it would be written.
    pub default: &'static str,
    /// What it is for, and its format.
    pub about: &'static str,
}

const fn info(
    key: &'static str,
    env: &'static str,
    default: &'static str,
    about: &'static str,
) -> SettingInfo {
    SettingInfo {
        key,
        env,
        default,
        about,
    }
}

/// Every setting, in the order `plainjobs config` shows them.
///
/// # Example
/// ```
/// let keys: Vec<&str> = plainjobs::settings::REFERENCE.iter().map(|s| s.key).collect();
/// assert!(keys.contains(&"retention"));
/// ```
pub const REFERENCE: &[SettingInfo] = &[
    info(
        "database_url",
        "PLAINJOBS_DATABASE_URL",
        "sqlite://plainjobs.sqlite3",
        "postgres://USER:PASSWORD@HOST/DB (add ?pooler=transaction behind a transaction-mode pooler such as PgBouncer) or sqlite://FILE; DATABASE_URL is read when PLAINJOBS_DATABASE_URL is unset or empty",
    ),
    info(
        "queues",
        "PLAINJOBS_QUEUES",
        "[\"default\"]",
        "queues a worker serves (a list in the file, comma-separated in the environment)",
    ),
    info("concurrency", "PLAINJOBS_CONCURRENCY", "10", "jobs a worker runs at once (at least 1)"),
    info(
        "max_pending",
        "PLAINJOBS_MAX_PENDING",
        "200",
        "jobs a worker may claim ahead of a free slot (only as many as start within ~50 ms)",
    ),
    info("retention", "PLAINJOBS_RETENTION", "7d", "how long results are kept (a duration)"),
    info(
        "heartbeat_interval",
        "PLAINJOBS_HEARTBEAT_INTERVAL",
        "1m",
        "how often a worker writes its heartbeat (a duration)",
    ),
    info(
        "heartbeat_timeout",
        "PLAINJOBS_HEARTBEAT_TIMEOUT",
        "5m",
        "heartbeat age after which a worker counts as dead and its jobs are rescued as LOST",
    ),
    info(
        "stats_every",
        "PLAINJOBS_STATS_EVERY",
        "1m",
        "how often a busy worker logs its stats line (0 = never; an idle worker logs none)",
    ),
    info(
        "shutdown_timeout",
        "PLAINJOBS_SHUTDOWN_TIMEOUT",
        "0",
        "after a stop request, cancel jobs still running after this long (0 = wait for them)",
    ),
    info(
        "poll_interval",
        "PLAINJOBS_POLL_INTERVAL",
        "1s",
        "longest a worker sleeps between claims when nothing wakes it",
    ),
    info(
        "listen",
        "PLAINJOBS_LISTEN",
        "true",
        "wake workers with LISTEN/NOTIFY (PostgreSQL); behind a transaction-mode pooler (pooler=transaction in the URL) only what this process does (enqueues, cancels, pauses) wakes them",
    ),
    info(
        "timezone",
        "PLAINJOBS_TIMEZONE",
        "UTC",
        "IANA time zone of cron schedules, e.g. Europe/Berlin",
    ),
    info(
        "schedule",
        "PLAINJOBS_SCHEDULE",
        "[]",
        "cron schedules: [[\"job name or cmd:COMMAND\", \"CRON\"], …] in the file, target=CRON;… in the environment",
    ),
    info(
        "admin_token",
        "PLAINJOBS_ADMIN_TOKEN",
        "(none)",
        "the dashboard's sign-in token (Bearer, or as the Basic password); needed to serve it beyond loopback",
    ),
    info(
        "admin_username",
        "PLAINJOBS_ADMIN_USERNAME",
        "admin",
        "the dashboard's sign-in user name (with admin_password)",
    ),
    info(
        "admin_password",
        "PLAINJOBS_ADMIN_PASSWORD",
        "(none)",
        "the dashboard's sign-in password (with admin_username)",
    ),
    info(
        "admin_read_only",
        "PLAINJOBS_ADMIN_READ_ONLY",
        "false",
        "the dashboard shows everything and changes nothing",
    ),
];
