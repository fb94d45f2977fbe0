//! Property: whatever their priorities, start times and creation order, ready jobs are claimed
//! in the documented order — priority descending, then `COALESCE(start_at, created_at)`, then
//! id (insertion order) — on both backends. A worker with one slot and no claim-ahead runs
//! them in the order it claims them.

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::*;
use plainjobs::{Worker, WorkerHandle};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// One request: its priority and, in seconds after a base an hour ago, its creation and start
/// times. Small ranges, so that ties (broken by the next key) are common.
#[derive(Debug, Clone)]
struct Spec {
    priority: i16,
    created: i64,
    start: Option<i64>,
}

fn specs() -> impl Strategy<Value = Vec<Spec>> {
    let spec = (-2i16..=2, 0i64..6, proptest::option::of(0i64..6)).prop_map(
        |(priority, created, start)| Spec {
            priority,
            created,
            start,
        },
    );
    proptest::collection::vec(spec, 1..12)
}

/// The documented claim order, as indexes into `specs` (index = insertion order = id order).
fn documented_order(specs: &[Spec]) -> Vec<String> {
    let mut order: Vec<usize> = (0..specs.len()).collect();
    order.sort_by_key(|&i| {
        let s = &specs[i];
        (-s.priority, s.start.unwrap_or(s.created), i)
    });
    order.into_iter().map(|i| format!("j{i}")).collect()
}

fn time_sql(db: &TestDb, base: DateTime<Utc>, offset_s: i64) -> String {
    let t = base + chrono::Duration::seconds(offset_s);
    match db.backend {
        Backend::Postgres => format!("'{}'::timestamptz", t.to_rfc3339()),
        Backend::Sqlite => t.timestamp_micros().to_string(),
    }
}

/// All requests in one statement, so a running worker sees all or none; ids follow the order
/// of the rows.
fn insert_sql(db: &TestDb, specs: &[Spec], base: DateTime<Utc>) -> String {
    let rows: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let start = s.start.map_or("NULL".into(), |o| time_sql(db, base, o));
            format!(
                "({}, {}, 'tests.Probe', '{{\"args\": [], \"kwargs\": {{\"id\": \"j{i}\", \"action\": \"Succeed\"}}}}', {}, '', 'default', 0, 0, '', {start})",
                time_sql(db, base, s.created),
                db.uuid_sql(),
                s.priority
            )
        })
        .collect();
    format!(
        "INSERT INTO plainjobs_jobrequest (created_at, uuid, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, start_at) VALUES {}",
        rows.join(", ")
    )
}

async fn claimed_order(db: &TestDb, rec: &Recorder, specs: &[Spec]) -> Vec<String> {
    rec.runs.lock().expect("recorder").clear();
    db.exec("DELETE FROM plainjobs_jobresult").await;
    let base = Utc::now() - chrono::Duration::hours(1);
    db.exec(&insert_sql(db, specs, base)).await;
    let all_ran = wait_until(Duration::from_secs(30), || async {
        rec.runs().len() >= specs.len()
    })
    .await;
    assert!(all_ran, "ran {} of {} jobs", rec.runs().len(), specs.len());
    rec.run_ids()
}

fn one_at_a_time(db: &TestDb, rec: &std::sync::Arc<Recorder>) -> WorkerHandle {
    let mut config = fast_config();
    config.local_dispatch = false;
    Worker::new(db.jobs.clone())
        .register::<Probe>()
        .state(rec.clone())
        .config(config)
        .concurrency(1)
        .max_pending(0)
        .spawn()
}

fn claim_order_holds(backend: Backend) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let db = rt.block_on(test_db_for(backend));
    let rec = Recorder::new();
    let worker = rt.block_on(async { one_at_a_time(&db, &rec) });
    let config = Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    };
    let result = TestRunner::new(config).run(&specs(), |specs| {
        let got = rt.block_on(claimed_order(&db, &rec, &specs));
        let want = documented_order(&specs);
        if got != want {
            return Err(TestCaseError::fail(format!(
                "claimed {got:?}, documented order {want:?} for {specs:?}"
            )));
        }
        Ok(())
    });
    rt.block_on(worker.stop()).expect("worker stops");
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn postgres_claims_in_the_documented_order() {
    claim_order_holds(Backend::Postgres);
}

#[test]
fn sqlite_claims_in_the_documented_order() {
    claim_order_holds(Backend::Sqlite);
}
