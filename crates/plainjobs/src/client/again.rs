//! The second attempt of an enqueue whose first attempt failed without saying whether it
//! committed (the server closed the connection): idempotent, because the request's uuid is
//! made before the first attempt and looked for before the second.

use std::collections::HashMap;

use uuid::Uuid;

use super::single::enqueue_once;
use crate::error::DbErrorKind;
use crate::model::JobRequest;
use crate::registry::ErasedJob;
use crate::store::{Located, NewRequest, Start};
use crate::{Error, Jobs, Result};

/// Whether the server closed the connection (administrator command, crash, restart): the
/// statement may have failed before it ran, or its reply may have been lost after it
/// committed. Worth one more try on a fresh connection, as long as that try can tell which.
pub(crate) fn is_terminated_connection(err: &Error) -> bool {
    err.db_kind() == Some(DbErrorKind::Terminated)
}

/// Whether an insert was refused because a request with the same uuid exists.
pub(crate) fn is_duplicate_request_uuid(err: &Error) -> bool {
    err.db_kind() == Some(DbErrorKind::DuplicateRequestUuid)
}

/// The requests among `reqs` that are in the database already (pending, claimed or finished),
/// in the order of `reqs`. A pending one is returned as its row is; for one that a worker
/// already claimed or finished the request row is gone, so it is returned as it was sent with
/// `id` 0, `created_at` the time it was made (the process's or result's `requested_at`) and
/// `start_at` computed from it as the insert did.
pub(crate) async fn already_enqueued(jobs: &Jobs, reqs: &[NewRequest]) -> Result<Vec<JobRequest>> {
    let uuids: Vec<Uuid> = reqs.iter().map(|r| r.uuid).collect();
    let found: HashMap<Uuid, Located> = jobs
        .store()
        .locate_requests(&uuids)
        .await?
        .into_iter()
        .collect();
    Ok(reqs
        .iter()
        .filter_map(|r| {
            found.get(&r.uuid).map(|located| match *located {
                Located::Pending {
                    id,
                    created_at,
                    start_at,
                } => r.to_request(id, created_at, start_at),
                Located::Taken { requested_at } => {
                    let start_at = match r.start {
                        Start::Now => None,
                        Start::After(d) => chrono::TimeDelta::from_std(d)
                            .ok()
                            .and_then(|d| requested_at.checked_add_signed(d)),
                        Start::At(t) => Some(t),
                    };
                    r.to_request(0, requested_at, start_at)
                }
            })
        })
        .collect())
}

