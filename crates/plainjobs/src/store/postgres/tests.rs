//! PostgreSQL-only checks: the plans the claim and the key counts must keep, and the claim's
//! sessions set up as the application's pool sets up its connections.

use super::claim::claim_sql;
use super::*;
use crate::store::key_condition;
use sqlx::Connection;

use crate::testing::{test_jobs, Backend, FreshDb};

/// The generic plan a pinned session keeps for `sql`, prepared as `plan` with `types` and
/// explained as `EXECUTE plan(args)`.
async fn pinned_plan(store: &PgStore, types: &str, sql: &str, args: &str) -> String {
    let mut conn = store.pinned_session().await.expect("a pinned session");
    sqlx::raw_sql(&format!("PREPARE plan({types}) AS {sql}"))
        .execute(&mut conn)
        .await
        .expect("prepare");
    let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN EXECUTE plan({args})"))
        .fetch_all(&mut conn)
        .await
        .expect("explain");
    sqlx::raw_sql("DEALLOCATE plan")
        .execute(&mut conn)
        .await
        .expect("deallocate");
    store.keep_pinned_session(conn);
    plan.join("\n")
}

/// The plan the claim sessions keep for a one-queue claim.
async fn claim_plan(store: &PgStore) -> String {
    pinned_plan(
        store,
        "uuid, text[], int8, int8, uuid[]",
        &claim_sql(1, false, false),
        "gen_random_uuid(), '{default}', 110, 10, '{}'",
    )
    .await
}

/// The claim keeps one plan per session, and it is the claim index in claim order whether
/// the table was empty or full when the plan was made; no JIT.
#[tokio::test]
async fn the_claim_keeps_one_plan_on_the_claim_index() {
    let jobs = test_jobs(Backend::Postgres).await;
    let pool = jobs.pg_pool().expect("a PostgreSQL pool").clone();
    let store = PgStore::new(pool.clone(), Pooler::Session);
    for rows in [0, 5_000] {
        if rows > 0 {
            sqlx::query(
                "INSERT INTO plainjobs_jobrequest (created_at, uuid, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key)
                 SELECT now(), gen_random_uuid(), 'tests.Plan', '{\"args\": [], \"kwargs\": {}}', 0, '', CASE WHEN i % 2 = 0 THEN 'default' ELSE 'other' END, 0, 0, ''
                 FROM generate_series(1, $1) AS i",
            )
            .bind(rows)
            .execute(&pool)
            .await
            .expect("fill");
        }
        sqlx::query("ANALYZE plainjobs_jobrequest")
            .execute(&pool)
            .await
            .expect("analyze");
        let plan = claim_plan(&store).await;
        assert!(
            plan.contains("Index Scan using plainjobs_jobrequest_claim_excl"),
            "{rows} rows: {plan}"
        );
        assert!(!plan.contains("Seq Scan"), "{rows} rows: {plan}");
        assert!(!plan.contains("Bitmap"), "{rows} rows: {plan}");
        assert!(
            !plan.contains("Sort Key: plainjobs_jobrequest"),
            "{rows} rows: the index yields claim order\n{plan}"
        );
        assert!(!plan.contains("JIT"), "{rows} rows: {plan}");
        assert!(
            plan.contains("Index Cond: (id = ANY ($"),
            "{rows} rows: the delete looks rows up by id\n{plan}"
        );
    }
    let mut session = store.pinned_session().await.expect("a claim session");
    let mode: String = sqlx::query_scalar("SHOW plan_cache_mode")
        .fetch_one(&mut session)
        .await
        .expect("show");
    assert_eq!(mode, "force_generic_plan");
    store.keep_pinned_session(session);

    // An asynchronous claim sets `synchronous_commit` for its own transaction only: the
    // session it ran on (kept for the next claim) still commits durably.
    let worker_id = crate::model::new_uuid();
    sqlx::query(
        "INSERT INTO plainjobs_workerheartbeat (worker_id, hostname, pid, queues, started_at, last_heartbeat_at)
         VALUES ($1, 'test', 1, '[\"default\"]', now(), now())",
    )
    .bind(worker_id)
    .execute(&pool)
    .await
    .expect("heartbeat");
    let how = ClaimHow {
        pinned_session: true,
        async_commit: true,
        job_classes: None,
    };
    let claimed = store
        .claim(worker_id, &["default".to_string()], 3, 2, how)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 5);
    assert_eq!(claimed.iter().filter(|p| p.started_at.is_some()).count(), 3);
    let mut session = store.pinned_session().await.expect("the kept session");
    let sync: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(&mut session)
        .await
        .expect("show");
    assert_eq!(sync, "on", "the claim's setting ended with its transaction");
}

