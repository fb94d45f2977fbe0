//! Test support for this crate's own tests, its integration tests and the CLI's: a database of
//! its own per test on either backend, raw SQL access to it, and [`conformance!`], which makes
//! one test per backend. Not part of the API (the `testing` feature turns it on for tests).
//!
//! PostgreSQL tests each get a new schema on the server `TEST_DATABASE_URL` names (else
//! `DATABASE_URL`, else the local server), which `scripts/test` points at a fresh database;
//! SQLite tests each get a new file under the target directory.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use sqlx::{PgPool, SqlitePool};

use crate::{JobResult, Jobs};

/// The backends tests run against (the crate's own [`Backend`](crate::Backend)).
pub use crate::Backend;

mod pooler;
pub use pooler::transaction_pooling;

#[cfg(test)]
pub(crate) mod faulty;
#[cfg(test)]
pub(crate) use faulty::FaultyStore;

/// Generates one test per backend for each named `async fn(Backend)`: `postgres::name` and
/// `sqlite::name`, each failed if it runs longer than [`HANG_LIMIT`].
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $( #[tokio::test] async fn $name() {
                $crate::testing::within_limit(super::$name($crate::testing::Backend::Postgres)).await
            } )*
        }
        mod sqlite {
            $( #[tokio::test] async fn $name() {
                $crate::testing::within_limit(super::$name($crate::testing::Backend::Sqlite)).await
            } )*
        }
    };
}
pub use crate::__conformance as conformance;

/// How long a test may run before it counts as hung.
pub const HANG_LIMIT: Duration = Duration::from_secs(180);

/// Fails a test that hangs instead of letting it hold up the whole run.
pub async fn within_limit(test: impl Future<Output = ()>) {
    if tokio::time::timeout(HANG_LIMIT, test).await.is_err() {
        panic!("the test did not finish within {HANG_LIMIT:?} (a hang)");
    }
}

/// The PostgreSQL server to test against: `TEST_DATABASE_URL`, else `DATABASE_URL`, else the
/// local server.
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// `url` with a `search_path` (and `application_name`, to find a test's sessions) set through
/// connection options.
fn url_for_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}&application_name={schema}")
}

/// Where SQLite test databases go: `tmp/plainjobs-test-dbs` in the target directory (the
/// nearest directory above the test executable that cargo tagged), else the system's.
fn sqlite_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let target = exe
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map(|dir| dir.join("tmp"));
    target
        .unwrap_or_else(std::env::temp_dir)
        .join("plainjobs-test-dbs")
}

