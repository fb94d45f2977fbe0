//! The worker against a store that loses claims' replies (testing::FaultyStore): what such a
//! claim took goes back to the queue, not to a rescuer as LOST.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::testing::{conformance, test_jobs, Backend, FaultyStore};
use crate::{Job, JobContext, JobError, JobStatus, Outcome, Worker, WorkerConfig};

/// Each run, as (job id, retry attempt).
#[derive(Clone, Default)]
struct Runs(Arc<Mutex<Vec<(u32, i16)>>>);

#[derive(serde::Serialize, serde::Deserialize)]
struct Counted {
    id: u32,
}

impl Job for Counted {
    const NAME: &'static str = "tests.Counted";
    async fn run(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
        let runs = ctx.state::<Runs>()?;
        runs.0
            .lock()
            .unwrap()
            .push((self.id, ctx.process().retry_attempt));
        Ok(Outcome::Success)
    }
}

async fn wait_for_results(jobs: &crate::Jobs, n: usize) -> Vec<crate::JobResult> {
    let began = Instant::now();
    loop {
        let results = jobs
            .results(&crate::ResultFilter::new())
            .await
            .expect("results");
        if results.len() >= n || began.elapsed() > Duration::from_secs(20) {
            return results;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A claim commits but its reply is lost (the worker sees a connection error). Its jobs
/// (no retries: LOST would end them for good) go back to the queue as soon as the database
/// answers, long before any orphan rescue could look (the heartbeat timeout is an hour),
/// and then run exactly once each, as first attempts. The worker has seen quick jobs
/// before, so the lost claim holds jobs it was to start at once (their `started_at` stamped
/// by the claim) and jobs claimed ahead (`started_at` NULL).
async fn a_claim_whose_reply_is_lost_hands_its_jobs_back_at_once(backend: Backend) {
    let (jobs, faults) = FaultyStore::wrap(&test_jobs(backend).await);
    let config = WorkerConfig {
        heartbeat_interval: Duration::from_millis(200),
        heartbeat_timeout: Duration::from_secs(3600),
        poll_interval: Duration::from_millis(100),
        ..WorkerConfig::default()
    };
    let lose = faults.lose_claim_replies.clone();
    let runs = Runs::default();
    let w = Worker::new(jobs.clone())
        .register::<Counted>()
        .state(runs.clone())
        .config(config)
        .concurrency(2)
        .spawn();
    // Quick jobs first: from now on the worker claims ahead.
    jobs.enqueue_many((0..3).map(|id| Counted { id }))
        .await
        .expect("enqueue");
    assert_eq!(wait_for_results(&jobs, 3).await.len(), 3);
    lose.store(1, Ordering::Release);
    jobs.enqueue_many((3..13).map(|id| Counted { id }))
        .await
        .expect("enqueue");
    let results = wait_for_results(&jobs, 13).await;
    w.stop().await.expect("worker stops");
    assert_eq!(lose.load(Ordering::Acquire), 0, "a claim's reply was lost");
    assert_eq!(results.len(), 13, "every job ended: {results:#?}");
    assert!(
        results
            .iter()
            .all(|r| r.status == JobStatus::Successful && r.retry_attempt == 0),
        "{results:#?}"
    );
    let mut ran = runs.0.lock().unwrap().clone();
    ran.sort();
    assert_eq!(
        ran,
        (0..13).map(|id| (id, 0)).collect::<Vec<_>>(),
        "each job ran once"
    );
    assert!(jobs.requests(10).await.expect("requests").is_empty());
    assert!(jobs.processes(10).await.expect("processes").is_empty());
}

/// The worker is stopped right after a claim's reply was lost, before it claims again: its
/// shutdown hands those jobs back, rather than leaving them to a rescuer as LOST.
async fn a_worker_stopped_after_a_lost_claim_reply_hands_its_jobs_back(backend: Backend) {
    let (jobs, faults) = FaultyStore::wrap(&test_jobs(backend).await);
    jobs.enqueue_many((0..3).map(|id| Counted { id }))
        .await
        .expect("enqueue");
    let config = WorkerConfig {
        heartbeat_interval: Duration::from_millis(200),
        heartbeat_timeout: Duration::from_secs(3600),
        ..WorkerConfig::default()
    };
    faults.lose_claim_replies.store(1, Ordering::Release);
    let lose = faults.lose_claim_replies.clone();
    let runs = Runs::default();
    let w = Worker::new(jobs.clone())
        .register::<Counted>()
        .state(runs.clone())
        .config(config)
        .spawn();
    let began = Instant::now();
    while lose.load(Ordering::Acquire) > 0 && began.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // The claim loop is backing off (0.2 s) before it claims again.
    w.stop().await.expect("worker stops");
    assert_eq!(lose.load(Ordering::Acquire), 0, "a claim's reply was lost");
    assert!(runs.0.lock().unwrap().is_empty(), "nothing ran");
    let requests = jobs.requests(10).await.expect("requests");
    assert_eq!(requests.len(), 3, "handed back");
    assert!(requests.iter().all(|r| r.retry_attempt == 0));
    assert!(jobs.processes(10).await.expect("processes").is_empty());
    assert!(jobs
        .results(&crate::ResultFilter::new())
        .await
        .expect("results")
        .is_empty());
}

conformance!(
    a_claim_whose_reply_is_lost_hands_its_jobs_back_at_once,
    a_worker_stopped_after_a_lost_claim_reply_hands_its_jobs_back,
);
