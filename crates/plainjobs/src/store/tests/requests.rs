//! Inserting requests (`Conn::insert_requests`, `Store::insert_started`), finding where they
//! went (`locate_requests`), the uniqueness checks' counts and their lock.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::{pending, request, requests, uuids_of, Bed};
use crate::error::DbErrorKind;
use crate::model::{new_uuid, JobStatus};
use crate::store::{Located, NewRequest, Start};
use crate::testing::{conformance, Backend};

/// A time both backends store exactly (whole microseconds).
fn micros_precise(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap()
}

/// One request: what comes back is what was sent plus what the database decided (id,
/// `created_at`, `start_at`), and what is stored is what came back.
async fn inserts_one_request_as_sent(backend: Backend) {
    let bed = Bed::new(backend).await;
    let at = micros_precise(Utc::now() + TimeDelta::hours(1));
    for start in [
        Start::Now,
        Start::After(Duration::from_secs(60)),
        Start::At(at),
    ] {
        let sent = NewRequest {
            priority: -3,
            retries: 4,
            retry_attempt: 2,
            concurrency_key: "key".into(),
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
            span_id: Some("00f067aa0ba902b7".into()),
            start,
            ..request("one")
        };
        let made = bed.enqueue(vec![sent.clone()]).await;
        assert_eq!(made.len(), 1);
        let made = &made[0];
        assert!(made.id > 0);
        let age = Utc::now() - made.created_at;
        assert!(age.abs() < TimeDelta::seconds(5), "created {age} ago");
        let start_at = match start {
            Start::Now => None,
            Start::After(d) => Some(made.created_at + TimeDelta::from_std(d).unwrap()),
            Start::At(t) => Some(t),
        };
        assert_eq!(made, &sent.to_request(made.id, made.created_at, start_at));
        let stored = bed.store().locate_requests(&[sent.uuid]).await.unwrap();
        assert_eq!(
            stored,
            [(
                sent.uuid,
                Located::Pending {
                    id: made.id,
                    created_at: made.created_at,
                    start_at
                }
            )]
        );
        assert_eq!(
            bed.store().request_by_uuid(sent.uuid).await.unwrap(),
            Some(made.clone())
        );
    }
}

/// Many requests in one call come back in the order sent, with one `created_at`; more than a
/// SQLite statement holds (500 rows) in a transaction too.
async fn inserts_many_requests_in_order(backend: Backend) {
    let bed = Bed::new(backend).await;
    let mut three = requests("job", 3);
    three[1].start = Start::After(Duration::from_secs(60));
    let made = bed.enqueue(three.clone()).await;
    assert_eq!(
        uuids_of(&made),
        three.iter().map(|r| r.uuid).collect::<Vec<_>>()
    );
    assert!(made.windows(2).all(|w| w[0].id < w[1].id));
    assert!(made.iter().all(|r| r.created_at == made[0].created_at));
    assert_eq!(
        made[1].start_at,
        Some(made[1].created_at + TimeDelta::seconds(60))
    );
    for r in &made {
        let stored = bed.store().request_by_uuid(r.uuid).await.unwrap();
        assert_eq!(stored.as_ref(), Some(r));
    }

    let many = requests("bulk", 1_200);
    let mut tx = bed.store().begin().await.unwrap();
    let made = tx.insert_requests(many.clone()).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        uuids_of(&made),
        many.iter().map(|r| r.uuid).collect::<Vec<_>>()
    );
    assert_eq!(pending(bed.store()).await.len(), 1_203);
}

/// A request uuid is inserted once: a second insert is refused as a duplicate (what an
/// enqueue retried after an ambiguous failure relies on), alone or in a batch.
async fn refuses_a_duplicate_request_uuid(backend: Backend) {
    let bed = Bed::new(backend).await;
    let first = request("first");
    bed.enqueue(vec![first.clone()]).await;
    let mut conn = bed.store().autocommit().await.unwrap();
    let again = conn.insert_requests(vec![first.clone()]).await.unwrap_err();
    assert_eq!(
        again.db_kind(),
        Some(DbErrorKind::DuplicateRequestUuid),
        "{again}"
    );
    assert!(!again.may_have_committed() && !again.is_transient());
    drop(conn);
    let mut tx = bed.store().begin().await.unwrap();
    let batch = vec![request("new"), first.clone()];
    let refused = tx.insert_requests(batch).await.unwrap_err();
    assert_eq!(refused.db_kind(), Some(DbErrorKind::DuplicateRequestUuid));
    drop(tx);
    assert_eq!(uuids_of(&pending(bed.store()).await), [first.uuid]);
}

/// A job handed to an idle worker is inserted as its process, begun, with no request row; and
/// not at all once the worker's heartbeat row is gone.
async fn inserts_a_begun_process_for_a_registered_worker(backend: Backend) {
    let bed = Bed::new(backend).await;
    let worker_id = bed.worker().await;
    let sent = request("direct");
    let process_uuid = new_uuid();
    let (made, p) = bed
        .store()
        .insert_started(worker_id, &sent, process_uuid)
        .await
        .unwrap()
        .expect("inserted");
    assert_eq!((p.uuid, p.worker_id), (process_uuid, worker_id));
    assert_eq!(p.started_at, Some(p.created_at));
    assert_eq!(p.requested_at, Some(p.created_at));
    assert_eq!(p.job_request_uuid, sent.uuid);
    assert_eq!((&p.job_class, &p.queue), (&sent.job_class, &sent.queue));
    assert_eq!(made, sent.to_request(0, p.created_at, None));
    assert_eq!(bed.store().processes(10).await.unwrap(), [p]);
    assert!(pending(bed.store()).await.is_empty(), "no request row");

    let unknown = new_uuid();
    let refused = bed
        .store()
        .insert_started(unknown, &request("stray"), new_uuid())
        .await
        .unwrap();
    assert!(refused.is_none());
    assert_eq!(bed.store().processes(10).await.unwrap().len(), 1);
}