/// Behind a transaction pooler no session keeps the claim's settings: each claim's own
/// transaction rules out the scans the claim sessions rule out, so its plan (made anew for each
/// claim) is still the claim index in claim order; and the settings end with the transaction.
#[tokio::test]
async fn behind_a_transaction_pooler_each_claim_rules_its_own_plan() {
    let db = FreshDb::create(Backend::Postgres).await;
    let jobs = db.jobs().await;
    let pool = jobs.pg_pool().expect("a PostgreSQL pool").clone();
    let mut conn = pool.acquire().await.expect("a connection");
    for rows in [0, 5_000] {
        if rows > 0 {
            sqlx::query(
                "INSERT INTO plainjobs_jobrequest (created_at, uuid, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key)
                 SELECT now(), gen_random_uuid(), 'tests.Plan', '{\"args\": [], \"kwargs\": {}}', 0, '', 'default', 0, 0, ''
                 FROM generate_series(1, $1) AS i",
            )
            .bind(rows)
            .execute(&pool)
            .await
            .expect("fill");
        }
        sqlx::query("ANALYZE plainjobs_jobrequest")
            .execute(&pool)
            .await
            .expect("analyze");
        let mut tx = conn
            .begin_with(pinned::begin_pinned())
            .await
            .expect("begin");
        sqlx::raw_sql(&format!(
            "PREPARE claim_plan(uuid, text[], int8, int8, uuid[]) AS {}",
            claim_sql(1, false, false)
        ))
        .execute(&mut *tx)
        .await
        .expect("prepare");
        let plan: Vec<String> = sqlx::query_scalar(
            "EXPLAIN EXECUTE claim_plan(gen_random_uuid(), '{default}', 110, 10, '{}')",
        )
        .fetch_all(&mut *tx)
        .await
        .expect("explain");
        // A prepared statement outlives the transaction.
        sqlx::raw_sql("DEALLOCATE claim_plan")
            .execute(&mut *tx)
            .await
            .expect("deallocate");
        tx.rollback().await.expect("rollback");
        let plan = plan.join("\n");
        assert!(
            plan.contains("Index Scan using plainjobs_jobrequest_claim_excl"),
            "{rows} rows: {plan}"
        );
        assert!(!plan.contains("Seq Scan"), "{rows} rows: {plan}");
        assert!(!plan.contains("Bitmap"), "{rows} rows: {plan}");
        assert!(!plan.contains("JIT"), "{rows} rows: {plan}");
        let seqscan: String = sqlx::query_scalar("SHOW enable_seqscan")
            .fetch_one(&mut *conn)
            .await
            .expect("show");
        assert_eq!(seqscan, "on", "the settings ended with the transaction");
    }
    drop(conn);

    // A claim runs (no heartbeat: it takes nothing) and leaves no statement prepared by name
    // on its session (one session: the store's only connection).
    let one = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&db.url)
        .await
        .expect("a pool of one");
    let store = PgStore::new(one, Pooler::Transaction);
    let claimed = store
        .claim(
            crate::model::new_uuid(),
            &["default".to_string()],
            1,
            0,
            ClaimHow::default(),
        )
        .await
        .expect("claim");
    assert!(claimed.is_empty());
    let mut conn = store.conn().await.expect("a connection");
    let prepared: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_prepared_statements")
        .fetch_one(&mut conn.exec())
        .await
        .expect("count");
    assert_eq!(prepared, 0, "nothing prepared by name");
    drop(conn);
    db.remove().await;
}

