//! Inserting requests: one with plain parameters, many through `unnest`; and a request
//! inserted straight as a begun process (local dispatch).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

use super::{PgExec, PgStore};
use crate::model::{JobProcess, JobRequest};
use crate::store::rows::{job_process, PROCESS_COLUMNS};
use crate::store::sql::micros;
use crate::store::{NewRequest, Start};
use crate::{Error, Result};

/// The start columns sent for a request: a delay the database adds to its own clock, or a time.
fn start_columns(start: Start) -> (Option<i64>, Option<DateTime<Utc>>) {
    match start {
        Start::Now => (None, None),
        Start::After(d) => (Some(micros(d)), None),
        Start::At(t) => (None, Some(t)),
    }
}

/// One request: `$1`…`$13` as plain parameters, after `WITH` (nothing, or [`QUIET`]) and from
/// `FROM` (nothing, or the quiet row).
macro_rules! insert_one {
    ($with:expr, $from:expr) => {
        concat!(
            $with,
            "INSERT INTO plainjobs_jobrequest (created_at, uuid, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, start_at, trace_id, span_id)
             SELECT now(), $1, $2, $3, $4, $5, $6, $7, $8, $9,
                    CASE WHEN $10::int8 IS NOT NULL THEN now() + $10::int8 * interval '1 microsecond' ELSE $11::timestamptz END,
                    $12, $13 ",
            $from,
            " RETURNING id, created_at, start_at"
        )
    };
}

/// The insert trigger's `NOTIFY` turned off for the rest of the inserting transaction (the
/// store wakes the workers after the commit: `wake.rs`). Set inside the statement, so an
/// autocommit enqueue costs no round trip more; the `FROM` that reads it makes sure it is set
/// before the statement's trigger runs.
macro_rules! quiet {
    () => {
        "quiet AS (SELECT set_config('plainjobs.notify', 'off', true) AS quiet)"
    };
}
const QUIET: &str = quiet!();

const INSERT_ONE: &str = insert_one!("", "");
const INSERT_ONE_QUIET: &str = insert_one!(concat!("WITH ", quiet!(), " "), "FROM quiet");

/// One request, with plain parameters: a single enqueue is the latency path, and a one-row
/// insert costs the server less to bind and run than `unnest` over arrays of one.
async fn insert_request(conn: &mut PgExec<'_>, r: NewRequest, quiet: bool) -> Result<JobRequest> {
    let uuid = r.uuid;
    let (delay_us, start_at) = start_columns(r.start);
    let row = sqlx::query(if quiet { INSERT_ONE_QUIET } else { INSERT_ONE })
        .bind(uuid)
        .bind(&r.job_class)
        .bind(&r.parameters)
        .bind(r.priority)
        .bind(&r.source)
        .bind(&r.queue)
        .bind(r.retries)
        .bind(r.retry_attempt)
        .bind(&r.concurrency_key)
        .bind(delay_us)
        .bind(start_at)
        .bind(&r.trace_id)
        .bind(&r.span_id)
        .fetch_one(&mut *conn)
        .await?;
    let id = row.try_get(0)?;
    let created_at = row.try_get(1)?;
    let start_at = row.try_get(2)?;
    Ok(r.into_request(id, created_at, start_at))
}

/// Many requests in one statement, through `unnest` over one array per column; what the
/// database decided comes back as one row of arrays (in the order the rows were inserted), not
/// a row per request: decoding thousands of rows cost the client more than the insert cost the
/// server.
const INSERT_MANY: &str = "WITH made AS (
             INSERT INTO plainjobs_jobrequest (created_at, uuid, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, start_at, trace_id, span_id)
             SELECT now(), t.uuid, t.job_class, t.parameters, t.priority, t.source, t.queue, t.retries, t.retry_attempt, t.concurrency_key,
                    CASE WHEN t.delay_us IS NOT NULL THEN now() + t.delay_us * interval '1 microsecond' ELSE t.start_at END,
                    t.trace_id, t.span_id
             FROM unnest($1::text[], $2::jsonb[], $3::int2[], $4::text[], $5::text[], $6::int2[], $7::int2[], $8::text[], $9::int8[], $10::timestamptz[], $11::text[], $12::text[], $13::uuid[])
                  WITH ORDINALITY AS t(job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, delay_us, start_at, trace_id, span_id, uuid, ord)
             ORDER BY t.ord
             RETURNING uuid, id, start_at
           )
           SELECT now(), array_agg(uuid), array_agg(id), array_agg(start_at) FROM made";

