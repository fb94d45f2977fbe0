//! The statements behind the dashboard's overview, the same on both backends (written once,
//! like `portable.rs`): the depth of each queue, and results counted per minute by id, so that
//! each refresh reads only the results written since the last one.

use std::time::Duration;

use super::overview::{CountedResults, MinuteCount, QueueDepth};
use super::rows::{decode_all, DecodeRow};
use super::sql::{Arg, SqlBackend, SqlConn, Statement};
use crate::Result;

/// Ready and scheduled requests, waiting and running processes per queue, and when the oldest
/// ready request of each queue became ready: one statement, one scan of each of the two small
/// tables.
pub(crate) async fn queue_depths<B: SqlBackend>(backend: &B) -> Result<Vec<QueueDepth>> {
    let statement = Statement::new(
        "SELECT queue, 'request' AS tbl,
                sum(CASE WHEN start_at IS NULL OR start_at <= $1 THEN 1 ELSE 0 END) AS a,
                sum(CASE WHEN start_at > $1 THEN 1 ELSE 0 END) AS b,
                min(CASE WHEN start_at IS NULL OR start_at <= $1 THEN COALESCE(start_at, created_at) END) AS oldest
         FROM plainjobs_jobrequest GROUP BY queue
         UNION ALL
         SELECT queue, 'process',
                sum(CASE WHEN started_at IS NULL THEN 1 ELSE 0 END),
                sum(CASE WHEN started_at IS NULL THEN 0 ELSE 1 END),
                NULL
         FROM plainjobs_jobprocess GROUP BY queue",
    )
    .arg(Arg::Now);
    let rows = backend.pooled().await?.rows(&statement).await?;
    let parts = decode_all(&rows, |row| {
        Ok((
            row.text("queue")?,
            row.text("tbl")?,
            row.int64("a")?,
            row.int64("b")?,
            row.opt_time("oldest")?,
        ))
    })?;
    let mut by_queue: std::collections::BTreeMap<String, QueueDepth> = Default::default();
    for (queue, table, a, b, oldest) in parts {
        let depth = by_queue.entry(queue.clone()).or_insert_with(|| QueueDepth {
            queue,
            ..Default::default()
        });
        if table == "request" {
            (depth.ready, depth.scheduled, depth.oldest_ready) = (a, b, oldest);
        } else {
            (depth.waiting, depth.running) = (a, b);
        }
    }
    Ok(by_queue.into_values().collect())
}

/// The id after which the results written `age` ago or since begin (by the `created_at`
/// index): the one before the first of them, else the newest result's, else 0.
#[cfg_attr(not(feature = "admin"), allow(dead_code))] // the dashboard's alone
pub(crate) async fn results_start<B: SqlBackend>(backend: &B, age: Duration) -> Result<i64> {
    let statement = Statement::new(
        "SELECT COALESCE(
            (SELECT id FROM plainjobs_jobresult WHERE created_at >= $1 ORDER BY created_at LIMIT 1) - 1,
            (SELECT max(id) FROM plainjobs_jobresult),
            0) AS start",
    )
    .arg(Arg::Ago(age));
    let row = backend.pooled().await?.row(&statement).await?;
    let row = row.ok_or(sqlx::Error::RowNotFound)?;
    Ok(row.int64("start")?)
}

/// Counts the results with an id in `(after_id, after_id + span]` per minute, queue and status
/// — by the primary key, so a refresh reads only what was written since the last one.
///
/// Ids are handed out when a row is inserted but seen when it commits, so a result may appear
/// after others with higher ids. Only results written more than `settle` ago are counted, and
/// none at or past the first one that is not: the next call starts there. A result is missed
/// only if the transaction that wrote it ran longer than `settle`.
#[cfg_attr(not(feature = "admin"), allow(dead_code))] // the dashboard's alone
pub(crate) async fn count_results_after<B: SqlBackend>(
    backend: &B,
    after_id: i64,
    span: i64,
    settle: Duration,
) -> Result<CountedResults> {
    let upto = after_id.saturating_add(span.max(1));
    let mut conn = backend.pooled().await?;
    let horizon = Statement::new(
        "SELECT min(id) AS h FROM plainjobs_jobresult WHERE id > $1 AND id <= $2 AND created_at > $3",
    )
    .arg(Arg::Int(after_id))
    .arg(Arg::Int(upto))
    .arg(Arg::Ago(settle));
    let unsettled = match conn.row(&horizon).await? {
        Some(row) => row.opt_int64("h")?,
        None => None,
    };
    let before = unsettled.unwrap_or(upto.saturating_add(1));
    let sql = format!(
        "SELECT {minute} AS minute, queue, status, count(*) AS n,
                sum(CASE WHEN retry_job_request_uuid IS NOT NULL OR retry_attempt > 0 THEN 1 ELSE 0 END) AS retried,
                max(id) AS last_id
         FROM plainjobs_jobresult WHERE id > $1 AND id < $2
         GROUP BY minute, queue, status",
        minute = B::CREATED_MINUTE
    );
    let statement = Statement::new(sql)
        .arg(Arg::Int(after_id))
        .arg(Arg::Int(before));
    let rows = conn.rows(&statement).await?;
    let counted = decode_all(&rows, |row| {
        let count = MinuteCount {
            minute: row.int64("minute")?,
            queue: row.text("queue")?,
            status: row.text("status")?,
            count: row.int64("n")?,
            retried: row.int64("retried")?,
        };
        Ok((count, row.int64("last_id")?))
    })?;
    let last_counted = counted.iter().map(|(_, id)| *id).max();
    let through_id = match (unsettled, last_counted) {
        // Up to the first unsettled result: what lies between is not committed (yet).
        (Some(h), _) => h - 1,
        (None, Some(last)) => last,
        // Nothing in the span: skip it if later results exist (a gap of deleted rows).
        (None, None) => {
            let newest = Statement::new("SELECT max(id) AS m FROM plainjobs_jobresult");
            let newest = match conn.row(&newest).await? {
                Some(row) => row.opt_int64("m")?,
                None => None,
            };
            match newest {
                Some(m) if m > upto => upto,
                _ => after_id,
            }
        }
    };
    Ok(CountedResults {
        counts: counted.into_iter().map(|(count, _)| count).collect(),
        through_id,
    })
}
