//! Each backend's errors as kinds: what a failure means for whether the statement may have
//! committed and whether trying again may work.

use std::time::Duration;

use sqlx::Connection;

use super::{request, Bed};
use crate::error::DbErrorKind;
use crate::model::new_uuid;
use crate::store::sqlite::SqliteStore;
use crate::store::{NewHeartbeat, NewRequest, Store};
use crate::testing::{conformance, Backend, Raw};

/// PostgreSQL: a session the server ends while a statement waits (an administrator's
/// `pg_terminate_backend`, a restart) may have committed, and is worth retrying; a value the
/// schema cannot hold is refused for good.
async fn postgres_errors(bed: &Bed) {
    let Raw::Pg(raw) = &bed.db.raw else {
        unreachable!("a PostgreSQL database")
    };
    let mut holder = raw.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(4242)")
        .execute(&mut *holder)
        .await
        .unwrap();
    let mut tx = bed.store().begin().await.unwrap();
    let terminate = async {
        // The transaction's session, once it waits for the lock.
        loop {
            let pid: Option<i32> = sqlx::query_scalar(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1
                 AND wait_event_type = 'Lock' AND query LIKE '%pg_advisory_xact_lock%'",
            )
            .bind(&bed.db.schema)
            .fetch_optional(raw)
            .await
            .unwrap();
            if let Some(pid) = pid {
                sqlx::query("SELECT pg_terminate_backend($1)")
                    .bind(pid)
                    .execute(raw)
                    .await
                    .unwrap();
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (locked, ()) = tokio::join!(tx.advisory_lock(4242), terminate);
    let ended = locked.unwrap_err();
    assert_eq!(ended.db_kind(), Some(DbErrorKind::Terminated), "{ended}");
    assert!(ended.may_have_committed() && ended.is_transient());
    drop(tx);
    holder.close().await.unwrap();

    // PostgreSQL's text holds no NUL character: refused for what it holds.
    let unstorable = NewRequest {
        queue: "q\0q".into(),
        ..request("job")
    };
    let mut conn = bed.store().autocommit().await.unwrap();
    let refused = conn.insert_requests(vec![unstorable]).await.unwrap_err();
    assert_eq!(refused.db_kind(), Some(DbErrorKind::Rejected), "{refused}");
    assert!(!refused.may_have_committed() && !refused.is_transient());
}

/// SQLite: a write that waited out the busy timeout behind another connection's write lock
/// rolled back (it did not commit) and is worth retrying.
async fn sqlite_errors(bed: &Bed) {
    let url = &bed.db.url;
    let store = SqliteStore::open_with_busy_timeout(url, 2, Duration::from_millis(100))
        .await
        .unwrap();
    let mut holder = sqlx::SqliteConnection::connect(url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();
    let hb = NewHeartbeat {
        worker_id: new_uuid(),
        hostname: "busy".into(),
        pid: 1,
        queues: vec!["default".into()],
    };
    let busy = store.heartbeat(&hb).await.unwrap_err();
    assert_eq!(busy.db_kind(), Some(DbErrorKind::Conflict), "{busy}");
    assert!(!busy.may_have_committed() && busy.is_transient());
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    assert!(
        store.heartbeat(&hb).await.unwrap(),
        "written once the lock is free"
    );
}

/// Each backend maps its own codes; callers see the kinds.
async fn failures_say_whether_they_may_have_committed(backend: Backend) {
    let bed = Bed::new(backend).await;
    match backend {
        Backend::Postgres => postgres_errors(&bed).await,
        Backend::Sqlite => sqlite_errors(&bed).await,
    }
}

conformance!(failures_say_whether_they_may_have_committed);