fn init_logs() {
    // Logs with RUST_LOG=plainjobs=debug (shown for failing tests).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A database of its own for one test, empty: a new schema on the test server, or a new
/// SQLite file.
#[derive(Debug, Clone)]
pub struct FreshDb {
    pub backend: Backend,
    /// The schema (PostgreSQL) or file stem (SQLite): unique to the test.
    pub name: String,
    /// Its URL (for PostgreSQL, with the schema as `search_path`).
    pub url: String,
}

impl FreshDb {
    /// Creates it.
    pub async fn create(backend: Backend) -> FreshDb {
        init_logs();
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let url = match backend {
            Backend::Postgres => {
                let admin = PgPool::connect(&server_url())
                    .await
                    .expect("test database reachable (run scripts/test)");
                sqlx::query(&format!("CREATE SCHEMA {name}"))
                    .execute(&admin)
                    .await
                    .expect("create schema");
                admin.close().await;
                url_for_schema(&server_url(), &name)
            }
            Backend::Sqlite => {
                let dir = sqlite_dir();
                std::fs::create_dir_all(&dir).expect("a directory for SQLite test databases");
                format!("sqlite://{}", dir.join(format!("{name}.sqlite3")).display())
            }
        };
        FreshDb { backend, name, url }
    }

    /// Drops the schema, or deletes the file.
    pub async fn remove(&self) {
        match self.backend {
            Backend::Postgres => {
                let admin = PgPool::connect(&server_url())
                    .await
                    .expect("test database reachable");
                sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
                    .execute(&admin)
                    .await
                    .expect("drop schema");
                admin.close().await;
            }
            Backend::Sqlite => {
                let file = sqlite_dir().join(format!("{}.sqlite3", self.name));
                for suffix in ["", "-wal", "-shm"] {
                    let mut path = file.clone().into_os_string();
                    path.push(suffix);
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }

    /// A migrated [`Jobs`] on it.
    pub async fn jobs(&self) -> Jobs {
        let jobs = Jobs::connect(&self.url).await.expect("connect");
        jobs.migrate().await.expect("migrate");
        jobs
    }

    /// A migrated [`Jobs`] on it, with raw SQL access.
    pub async fn migrated(self) -> TestDb {
        let jobs = self.jobs().await;
        let raw = match self.backend {
            // A pool of its own, so that raw statements never wait behind a worker's.
            Backend::Postgres => Raw::Pg(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(4)
                    .connect(&self.url)
                    .await
                    .expect("pool"),
            ),
            Backend::Sqlite => Raw::Sqlite(jobs.sqlite_pool().expect("a SQLite pool").clone()),
        };
        TestDb {
            backend: self.backend,
            schema: self.name,
            url: self.url,
            jobs,
            raw,
        }
    }
}

/// A fresh migrated database: a [`Jobs`] on it and raw SQL access. In the pass through a
/// pooler (`TEST_POOLER_URL`), a PostgreSQL one is a database of its own behind the pooler.
pub async fn test_db_for(backend: Backend) -> TestDb {
    if let (Backend::Postgres, Some(pooler)) = (backend, pooler::pooler_url()) {
        return pooler::pooled_test_db(&pooler).await;
    }
    FreshDb::create(backend).await.migrated().await
}

/// [`test_db_for`] PostgreSQL.
pub async fn test_db() -> TestDb {
    test_db_for(Backend::Postgres).await
}

/// [`test_db_for`] SQLite.
pub async fn sqlite_test_db() -> TestDb {
    test_db_for(Backend::Sqlite).await
}

/// A migrated [`Jobs`] on a fresh database, for tests that need no raw SQL.
pub async fn test_jobs(backend: Backend) -> Jobs {
    FreshDb::create(backend).await.jobs().await
}

/// Raw SQL access to a test's database (for what only raw SQL can set up or check).
#[derive(Debug, Clone)]
pub enum Raw {
    Pg(PgPool),
    Sqlite(SqlitePool),
}

impl Raw {
    /// Runs a `SELECT count(*) …` (or any one-integer query).
    pub async fn try_count(&self, sql: &str) -> Result<i64, sqlx::Error> {
        match self {
            Raw::Pg(p) => sqlx::query_scalar(sql).fetch_one(p).await,
            Raw::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await,
        }
    }

    /// Runs a statement.
    pub async fn try_exec(&self, sql: &str) -> Result<u64, sqlx::Error> {
        Ok(match self {
            Raw::Pg(p) => sqlx::query(sql).execute(p).await?.rows_affected(),
            Raw::Sqlite(p) => sqlx::query(sql).execute(p).await?.rows_affected(),
        })
    }
}

/// A fresh migrated database for one test.
pub struct TestDb {
    pub backend: Backend,
    /// The schema (PostgreSQL) or file stem (SQLite): unique per test.
    pub schema: String,
    pub url: String,
    pub jobs: Jobs,
    pub raw: Raw,
}

impl TestDb {
    /// Runs a portable `SELECT count(*) …` (or any one-integer query).
    pub async fn count(&self, sql: &str) -> i64 {
        self.try_count(sql).await.expect(sql)
    }

    pub async fn try_count(&self, sql: &str) -> Result<i64, sqlx::Error> {
        self.raw.try_count(sql).await
    }

    /// Runs a portable statement.
    pub async fn exec(&self, sql: &str) {
        self.raw.try_exec(sql).await.expect(sql);
    }

    /// The SQL for "now" in this backend's time representation.
    pub fn now_sql(&self) -> String {
        match self.backend {
            Backend::Postgres => "now()".into(),
            Backend::Sqlite => chrono::Utc::now().timestamp_micros().to_string(),
        }
    }

    /// The SQL for "`secs` seconds ago".
    pub fn ago_sql(&self, secs: i64) -> String {
        match self.backend {
            Backend::Postgres => format!("(now() - interval '{secs} seconds')"),
            Backend::Sqlite => {
                (chrono::Utc::now().timestamp_micros() - secs * 1_000_000).to_string()
            }
        }
    }

    /// A new uuid as an SQL literal.
    pub fn uuid_sql(&self) -> String {
        format!("'{}'", uuid::Uuid::new_v4())
    }

    /// Inserts a request exactly as plain.jobs writes one (raw SQL, no trigger bypassed).
    pub async fn insert_raw_request(
        &self,
        job_class: &str,
        parameters: &str,
        key: &str,
        start_at: Option<String>,
    ) {
        let (parameters, key) = (parameters.replace('\'', "''"), key.replace('\'', "''"));
        let sql = format!(
            "INSERT INTO plainjobs_jobrequest (created_at, uuid, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, start_at)
             VALUES ({}, {}, '{job_class}', '{parameters}', 0, '/srv/app/app/views.py:87', 'default', 0, 0, '{key}', {})",
            self.now_sql(),
            self.uuid_sql(),
            start_at.unwrap_or_else(|| "NULL".into())
        );
        self.exec(&sql).await;
    }

    /// Every result, oldest first.
    pub async fn results(&self) -> Vec<JobResult> {
        let mut r = self
            .jobs
            .results(&crate::ResultFilter::new().limit(100_000))
            .await
            .expect("results");
        r.sort_by_key(|r| r.id);
        r
    }

    /// How many requests are pending.
    pub async fn requests(&self) -> i64 {
        self.count("SELECT count(*) FROM plainjobs_jobrequest")
            .await
    }

    /// How many processes there are.
    pub async fn processes(&self) -> i64 {
        self.count("SELECT count(*) FROM plainjobs_jobprocess")
            .await
    }
}