/// The second attempt of an enqueue whose first attempt failed without saying whether it
/// committed. `req` is the first attempt's request, uuid included. If that uuid is in the
/// database (pending, claimed or finished: see [`already_enqueued`]) the first attempt
/// committed and its request is returned without inserting anything; otherwise the enqueue runs
/// again, and a duplicate uuid refused by the insert (the first attempt became visible in
/// between) is the same success.
pub(crate) async fn enqueue_again(
    jobs: &Jobs,
    job: &dyn ErasedJob,
    req: NewRequest,
    exclude_process: Option<Uuid>,
) -> Result<Option<JobRequest>> {
    let reqs = std::slice::from_ref(&req);
    if let Some(found) = already_enqueued(jobs, reqs).await?.pop() {
        tracing::debug!(job_request_uuid = %req.uuid, "the first attempt had committed; not enqueueing again");
        return Ok(Some(found));
    }
    match enqueue_once(jobs, job, req.clone(), exclude_process).await {
        Err(e) if is_duplicate_request_uuid(&e) => {
            match already_enqueued(jobs, reqs).await?.pop() {
                Some(found) => Ok(Some(found)),
                None => Err(e),
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::client::bulk::EnqueueMany;
    use crate::client::request::{build_request, Options};
    use crate::model::{new_uuid, JobStatus};
    use crate::registry::RawJob;
    use crate::store::{Finish, NewHeartbeat};
    use crate::testing::{conformance, test_jobs, Backend};

    fn job() -> RawJob {
        RawJob::new(
            "tests.Idempotent",
            Some(&serde_json::json!({"args": [1], "kwargs": {}})),
        )
    }

    fn request(job: &RawJob, key: &str, start: Start) -> NewRequest {
        let opts = Options {
            concurrency_key: Some(key.to_string()),
            start: Some(start),
            ..Options::default()
        };
        build_request(job, &opts, "enqueue.rs test".into()).expect("a valid request")
    }

    async fn pending(jobs: &Jobs) -> usize {
        jobs.requests(100).await.expect("requests").len()
    }

    /// The first attempt committed, its reply was lost: the retry returns the pending request
    /// and inserts nothing (with a key, the uniqueness check would otherwise refuse the job as
    /// its own duplicate and report it skipped).
    async fn a_retry_after_a_committed_first_attempt_returns_it_and_inserts_nothing(
        backend: Backend,
    ) {
        let jobs = test_jobs(backend).await;
        let job = job();
        for (key, start) in [
            ("", Start::Now),
            ("k", Start::Now),
            ("", Start::After(Duration::from_secs(3600))),
        ] {
            let req = request(&job, key, start);
            let first = enqueue_once(&jobs, &job, req.clone(), None)
                .await
                .expect("first attempt")
                .expect("enqueued");
            let again = enqueue_again(&jobs, &job, req, None)
                .await
                .expect("second attempt")
                .expect("reported as enqueued");
            assert_eq!(again, first, "key {key:?}");
        }
        assert_eq!(pending(&jobs).await, 3, "no duplicate");
    }

    /// The first attempt committed and a worker claimed the job, then finished it, before the
    /// retry: the request row is gone, the retry still finds the job and inserts nothing.
    async fn a_retry_finds_the_first_attempt_claimed_then_finished(backend: Backend) {
        let jobs = test_jobs(backend).await;
        let job = job();
        let req = request(&job, "", Start::Now);
        let first = enqueue_once(&jobs, &job, req.clone(), None)
            .await
            .expect("first attempt")
            .expect("enqueued");
        let worker_id = new_uuid();
        let store = jobs.store();
        store
            .heartbeat(&NewHeartbeat {
                worker_id,
                hostname: "test".into(),
                pid: 1,
                queues: vec!["default".into()],
            })
            .await
            .expect("heartbeat");
        let claimed = store
            .claim(
                worker_id,
                &["default".to_string()],
                1,
                0,
                crate::store::ClaimHow::default(),
            )
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 1);

        let check = |again: JobRequest| {
            assert_eq!(again.uuid, first.uuid);
            assert_eq!(again.id, 0, "the request row is gone");
            assert_eq!(again.created_at, first.created_at);
            assert_eq!(again.start_at, None);
            assert_eq!(again.parameters, first.parameters);
        };
        let again = enqueue_again(&jobs, &job, req.clone(), None)
            .await
            .expect("second attempt (claimed)")
            .expect("reported as enqueued");
        check(again);
        assert_eq!(pending(&jobs).await, 0, "no duplicate of a claimed job");

        let finish = Finish {
            process_uuid: claimed[0].uuid,
            status: JobStatus::Successful,
            error: String::new(),
        };
        store
            .finish_many(worker_id, &[], &[finish], false)
            .await
            .expect("finish");
        let again = enqueue_again(&jobs, &job, req, None)
            .await
            .expect("second attempt (finished)")
            .expect("reported as enqueued");
        check(again);
        assert_eq!(pending(&jobs).await, 0, "no duplicate of a finished job");
        assert!(jobs.processes(10).await.expect("processes").is_empty());
    }

    /// The first attempt did not commit: the retry enqueues the job, once.
    async fn a_retry_after_a_first_attempt_that_did_not_commit_enqueues_once(backend: Backend) {
        let jobs = test_jobs(backend).await;
        let job = job();
        let again = enqueue_again(&jobs, &job, request(&job, "k", Start::Now), None)
            .await
            .expect("second attempt")
            .expect("enqueued");
        assert_eq!(jobs.requests(10).await.expect("requests"), vec![again]);
    }

    /// The insert refuses a request whose uuid exists, and the refusal is recognised as such
    /// (what the retry relies on when the first attempt becomes visible only after its look).
    async fn a_duplicate_request_uuid_is_refused_and_recognised(backend: Backend) {
        let jobs = test_jobs(backend).await;
        let job = job();
        let req = request(&job, "", Start::Now);
        enqueue_once(&jobs, &job, req.clone(), None)
            .await
            .expect("first insert");
        let refused = enqueue_once(&jobs, &job, req, None).await;
        assert!(
            matches!(&refused, Err(e) if is_duplicate_request_uuid(e)),
            "{refused:?}"
        );
        assert_eq!(pending(&jobs).await, 1);
    }

    /// Bulk enqueue: the retry after a committed first attempt returns what it inserted.
    async fn a_bulk_retry_after_a_committed_first_attempt_inserts_nothing(backend: Backend) {
        let jobs = test_jobs(backend).await;
        let many = EnqueueMany {
            jobs: &jobs,
            items: (0..3)
                .map(|i| {
                    Box::new(RawJob::new(
                        "tests.Idempotent",
                        Some(&serde_json::json!({"args": [i], "kwargs": {}})),
                    )) as Box<dyn ErasedJob>
                })
                .collect(),
            opts: Options::default(),
            source: "again.rs test".into(),
            caller: std::panic::Location::caller(),
        };
        let uuids = many.new_uuids();
        let mut first = many.run_once(&uuids).await.expect("first attempt");
        let mut again = many.run_again(&uuids).await.expect("second attempt");
        first.sort_by_key(|r| r.id);
        again.sort_by_key(|r| r.id);
        assert_eq!(again, first);
        assert_eq!(pending(&jobs).await, 3, "no duplicates");
    }

    conformance!(
        a_retry_after_a_committed_first_attempt_returns_it_and_inserts_nothing,
        a_retry_finds_the_first_attempt_claimed_then_finished,
        a_retry_after_a_first_attempt_that_did_not_commit_enqueues_once,
        a_duplicate_request_uuid_is_refused_and_recognised,
        a_bulk_retry_after_a_committed_first_attempt_inserts_nothing,
    );
}