/// [`INSERT_MANY`] with [`QUIET`]: read by a join with its one row.
static INSERT_MANY_QUIET: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    INSERT_MANY
        .replacen("WITH made AS (", &format!("WITH {QUIET}, made AS ("), 1)
        .replacen(" ORDER BY t.ord", " CROSS JOIN quiet ORDER BY t.ord", 1)
});

/// The columns of many requests, one array each, as [`INSERT_MANY`] binds them.
struct Columns<'a> {
    job_class: Vec<&'a str>,
    parameters: Vec<&'a Value>,
    priority: Vec<i16>,
    source: Vec<&'a str>,
    queue: Vec<&'a str>,
    retries: Vec<i16>,
    retry_attempt: Vec<i16>,
    key: Vec<&'a str>,
    delay_us: Vec<Option<i64>>,
    start_at: Vec<Option<DateTime<Utc>>>,
    trace_id: Vec<Option<&'a str>>,
    span_id: Vec<Option<&'a str>>,
}

impl<'a> Columns<'a> {
    fn of(rows: &'a [NewRequest]) -> Columns<'a> {
        let n = rows.len();
        let mut c = Columns {
            job_class: Vec::with_capacity(n),
            parameters: Vec::with_capacity(n),
            priority: Vec::with_capacity(n),
            source: Vec::with_capacity(n),
            queue: Vec::with_capacity(n),
            retries: Vec::with_capacity(n),
            retry_attempt: Vec::with_capacity(n),
            key: Vec::with_capacity(n),
            delay_us: Vec::with_capacity(n),
            start_at: Vec::with_capacity(n),
            trace_id: Vec::with_capacity(n),
            span_id: Vec::with_capacity(n),
        };
        for r in rows {
            c.job_class.push(r.job_class.as_str());
            c.parameters.push(&r.parameters);
            c.priority.push(r.priority);
            c.source.push(r.source.as_str());
            c.queue.push(r.queue.as_str());
            c.retries.push(r.retries);
            c.retry_attempt.push(r.retry_attempt);
            c.key.push(r.concurrency_key.as_str());
            let (delay, at) = start_columns(r.start);
            c.delay_us.push(delay);
            c.start_at.push(at);
            c.trace_id.push(r.trace_id.as_deref());
            c.span_id.push(r.span_id.as_deref());
        }
        c
    }
}

/// Inserts requests, returning them in the order given: one with plain parameters, more
/// through [`INSERT_MANY`].
///
/// `quiet`: the trigger sends no `NOTIFY` (see [`QUIET`]); the caller wakes the workers.
pub(super) async fn insert_requests(
    conn: &mut PgExec<'_>,
    mut rows: Vec<NewRequest>,
    quiet: bool,
) -> Result<Vec<JobRequest>> {
    if rows.len() <= 1 {
        return match rows.pop() {
            Some(one) => insert_request(conn, one, quiet).await.map(|r| vec![r]),
            None => Ok(Vec::new()),
        };
    }
    // Uuids come with the requests (made before the first attempt), so each returned row can
    // be matched to what was sent; only the columns the database decides come back (not every
    // row's parameters).
    let uuids: Vec<Uuid> = rows.iter().map(|r| r.uuid).collect();
    let c = Columns::of(&rows);
    let sql: &str = if quiet {
        &INSERT_MANY_QUIET
    } else {
        INSERT_MANY
    };
    let made = sqlx::query(sql)
        .bind(c.job_class)
        .bind(c.parameters)
        .bind(c.priority)
        .bind(c.source)
        .bind(c.queue)
        .bind(c.retries)
        .bind(c.retry_attempt)
        .bind(c.key)
        .bind(c.delay_us)
        .bind(c.start_at)
        .bind(c.trace_id)
        .bind(c.span_id)
        .bind(&uuids)
        .fetch_one(&mut *conn)
        .await?;
    with_decided(&made, rows, uuids)
}

/// The requests sent, each with what the database decided for it ([`INSERT_MANY`]'s row of
/// arrays).
fn with_decided(made: &PgRow, rows: Vec<NewRequest>, uuids: Vec<Uuid>) -> Result<Vec<JobRequest>> {
    let n = rows.len();
    // `now()` is the transaction's start: every row's created_at.
    let created_at: DateTime<Utc> = made.try_get(0)?;
    let made_uuids: Vec<Uuid> = made.try_get(1)?;
    let ids: Vec<i64> = made.try_get(2)?;
    let starts: Vec<Option<DateTime<Utc>>> = made.try_get(3)?;
    type Decided = (i64, DateTime<Utc>, Option<DateTime<Utc>>);
    // The rows come back in the order they were inserted in practice; PostgreSQL does not
    // promise it, so any other order is matched by uuid.
    let mut in_order = Vec::with_capacity(n);
    let mut by_uuid = std::collections::HashMap::new();
    for (i, ((uuid, id), start_at)) in made_uuids.into_iter().zip(ids).zip(starts).enumerate() {
        let d: Decided = (id, created_at, start_at);
        if by_uuid.is_empty() && uuids.get(i) == Some(&uuid) {
            in_order.push(d);
        } else {
            by_uuid.insert(uuid, d);
        }
    }
    let mut out = Vec::with_capacity(n);
    for (i, (r, uuid)) in rows.into_iter().zip(uuids).enumerate() {
        let found = match in_order.get(i) {
            Some(d) => Some(*d),
            None => by_uuid.remove(&uuid),
        };
        let Some((id, created_at, start_at)) = found else {
            return Err(Error::from(sqlx::Error::Protocol(format!(
                "the insert of request {} returned no row",
                r.uuid
            ))));
        };
        out.push(r.into_request(id, created_at, start_at));
    }
    Ok(out)
}

/// See [`Store::insert_started`](crate::store::Store::insert_started).
pub(super) async fn insert_started(
    store: &PgStore,
    worker_id: Uuid,
    req: &NewRequest,
    process_uuid: Uuid,
) -> Result<Option<(JobRequest, JobProcess)>> {
    let row = sqlx::query(&format!(
        "INSERT INTO plainjobs_jobprocess (uuid, created_at, started_at, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, trace_id, span_id, worker_id)
         SELECT $1, now(), now(), $2, now(), $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13
         WHERE EXISTS (SELECT 1 FROM plainjobs_workerheartbeat WHERE worker_id = $13 FOR KEY SHARE)
         RETURNING {PROCESS_COLUMNS}"
    ))
    .bind(process_uuid)
    .bind(req.uuid)
    .bind(&req.job_class)
    .bind(&req.parameters)
    .bind(req.priority)
    .bind(&req.source)
    .bind(&req.queue)
    .bind(req.retries)
    .bind(req.retry_attempt)
    .bind(&req.concurrency_key)
    .bind(&req.trace_id)
    .bind(&req.span_id)
    .bind(worker_id)
    .fetch_optional(&mut store.conn().await?.exec())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let process = job_process(&row)?;
    let requested_at = process.requested_at.unwrap_or(process.created_at);
    Ok(Some((req.to_request(0, requested_at, None), process)))
}
