//! SQLite-only checks: the plans of the statements a drain runs for every batch.

use super::claim::claim_sql;
use super::finish::{DELETE_FINISHED, MARK_STARTED, RESULTS_FROM_PROCESSES};
use crate::testing::{test_jobs, Backend};

/// `EXPLAIN QUERY PLAN` of `sql`, one line per step.
async fn plan(pool: &sqlx::SqlitePool, sql: &str) -> String {
    let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}"))
        .fetch_all(pool)
        .await
        .expect("explain");
    rows.into_iter()
        .map(|(_, _, _, step)| step)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The result write looks each process up by its uuid: never a walk of the worker's processes
/// (through the `worker_id` index), each matched against the whole list.
#[tokio::test]
async fn the_result_write_looks_processes_up_by_uuid() {
    let jobs = test_jobs(Backend::Sqlite).await;
    let pool = jobs.sqlite_pool().expect("a SQLite pool");
    for sql in [RESULTS_FROM_PROCESSES, MARK_STARTED, DELETE_FINISHED] {
        let plan = plan(pool, sql).await;
        assert!(
            plan.contains("plainjobs_jobprocess_1 (uuid=?)"),
            "{sql}\n{plan}"
        );
        assert!(!plan.contains("worker_id"), "{sql}\n{plan}");
        assert!(!plan.contains("SCAN p"), "{sql}\n{plan}");
    }
}

/// The claim reads the ready requests through the claim index and each picked request by its
/// id.
#[tokio::test]
async fn the_claim_walks_the_claim_index() {
    let jobs = test_jobs(Backend::Sqlite).await;
    let pool = jobs.sqlite_pool().expect("a SQLite pool");
    let plan = plan(pool, &claim_sql(1, false)).await;
    assert!(
        plan.contains(
            "SEARCH plainjobs_jobrequest USING INDEX plainjobs_jobrequest_claim_idx (queue=?)"
        ),
        "{plan}"
    );
    assert!(
        plan.contains("SEARCH r USING INTEGER PRIMARY KEY (rowid=?)"),
        "{plan}"
    );
}
