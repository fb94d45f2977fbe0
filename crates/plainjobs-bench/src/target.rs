//! The database a benchmark runs against: its URL, the schema it owns, the label its rows carry,
//! and resetting it to empty, migrated tables before each phase.

use anyhow::{bail, Context};
use plainjobs::{ConnectOptions, Jobs};

/// Where to run. Every subcommand takes these.
#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    /// `postgres://…` on loopback, or `sqlite://FILE` (the file is recreated per phase; an
    /// existing file is refused unless an earlier run made it, as its `FILE.bench` says).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/bench",
        hide_env_values = true
    )]
    pub database_url: String,
    /// The schema to drop, recreate and use (PostgreSQL).
    #[arg(long, default_value = "plainjobs_bench")]
    pub schema: String,
    /// The label of this cluster in the rows (e.g. `prod`, `ci`, `sqlite`).
    #[arg(long, env = "BENCH_CLUSTER", default_value = "")]
    pub cluster: String,
    /// The server's log file, where `log_lock_waits` reports waits longer than
    /// `deadlock_timeout` (scripts/bench passes its own cluster's).
    #[arg(long, env = "BENCH_SERVER_LOG")]
    pub server_log: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Target {
    pub fn check(&self) -> anyhow::Result<()> {
        let s = &self.schema;
        let ident = !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !s.starts_with(|c: char| c.is_ascii_digit());
        if !ident {
            bail!("--schema must be a lowercase identifier ([a-z_][a-z0-9_]*), got {s:?}");
        }
        if self.backend() == Backend::Postgres && !is_loopback(&self.database_url) {
            bail!(
                "refusing a database that is not on loopback: {}",
                plainjobs::redact_url(&self.database_url)
            );
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        if self.database_url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }

    /// The rows' cluster label: `--cluster`, else the backend.
    pub fn label(&self) -> String {
        match (self.cluster.is_empty(), self.backend()) {
            (false, _) => self.cluster.clone(),
            (true, Backend::Sqlite) => "sqlite".into(),
            (true, Backend::Postgres) => "postgres".into(),
        }
    }

    /// The URL the library connects to: PostgreSQL with `search_path` set to our schema.
    pub fn jobs_url(&self) -> String {
        match self.backend() {
            Backend::Sqlite => self.database_url.clone(),
            Backend::Postgres => with_param(
                &self.database_url,
                &format!("options=-c%20search_path%3D{}", self.schema),
            ),
        }
    }

    /// A URL for libpq's tools (psql, pgbench) and the peers: no TLS, like the library's own
    /// connections (Debian's stock config turns `ssl` on, and libpq would prefer it).
    pub fn libpq_url(&self) -> String {
        if self.database_url.contains("sslmode=") {
            self.database_url.clone()
        } else {
            with_param(&self.database_url, "sslmode=disable")
        }
    }

    /// The same server, another database (created if missing).
    pub async fn sibling_database(&self, name: &str) -> anyhow::Result<Target> {
        let (base, query) = match self.database_url.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (self.database_url.as_str(), String::new()),
        };
        let Some((server, _db)) = base.rsplit_once('/') else {
            bail!("no database in the URL");
        };
        let mut probe = crate::server::connect(&self.jobs_url()).await?;
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
                .bind(name)
                .fetch_optional(&mut probe)
                .await?;
        if exists.is_none() {
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut probe)
                .await
                .with_context(|| format!("creating database {name}"))?;
        }
        Ok(Target {
            database_url: format!("{server}/{name}{query}"),
            ..self.clone()
        })
    }

    /// The file behind a `sqlite://` URL.
    pub fn sqlite_path(&self) -> Option<&str> {
        (self.backend() == Backend::Sqlite).then(|| {
            self.database_url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:")
        })
    }

    /// Empty, migrated tables: the schema dropped and recreated (PostgreSQL), or a new file
    /// (SQLite).
    pub async fn reset(&self) -> anyhow::Result<()> {
        match self.backend() {
            Backend::Sqlite => {
                let path = self.sqlite_path().unwrap_or_default();
                check_ours(path)?;
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{path}{suffix}"));
                }
                std::fs::write(
                    marker(path),
                    "made by plainjobs-bench, which recreates it\n",
                )
                .with_context(|| format!("writing {}", marker(path)))?;
            }
            Backend::Postgres => {
                let mut probe = crate::server::connect(&self.jobs_url()).await?;
                sqlx::raw_sql(&format!(
                    "DROP SCHEMA IF EXISTS {s} CASCADE; CREATE SCHEMA {s}",
                    s = self.schema
                ))
                .execute(&mut probe)
                .await
                .context("resetting the schema")?;
            }
        }
        let jobs = self.connect(2).await?;
        jobs.migrate().await.context("migrate")?;
        close(&jobs).await;
        Ok(())
    }

    /// A `Jobs` handle with a pool of `max_connections` (recording telemetry when asked).
    pub async fn connect(&self, max_connections: u32) -> anyhow::Result<Jobs> {
        let jobs = self.connect_plain(max_connections).await?;
        Ok(crate::telemetry::observed(jobs))
    }

    async fn connect_plain(&self, max_connections: u32) -> anyhow::Result<Jobs> {
        Jobs::connect_with(
            &self.jobs_url(),
            ConnectOptions {
                max_connections,
                ..Default::default()
            },
        )
        .await
        .with_context(|| {
            format!(
                "connecting to {}",
                plainjobs::redact_url(&self.database_url)
            )
        })
    }
}

/// Closes a handle's pool, so its connections are gone before the next phase counts any.
pub async fn close(jobs: &Jobs) {
    if let Some(pool) = jobs.pg_pool() {
        pool.close().await;
    }
    if let Some(pool) = jobs.sqlite_pool() {
        pool.close().await;
    }
}

pub fn with_param(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

fn is_loopback(url: &str) -> bool {
    let host = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.split(['/', '?']).next())
        .map(|auth| auth.rsplit_once('@').map_or(auth, |(_, h)| h))
        .map(|hp| hp.rsplit_once(':').map_or(hp, |(h, _)| h))
        .unwrap_or_default();
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

/// The file beside a SQLite database that says the benchmark made it.
fn marker(path: &str) -> String {
    format!("{path}.bench")
}

/// Refuses to delete a SQLite file the benchmark did not make (an application's own queue).
fn check_ours(path: &str) -> anyhow::Result<()> {
    let exists = std::path::Path::new(path).exists();
    if exists && !std::path::Path::new(&marker(path)).exists() {
        bail!(
            "refusing to recreate {path}: the benchmark deletes its database before each phase, \
             and this file was not made by it (no {}); give --database-url a new file",
            marker(path)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_pass() {
        assert!(is_loopback("postgres://postgres@127.0.0.1:5432/bench"));
        assert!(is_loopback("postgres://u:p@localhost/bench?x=1"));
        assert!(!is_loopback("postgres://postgres@10.0.0.1:5432/bench"));
        assert!(!is_loopback("postgres://db.example:5432/bench"));
    }
}
