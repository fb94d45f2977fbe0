//! Filling the queue before a drain, and checking it afterwards, through the library's API.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use plainjobs::Jobs;

use crate::job::Shape;
use crate::server::{ServerProbe, PROBE};
use crate::target::{Backend, Target};

/// Jobs per `enqueue_many` call in backlogs (the old benchmark's, and the harness's).
pub const CHUNK: usize = 10_000;

/// What a drain starts from.
pub struct Backlog {
    pub jobs: u64,
    pub shape: Shape,
    /// Finished jobs put in the result table first (history within the retention).
    pub prefill_results: u64,
}

/// Bulk-enqueues `n` jobs of `shape` (seq 0..n) in calls of `chunk`; returns the time taken.
pub async fn enqueue(jobs: &Jobs, n: u64, shape: Shape, chunk: usize) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let mut next = 0u64;
    while next < n {
        let end = (next + chunk.max(1) as u64).min(n);
        let made = jobs
            .enqueue_many((next..end).map(|i| shape.job(i as i64, None)))
            .await
            .context("enqueue_many")?;
        if made.len() as u64 != end - next {
            bail!("enqueue_many made {} jobs of {}", made.len(), end - next);
        }
        next = end;
    }
    Ok(t.elapsed())
}

/// After a bulk enqueue: fresh statistics and a visibility map for the request table, as the
/// peers' benchmarks do before their drains.
pub async fn settle(target: &Target) -> anyhow::Result<()> {
    if target.backend() == Backend::Postgres {
        let mut p = ServerProbe::connect(&target.jobs_url()).await?;
        p.execute("VACUUM ANALYZE plainjobs_jobrequest").await?;
    }
    Ok(())
}

/// Requests and processes left (pending, claimed or running). On PostgreSQL counted by a
/// probe query, which the statement counts leave out; on SQLite through the library's stats.
pub async fn remaining(target: &Target, jobs: &Jobs) -> anyhow::Result<i64> {
    if target.backend() == Backend::Postgres {
        let mut conn = crate::server::connect(&target.jobs_url()).await?;
        let n: i64 = sqlx::query_scalar(&format!(
            "{PROBE} SELECT (SELECT count(*) FROM plainjobs_jobrequest) + (SELECT count(*) FROM plainjobs_jobprocess)"
        ))
        .fetch_one(&mut conn)
        .await?;
        return Ok(n);
    }
    let stats = jobs.stats().await.context("stats")?;
    Ok(stats
        .iter()
        .map(|q| q.ready + q.scheduled + q.waiting + q.running)
        .sum())
}

/// SUCCESSFUL results in the tables, and all results.
pub async fn results(jobs: &Jobs) -> anyhow::Result<(i64, i64)> {
    let stats = jobs.stats().await.context("stats")?;
    let ok = stats
        .iter()
        .filter_map(|q| q.results.get("SUCCESSFUL"))
        .sum();
    let all = stats.iter().flat_map(|q| q.results.values()).sum();
    Ok((ok, all))
}

/// Waits until no request or process is left; false after `timeout`.
pub async fn wait_empty(target: &Target, jobs: &Jobs, timeout: Duration) -> anyhow::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        if remaining(target, jobs).await? == 0 {
            return Ok(true);
        }
        if Instant::now() > deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Fills the result table with `n` SUCCESSFUL results spread over the past 6 days (within the
/// default 7-day retention, so the worker keeps them), with time-ordered (version 7) uuids as
/// the library makes them, in statements of a million rows: to show that the history's size
/// does not slow the lifecycle down.
pub async fn prefill_results(target: &Target, n: u64) -> anyhow::Result<()> {
    let t = Instant::now();
    let mut p = ServerProbe::connect(&target.jobs_url()).await?;
    p.execute(
        "CREATE FUNCTION pg_temp.uuid7_at(t timestamptz) RETURNS uuid LANGUAGE sql VOLATILE AS $$
           SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
             PLACING substring(int8send((extract(epoch FROM t) * 1000)::int8) FROM 3) FROM 1 FOR 6),
             52, 1), 53, 1), 'hex')::uuid
         $$",
    )
    .await?;
    let step: u64 = 1_000_000;
    let mut from = 0;
    while from < n {
        let to = (from + step).min(n);
        p.execute(&format!(
            "INSERT INTO plainjobs_jobresult (uuid, created_at, job_process_uuid, started_at, ended_at, error, status, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, retry_job_request_uuid, trace_id, span_id)
             SELECT pg_temp.uuid7_at(at), at, pg_temp.uuid7_at(at), at, at, '', 'SUCCESSFUL', pg_temp.uuid7_at(at), at,
                    'bench.Noop', jsonb_build_object('args', jsonb_build_array(), 'kwargs', jsonb_build_object('seq', i)),
                    0, 'prefill', 'default', 0, 0, '', NULL, NULL, NULL
             FROM generate_series({from}::int8, {to}::int8 - 1) AS i,
                  LATERAL (SELECT now() - interval '6 days' + i * (interval '6 days' / {n}::int8) AS at) AS a"
        ))
        .await?;
        from = to;
    }
    p.execute("VACUUM ANALYZE plainjobs_jobresult").await?;
    crate::out::log(format!(
        "prefilled {n} results in {:.1}s",
        t.elapsed().as_secs_f64()
    ));
    Ok(())
}
