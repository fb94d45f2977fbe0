//! `Store::migrate` and the migration runner.

use sqlx::postgres::PgPool;

use super::Bed;
use crate::store::migrate::{apply, Migration};
use crate::store::postgres::PgStore;
use crate::store::sql::SqlBackend;
use crate::store::sqlite::SqliteStore;
use crate::testing::{conformance, Backend, FreshDb, Raw};
use crate::Error;

/// A database migrated already is left as it is: no step runs again.
async fn migrating_again_changes_nothing(backend: Backend) {
    let bed = Bed::new(backend).await;
    let history = "SELECT count(*) FROM plainjobs_rs_migrations";
    let steps = bed.db.count(history).await;
    assert!(steps > 0);
    bed.store().migrate().await.unwrap();
    bed.store().migrate().await.unwrap();
    assert_eq!(bed.db.count(history).await, steps);
    assert_eq!(
        bed.db
            .count("SELECT count(*) FROM plainjobs_jobrequest")
            .await,
        0
    );
}

/// The status reads without changing anything: an empty database has no tables and every
/// migration pending (and stays empty); after `migrate`, nothing is pending.
async fn migration_status_reads_what_is_applied(backend: Backend) {
    let db = FreshDb::create(backend).await;
    let jobs = crate::Jobs::connect(&db.url).await.unwrap();
    let store = jobs.store();
    let before = store.migration_status().await.unwrap();
    assert!(!before.tables_exist, "{before:?}");
    assert!(before.applied.is_empty(), "{before:?}");
    assert!(!before.pending.is_empty(), "{before:?}");
    assert!(!before.is_current());
    let again = store.migration_status().await.unwrap();
    assert_eq!(again, before, "reading the status created nothing");
    store.migrate().await.unwrap();
    let after = store.migration_status().await.unwrap();
    assert!(after.tables_exist && after.pending.is_empty(), "{after:?}");
    assert!(after.is_current());
    let versions: Vec<i64> = before.pending.iter().map(|(v, _)| *v).collect();
    assert_eq!(after.applied, versions);
    drop(jobs);
    db.remove().await;
}

const CREATE_ONE: Migration = Migration {
    version: 1,
    name: "one",
    // Not idempotent: it fails if it runs twice.
    statements: &["CREATE TABLE runner_one (x INTEGER)"],
};
const CREATE_TWO: Migration = Migration {
    version: 2,
    name: "two",
    statements: &["CREATE TABLE runner_two (x INTEGER)"],
};
const BROKEN_TWO: Migration = Migration {
    version: 2,
    name: "two",
    statements: &["CREATE TABLE runner_two (x INTEGER)", "NOT SQL AT ALL"],
};

/// The runner applies the pending steps in order, all in one transaction: a failing step
/// names itself and leaves nothing behind (not even the history table); applied steps are
/// skipped later.
async fn the_runner_applies_pending_steps_all_or_nothing<B: SqlBackend>(backend: &B, raw: &Raw) {
    let failed = apply(backend, &[CREATE_ONE, BROKEN_TWO]).await.unwrap_err();
    assert!(
        matches!(
            failed,
            Error::Migration {
                version: 2,
                name: "two",
                ..
            }
        ),
        "{failed:?}"
    );
    for table in ["runner_one", "runner_two", "plainjobs_rs_migrations"] {
        let sql = format!("SELECT count(*) FROM {table}");
        assert!(
            raw.try_count(&sql).await.is_err(),
            "{table} was rolled back"
        );
    }
    apply(backend, &[CREATE_ONE]).await.unwrap();
    apply(backend, &[CREATE_ONE, CREATE_TWO]).await.unwrap();
    let history = raw
        .try_count("SELECT count(*) FROM plainjobs_rs_migrations")
        .await;
    assert_eq!(history.unwrap(), 2);
    let two = raw.try_count("SELECT count(*) FROM runner_two").await;
    assert_eq!(two.unwrap(), 0);
}

async fn migration_runner(backend: Backend) {
    let db = FreshDb::create(backend).await;
    match backend {
        Backend::Postgres => {
            let pool = PgPool::connect(&db.url).await.unwrap();
            let raw = Raw::Pg(pool.clone());
            the_runner_applies_pending_steps_all_or_nothing(&PgStore::new(pool), &raw).await;
        }
        Backend::Sqlite => {
            let store = SqliteStore::open(&db.url, 2).await.unwrap();
            let raw = Raw::Sqlite(store.pool().clone());
            the_runner_applies_pending_steps_all_or_nothing(&store, &raw).await;
        }
    }
    db.remove().await;
}

conformance!(
    migrating_again_changes_nothing,
    migration_status_reads_what_is_applied,
    migration_runner
);
