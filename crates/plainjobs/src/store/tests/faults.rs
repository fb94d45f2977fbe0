//! The fault-injecting wrapper (`testing::FaultyStore`) does what tests rely on.

use std::sync::atomic::Ordering;

use super::{pending, requests, Bed};
use crate::error::DbErrorKind;
use crate::store::ClaimHow;
use crate::testing::{conformance, Backend, FaultyStore};

/// A claim whose reply is lost has committed: its jobs are the worker's processes, and the
/// caller sees a connection error that may have committed. A claim that takes nothing spends
/// no fault.
async fn a_lost_claim_reply_leaves_the_claim_committed(backend: Backend) {
    let bed = Bed::new(backend).await;
    let (jobs, faults) = FaultyStore::wrap(&bed.db.jobs);
    let faulty = jobs.store();
    let worker_id = bed.worker().await;
    let queues = ["default".to_string()];
    let how = ClaimHow::default();
    faults.lose_claim_replies.store(1, Ordering::Release);
    let nothing = faulty
        .claim(worker_id, &queues, 5, 0, how.clone())
        .await
        .unwrap();
    assert!(nothing.is_empty());
    assert_eq!(faults.lose_claim_replies.load(Ordering::Acquire), 1);

    bed.enqueue(requests("job", 2)).await;
    let lost = faulty
        .claim(worker_id, &queues, 2, 0, how.clone())
        .await
        .unwrap_err();
    assert_eq!(lost.db_kind(), Some(DbErrorKind::ConnectionLost), "{lost}");
    assert!(lost.may_have_committed());
    assert_eq!(faults.lose_claim_replies.load(Ordering::Acquire), 0);
    let processes = bed.store().processes(10).await.unwrap();
    assert_eq!(processes.len(), 2, "the claim committed");
    assert!(processes.iter().all(|p| p.worker_id == worker_id));

    bed.enqueue(requests("more", 1)).await;
    let claimed = faulty
        .claim(worker_id, &queues, 2, 0, how.clone())
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "later claims are answered");
}

/// While the database is unreachable every call fails before it gets there, and says it did
/// not commit.
async fn an_unreachable_database_is_not_written(backend: Backend) {
    let bed = Bed::new(backend).await;
    let (jobs, faults) = FaultyStore::wrap(&bed.db.jobs);
    let faulty = jobs.store();
    let worker_id = bed.worker().await;
    bed.enqueue(requests("job", 1)).await;
    let queues = ["default".to_string()];
    let how = ClaimHow::default();
    faults.unavailable.store(true, Ordering::Release);
    let refused = faulty
        .claim(worker_id, &queues, 1, 0, how.clone())
        .await
        .unwrap_err();
    assert_eq!(
        refused.db_kind(),
        Some(DbErrorKind::Unavailable),
        "{refused}"
    );
    assert!(!refused.may_have_committed() && refused.is_transient());
    assert!(faulty.requests(10).await.is_err());
    assert_eq!(pending(bed.store()).await.len(), 1, "nothing claimed");
    faults.unavailable.store(false, Ordering::Release);
    let claimed = faulty
        .claim(worker_id, &queues, 1, 0, how.clone())
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
}

conformance!(
    a_lost_claim_reply_leaves_the_claim_committed,
    an_unreachable_database_is_not_written,
);
