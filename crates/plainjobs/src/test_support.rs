//! Support for the crate's own tests that need a database: a fresh one per test, on either
//! backend (the same servers and conventions as the behaviour suite in `tests/`).

use crate::Jobs;

/// The backends the crate's tests run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Postgres,
    Sqlite,
}

/// Generates one test per backend for each named `async fn(Backend)`: `postgres::name` and
/// `sqlite::name` (as `conformance!` in `tests/common` does).
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $( #[tokio::test] async fn $name() {
                super::$name($crate::test_support::Backend::Postgres).await
            } )*
        }
        mod sqlite {
            $( #[tokio::test] async fn $name() {
                super::$name($crate::test_support::Backend::Sqlite).await
            } )*
        }
    };
}
pub(crate) use conformance;

/// A fresh database: a new schema on PostgreSQL (`TEST_DATABASE_URL`, else `DATABASE_URL`,
/// else the local server) or a new SQLite file, migrated.
pub(crate) async fn test_jobs(backend: Backend) -> Jobs {
    // Logs with RUST_LOG=plainjobs=debug (shown for failing tests).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let name = format!("u_{}", crate::model::new_uuid().simple());
    let url = match backend {
        Backend::Postgres => {
            let base = std::env::var("TEST_DATABASE_URL")
                .or_else(|_| std::env::var("DATABASE_URL"))
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
            let admin = sqlx::PgPool::connect(&base)
                .await
                .expect("test database reachable (run scripts/test)");
            sqlx::query(&format!("CREATE SCHEMA {name}"))
                .execute(&admin)
                .await
                .expect("create schema");
            admin.close().await;
            let sep = if base.contains('?') { '&' } else { '?' };
            format!("{base}{sep}options=-c%20search_path%3D{name}")
        }
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join("plainjobs-unit-tests");
            std::fs::create_dir_all(&dir).expect("temp dir");
            format!("sqlite://{}", dir.join(format!("{name}.sqlite3")).display())
        }
    };
    let jobs = Jobs::connect(&url).await.expect("connect");
    jobs.migrate().await.expect("migrate");
    jobs
}
