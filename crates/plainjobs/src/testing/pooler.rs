//! The opt-in pass through a connection pooler: with TEST_POOLER_URL set (scripts/test sets it
//! to a PgBouncer it started), every PostgreSQL test gets a fresh database reached through the
//! pooler instead of a schema reached directly. PgBouncer does not pass the `options` startup
//! parameter on, so a per-test `search_path` cannot be selected through it; a database per
//! test needs nothing but the pooler's `*` entry. TEST_POOLER_MODE=transaction says so in the
//! URL (`pooler=transaction`), as a user must behind a transaction-mode pooler: nothing else.

use std::str::FromStr;

use sqlx::PgPool;

use super::{init_logs, server_url, Backend, Raw, TestDb};
use crate::Jobs;

/// The pooler's URL without a database (`postgres://user@host:port`), when this pass is on.
pub fn pooler_url() -> Option<String> {
    std::env::var("TEST_POOLER_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// Whether this pass is through a transaction-mode pooler (where no worker can LISTEN).
pub fn transaction_pooling() -> bool {
    std::env::var("TEST_POOLER_MODE").is_ok_and(|m| m == "transaction")
}

/// A new database (created directly on the server) with the plainjobs tables, and a `Jobs` on
/// it through the pooler.
pub(super) async fn pooled_test_db(pooler: &str) -> TestDb {
    init_logs();
    let name = format!("pjpool_{}", uuid::Uuid::new_v4().simple());
    let admin = PgPool::connect(&server_url())
        .await
        .expect("test server reachable (run scripts/test)");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .expect("create database");
    admin.close().await;
    // The pooler parameter first: tests add to the application name at the end.
    let mode = if transaction_pooling() {
        "pooler=transaction&"
    } else {
        ""
    };
    let url = format!(
        "{}/{name}?{mode}application_name={name}",
        pooler.trim_end_matches('/')
    );
    let jobs = Jobs::connect(&url)
        .await
        .expect("connect through the pooler");
    jobs.migrate().await.expect("migrate through the pooler");
    // The tests' own SQL (set-up and inspection) goes straight to the server: it is not what
    // is under test, and sqlx's named prepared statements, which the tests' own queries use,
    // fail behind a transaction-mode PgBouncer older than 1.21.
    let direct = sqlx::postgres::PgConnectOptions::from_str(&server_url())
        .expect("TEST_DATABASE_URL parses")
        .database(&name);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect_with(direct)
        .await
        .expect("direct pool");
    TestDb {
        backend: Backend::Postgres,
        schema: name,
        url,
        jobs,
        raw: Raw::Pg(pool),
    }
}