/// The result write (and a write of starts alone) finds its processes by uuid on a pinned
/// session, whether the process table was empty or held thousands of this worker's dead rows
/// when the plan was made: never through plain.jobs' `worker_id` or `started_at` indexes,
/// whose dead entries a plan walking them reads on every write.
#[tokio::test]
async fn the_result_write_finds_processes_by_uuid_alone() {
    let jobs = test_jobs(Backend::Postgres).await;
    let pool = jobs.pg_pool().expect("a PostgreSQL pool").clone();
    let store = PgStore::new(pool.clone(), Pooler::Session);
    let worker = crate::model::new_uuid();
    for dead in [0, 5_000] {
        sqlx::query(
            "INSERT INTO plainjobs_jobprocess (uuid, created_at, job_request_uuid, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, worker_id)
             SELECT gen_random_uuid(), now(), gen_random_uuid(), 'tests.Plan', NULL, 0, '', 'default', 0, 0, '', $1
             FROM generate_series(1, $2 + 10)",
        )
        .bind(worker)
        .bind(dead)
        .execute(&pool)
        .await
        .expect("fill");
        sqlx::query("DELETE FROM plainjobs_jobprocess WHERE id NOT IN (SELECT id FROM plainjobs_jobprocess ORDER BY id DESC LIMIT 10)")
            .execute(&pool)
            .await
            .expect("leave ten");
        sqlx::query("ANALYZE plainjobs_jobprocess")
            .execute(&pool)
            .await
            .expect("analyze");
        let finish = pinned_plan(
            &store,
            "uuid, uuid[], text[], text[], uuid[], uuid[]",
            finish::FINISH_SQL,
            &format!("'{worker}', ARRAY[gen_random_uuid()], '{{SUCCESSFUL}}', '{{\"\"}}', ARRAY[gen_random_uuid()], ARRAY[gen_random_uuid()]"),
        )
        .await;
        let start = pinned_plan(
            &store,
            "uuid, uuid[]",
            finish::START_SQL,
            &format!("'{worker}', ARRAY[gen_random_uuid()]"),
        )
        .await;
        for plan in [finish, start] {
            assert!(
                plan.contains("Index Scan using plainjobs_job_unique_uuid"),
                "{dead} dead rows: {plan}"
            );
            for other in ["worker_id_idx", "started_at_idx", "Seq Scan", "Bitmap"] {
                assert!(!plan.contains(other), "{dead} dead rows, {other}: {plan}");
            }
        }
    }
}

/// The counts by key and the look-up of the next start time use indexes (plain.jobs' own on the
/// request and process tables, ours on the results), even with the planner told to avoid other
/// scans.
#[tokio::test]
async fn counts_by_key_and_the_next_start_use_indexes() {
    let jobs = test_jobs(Backend::Postgres).await;
    let pool = jobs.pg_pool().expect("a PostgreSQL pool").clone();
    sqlx::query(
        "INSERT INTO plainjobs_jobrequest (created_at, uuid, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, start_at)
         SELECT now(), gen_random_uuid(), 'tests.Key', NULL, 0, '', 'default', 0, 0,
                CASE WHEN i <= 10 THEN 'k' || i ELSE '' END,
                CASE WHEN i <= 3 THEN now() + interval '1 hour' END
         FROM generate_series(1, 2000) AS i",
    )
    .execute(&pool)
    .await
    .expect("fill");
    sqlx::query("ANALYZE plainjobs_jobrequest")
        .execute(&pool)
        .await
        .expect("analyze");
    let mut tx = pool.begin().await.expect("begin");
    sqlx::query("SET LOCAL enable_seqscan = off")
        .execute(&mut *tx)
        .await
        .expect("set");
    for (table, index) in [
        ("plainjobs_jobrequest", "job_request_concurrency_key"),
        ("plainjobs_jobprocess", "job_concurrency_key"),
        ("plainjobs_jobresult", "plainjobs_jobresult_class_key_excl"),
    ] {
        let sql = format!(
            "EXPLAIN SELECT count(*) FROM {table} WHERE job_class = 'tests.Key' AND concurrency_key = 'k1'{}",
            key_condition("k1")
        );
        let plan: Vec<String> = sqlx::query_scalar(&sql)
            .fetch_all(&mut *tx)
            .await
            .expect("explain");
        let plan = plan.join("\n");
        assert!(plan.contains(index), "{table}: {plan}");
    }
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN SELECT min(start_at) FROM plainjobs_jobrequest WHERE queue = ANY('{default}') AND start_at > now()",
    )
    .fetch_all(&mut *tx)
    .await
    .expect("explain");
    let plan = plan.join("\n");
    assert!(plan.contains("plainjobs_jobrequest_start_at_idx"), "{plan}");
}

