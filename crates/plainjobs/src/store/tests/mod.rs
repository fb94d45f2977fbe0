//! The store's conformance suite: each method of the storage interface ([`Conn`], [`StoreTx`],
//! [`Store`], [`Inspect`], [`Listener`](super::Listener)) tested directly against a real
//! database, the same test on both backends (`conformance!` makes one per backend), as River
//! tests its drivers. The behaviour suite in `tests/` covers the same paths end to end.
//!
//! [`Conn`]: super::Conn
//! [`StoreTx`]: super::StoreTx

mod browse;
mod claim;
mod control;
mod errors;
mod faults;
mod finish;
mod inspect;
mod listen;
mod migrate;
mod requests;
mod rescue;
mod results;

use serde_json::json;
use uuid::Uuid;

use super::{ClaimHow, Finish, NewHeartbeat, NewRequest, ResultFilter, Start, Store};
use crate::model::{new_uuid, JobProcess, JobRequest, JobResult, JobStatus};
use crate::testing::{test_db_for, Backend, TestDb};

/// A fresh migrated database, its store, and shortcuts to put rows in it through the store.
struct Bed {
    db: TestDb,
}

impl Bed {
    async fn new(backend: Backend) -> Bed {
        Bed {
            db: test_db_for(backend).await,
        }
    }

    fn backend(&self) -> Backend {
        self.db.backend
    }

    fn store(&self) -> &dyn Store {
        self.db.jobs.store()
    }

    /// Registers a worker of the default queue with this id.
    async fn register(&self, worker_id: Uuid) {
        let hb = NewHeartbeat {
            worker_id,
            hostname: "store-tests".into(),
            pid: 1,
            queues: vec!["default".into()],
        };
        self.store().heartbeat(&hb).await.unwrap();
    }

    /// A new registered worker.
    async fn worker(&self) -> Uuid {
        let worker_id = new_uuid();
        self.register(worker_id).await;
        worker_id
    }

    /// Inserts `requests` in one call on an autocommit connection.
    async fn enqueue(&self, requests: Vec<NewRequest>) -> Vec<JobRequest> {
        let mut conn = self.store().autocommit().await.unwrap();
        conn.insert_requests(requests).await.unwrap()
    }

    /// Claims from the default queue for `worker_id`.
    async fn claim(&self, worker_id: Uuid, start: i64, prefetch: i64) -> Vec<JobProcess> {
        let queues = ["default".to_string()];
        self.store()
            .claim(worker_id, &queues, start, prefetch, ClaimHow::default())
            .await
            .unwrap()
    }

    /// One result per request, in order: each enqueued, claimed by a new worker and ended with
    /// its status in one transaction. Their queues must hold no other ready request.
    async fn results_of(&self, ends: Vec<(NewRequest, JobStatus)>) -> Vec<JobResult> {
        let worker_id = self.worker().await;
        let n = ends.len() as i64;
        let (requests, statuses): (Vec<_>, Vec<_>) = ends.into_iter().unzip();
        let mut queues: Vec<String> = requests.iter().map(|r| r.queue.clone()).collect();
        queues.sort();
        queues.dedup();
        let made = self.enqueue(requests).await;
        let claimed = self
            .store()
            .claim(worker_id, &queues, n, 0, ClaimHow::default())
            .await
            .unwrap();
        assert_eq!(
            request_uuids(&claimed),
            uuids_of(&made),
            "claimed as enqueued"
        );
        let mut tx = self.store().begin().await.unwrap();
        let mut results = Vec::new();
        for (p, status) in claimed.iter().zip(statuses) {
            let gone = tx.delete_process(p.uuid, worker_id).await.unwrap();
            let error = if status.is_failure() { "failed" } else { "" };
            let result = tx
                .insert_result(&gone.unwrap(), status, error, None)
                .await
                .unwrap();
            results.push(result);
        }
        tx.commit().await.unwrap();
        results
    }

    /// Ends the process `uuid` of `worker_id` as the result writer does.
    async fn finish(&self, worker_id: Uuid, uuid: Uuid, status: JobStatus) -> Vec<Uuid> {
        let item = Finish {
            process_uuid: uuid,
            status,
            error: String::new(),
        };
        self.store()
            .finish_many(worker_id, &[], &[item], false)
            .await
            .unwrap()
    }

    /// `column` moved `secs` seconds into the past, as SQL for this backend.
    fn earlier(&self, column: &str, secs: i64) -> String {
        match self.backend() {
            Backend::Postgres => format!("{column} - interval '{secs} seconds'"),
            Backend::Sqlite => format!("{column} - {}", secs * 1_000_000),
        }
    }

    /// Moves every time of these processes `secs` seconds into the past (their claim, their
    /// start, their request), keeping how they relate.
    async fn age_processes(&self, uuids: &[Uuid], secs: i64) {
        let sql = format!(
            "UPDATE plainjobs_jobprocess SET created_at = {}, started_at = {}, requested_at = {} WHERE uuid IN ({})",
            self.earlier("created_at", secs),
            self.earlier("started_at", secs),
            self.earlier("requested_at", secs),
            sql_list(uuids)
        );
        self.db.exec(&sql).await;
    }

    /// Moves the last heartbeat of `worker_id` `secs` seconds into the past.
    async fn age_heartbeat(&self, worker_id: Uuid, secs: i64) {
        let sql = format!(
            "UPDATE plainjobs_workerheartbeat SET last_heartbeat_at = {} WHERE worker_id = '{worker_id}'",
            self.earlier("last_heartbeat_at", secs)
        );
        self.db.exec(&sql).await;
    }
}

/// Uuids as an SQL list of literals.
fn sql_list(uuids: &[Uuid]) -> String {
    let items: Vec<String> = uuids.iter().map(|u| format!("'{u}'")).collect();
    items.join(", ")
}

/// A request of class `job_class` to the default queue, to start now.
fn request(job_class: &str) -> NewRequest {
    NewRequest {
        uuid: new_uuid(),
        job_class: job_class.to_string(),
        parameters: json!({"args": [job_class], "kwargs": {}}),
        priority: 0,
        source: "store tests".into(),
        queue: "default".into(),
        retries: 0,
        retry_attempt: 0,
        concurrency_key: String::new(),
        start: Start::Now,
        trace_id: None,
        span_id: None,
    }
}

/// `n` requests named `{prefix}{i}`.
fn requests(prefix: &str, n: usize) -> Vec<NewRequest> {
    (0..n).map(|i| request(&format!("{prefix}{i}"))).collect()
}

/// The uuids of these requests, in order.
fn uuids_of(requests: &[JobRequest]) -> Vec<Uuid> {
    requests.iter().map(|r| r.uuid).collect()
}

/// The request uuids these processes were claimed from, in order.
fn request_uuids(processes: &[JobProcess]) -> Vec<Uuid> {
    processes.iter().map(|p| p.job_request_uuid).collect()
}

/// Every pending request, in claim order.
async fn pending(store: &dyn Store) -> Vec<JobRequest> {
    store.requests(10_000).await.unwrap()
}

/// Every result, newest first.
async fn all_results(store: &dyn Store) -> Vec<JobResult> {
    let all = ResultFilter::new().limit(10_000);
    store.results(&all).await.unwrap()
}