/// Where a request is: pending (with its row's times), or taken (claimed or finished, with
/// when it was requested); unknown uuids are left out.
async fn locates_requests_in_each_table(backend: Backend) {
    let bed = Bed::new(backend).await;
    let worker_id = bed.worker().await;
    let later = NewRequest {
        start: Start::After(Duration::from_secs(3600)),
        ..request("later")
    };
    let made = bed
        .enqueue(vec![later, request("claimed"), request("finished")])
        .await;
    let claimed = bed.claim(worker_id, 2, 0).await;
    bed.finish(worker_id, claimed[1].uuid, JobStatus::Successful)
        .await;
    let mut asked = uuids_of(&made);
    asked.push(new_uuid());
    let found: HashMap<Uuid, Located> = bed
        .store()
        .locate_requests(&asked)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(found.len(), 3, "{found:?}");
    let (pending_one, taken) = (&made[0], &made[1..]);
    assert_eq!(
        found[&pending_one.uuid],
        Located::Pending {
            id: pending_one.id,
            created_at: pending_one.created_at,
            start_at: pending_one.start_at
        }
    );
    for r in taken {
        let expected = Located::Taken {
            requested_at: r.created_at,
        };
        assert_eq!(found[&r.uuid], expected, "{}", r.job_class);
    }
    assert!(bed.store().locate_requests(&[]).await.unwrap().is_empty());
}

/// The counts `should_enqueue` makes: by class and key, first attempts only unless asked,
/// a process left out by uuid; on an autocommit connection and in a transaction alike.
async fn counts_requests_processes_and_results_by_class_and_key(backend: Backend) {
    let bed = Bed::new(backend).await;
    let keyed = |class: &str, key: &str, attempt: i16| NewRequest {
        concurrency_key: key.into(),
        retry_attempt: attempt,
        retries: 3,
        ..request(class)
    };
    bed.enqueue(vec![
        keyed("X", "k", 0),
        keyed("X", "k", 1),
        keyed("X", "other", 0),
        keyed("Y", "k", 0),
        keyed("X", "", 0),
    ])
    .await;
    let store = bed.store();
    let mut conn = store.autocommit().await.unwrap();
    for (class, key, retries, n) in [
        ("X", "k", false, 1),
        ("X", "k", true, 2),
        ("X", "", false, 1),
        ("Y", "k", false, 1),
        ("Z", "k", true, 0),
    ] {
        let counted = conn.count_requests(class, key, retries).await.unwrap();
        assert_eq!(counted, n, "requests {class}/{key:?}, retries {retries}");
    }
    drop(conn);

    let worker_id = bed.worker().await;
    let claimed = bed.claim(worker_id, 5, 0).await;
    let xk: Vec<Uuid> = claimed
        .iter()
        .filter(|p| p.job_class == "X" && p.concurrency_key == "k")
        .map(|p| p.uuid)
        .collect();
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.count_requests("X", "k", true).await.unwrap(), 0);
    for (retries, exclude, n) in [(false, None, 1), (true, None, 2), (true, Some(xk[0]), 1)] {
        let counted = tx
            .count_processes("X", "k", retries, exclude)
            .await
            .unwrap();
        assert_eq!(
            counted, n,
            "processes, retries {retries}, exclude {exclude:?}"
        );
    }
    drop(tx);

    for uuid in &xk {
        bed.finish(worker_id, *uuid, JobStatus::Successful).await;
    }
    let mut conn = store.autocommit().await.unwrap();
    assert_eq!(conn.count_results("X", "k").await.unwrap(), 2);
    assert_eq!(conn.count_results("X", "").await.unwrap(), 0);
    assert_eq!(conn.count_processes("X", "k", true, None).await.unwrap(), 0);
}

/// Two transactions that take the same key's lock run one after the other (SQLite's write
/// lock serializes them already).
async fn the_advisory_lock_serializes_transactions(backend: Backend) {
    let bed = Bed::new(backend).await;
    let store = bed.store();
    let mut first = store.begin().await.unwrap();
    first.advisory_lock(7).await.unwrap();
    let second = async {
        let mut tx = store.begin().await.unwrap();
        tx.advisory_lock(7).await.unwrap();
        tx
    };
    tokio::pin!(second);
    let waited = tokio::time::timeout(Duration::from_millis(300), &mut second).await;
    assert!(
        waited.is_err(),
        "the second took the lock while the first held it"
    );
    first.commit().await.unwrap();
    let second = tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("the lock is free once the first commits");
    second.commit().await.unwrap();
}

conformance!(
    inserts_one_request_as_sent,
    inserts_many_requests_in_order,
    refuses_a_duplicate_request_uuid,
    inserts_a_begun_process_for_a_registered_worker,
    locates_requests_in_each_table,
    counts_requests_processes_and_results_by_class_and_key,
    the_advisory_lock_serializes_transactions,
);