/// A request for the notification test.
fn notify_request() -> crate::store::NewRequest {
    crate::store::NewRequest {
        uuid: crate::model::new_uuid(),
        job_class: "tests.Notify".into(),
        parameters: serde_json::json!({"args": [], "kwargs": {}}),
        priority: 0,
        source: String::new(),
        queue: "default".into(),
        retries: 0,
        retry_attempt: 0,
        concurrency_key: String::new(),
        start: crate::store::Start::Now,
        trace_id: None,
        span_id: None,
    }
}

/// The store's own inserts keep the trigger's `NOTIFY` out of their transaction and notify
/// after their commit instead (alone, or at the end of a store transaction); any other
/// producer's insert is notified by the trigger, unless its transaction says
/// `plainjobs.notify = off`. Every notification names the tables' schema.
#[tokio::test]
async fn the_stores_inserts_notify_after_their_commit_others_through_the_trigger() {
    use crate::store::Conn;
    use std::time::Duration;

    let jobs = test_jobs(Backend::Postgres).await;
    let pool = jobs.pg_pool().expect("a PostgreSQL pool").clone();
    let schema: String = sqlx::query_scalar("SELECT current_schema()::text")
        .fetch_one(&pool)
        .await
        .expect("schema");
    // Other tests' schemas notify on the same channel: only ours counts.
    let mut listener = sqlx::postgres::PgListener::connect_with(&pool)
        .await
        .expect("listener");
    listener
        .listen("plainjobs_jobrequest")
        .await
        .expect("listen");
    let raw_insert = "INSERT INTO plainjobs_jobrequest (created_at, uuid, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key)
         VALUES (now(), gen_random_uuid(), 'tests.Notify', '{}', 0, '', 'default', 0, 0, '')";

    let mut quiet = pool.begin().await.expect("begin");
    sqlx::query("SET LOCAL plainjobs.notify = 'off'")
        .execute(&mut *quiet)
        .await
        .expect("set");
    sqlx::query(raw_insert)
        .execute(&mut *quiet)
        .await
        .expect("insert");
    quiet.commit().await.expect("commit");
    assert!(
        !heard(&mut listener, &schema, Duration::from_millis(500)).await,
        "a transaction that said plainjobs.notify = off was notified by the trigger"
    );

    sqlx::query(raw_insert)
        .execute(&pool)
        .await
        .expect("insert");
    assert!(
        heard(&mut listener, &schema, Duration::from_secs(5)).await,
        "another producer's insert is notified"
    );

    let store = PgStore::new(pool.clone(), Pooler::Session);
    let mut conn = store.conn().await.expect("conn");
    conn.insert_requests(vec![notify_request()])
        .await
        .expect("insert");
    assert!(
        heard(&mut listener, &schema, Duration::from_secs(5)).await,
        "the store's insert is notified after its commit"
    );

    let mut tx = store.tx().await.expect("begin");
    tx.insert_requests(vec![notify_request(), notify_request()])
        .await
        .expect("insert");
    tx.commit().await.expect("commit");
    assert!(
        heard(&mut listener, &schema, Duration::from_secs(5)).await,
        "the store's transaction is notified after its commit"
    );
    assert!(
        !heard(&mut listener, &schema, Duration::from_millis(500)).await,
        "one notification per commit, not one from the trigger as well"
    );
}

/// Whether a notification naming `schema` arrives within `wait`.
async fn heard(
    listener: &mut sqlx::postgres::PgListener,
    schema: &str,
    wait: std::time::Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, listener.recv()).await {
            Ok(Ok(n)) if n.payload() == schema => return true,
            Ok(Ok(_)) => continue,
            Ok(Err(e)) => panic!("listening: {e}"),
            Err(_) => return false,
        }
    }
}
