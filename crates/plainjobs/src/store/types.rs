//! The plain data that crosses the storage boundary: what callers ask the store to write, and
//! the small summaries it returns.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::listing::Cursor;
use crate::model::{JobRequest, JobResult, JobStatus};

/// When a new request may start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Start {
    /// As soon as possible (`start_at` NULL).
    Now,
    /// `now() + delay` in the database's clock.
    After(Duration),
    /// At an absolute time.
    At(DateTime<Utc>),
}

/// A request to insert.
#[derive(Debug, Clone)]
pub struct NewRequest {
    /// Made here, once, before the first attempt to insert it (`model::new_uuid`): a second
    /// attempt after an ambiguous failure inserts the same uuid, so it can tell whether the
    /// first one committed.
    pub uuid: Uuid,
    pub job_class: String,
    pub parameters: Value,
    pub priority: i16,
    pub source: String,
    pub queue: String,
    pub retries: i16,
    pub retry_attempt: i16,
    pub concurrency_key: String,
    pub start: Start,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
}

impl NewRequest {
    /// The request as inserted, from what the database decided (`id`, `created_at`, `start_at`)
    /// and what was sent, which moves into it.
    pub(crate) fn into_request(
        self,
        id: i64,
        created_at: DateTime<Utc>,
        start_at: Option<DateTime<Utc>>,
    ) -> JobRequest {
        JobRequest {
            id,
            created_at,
            uuid: self.uuid,
            job_class: self.job_class,
            parameters: Some(self.parameters),
            priority: self.priority,
            source: self.source,
            queue: self.queue,
            retries: self.retries,
            retry_attempt: self.retry_attempt,
            concurrency_key: self.concurrency_key,
            start_at,
            trace_id: self.trace_id,
            span_id: self.span_id,
        }
    }

    /// As [`NewRequest::into_request`], keeping the request.
    pub(crate) fn to_request(
        &self,
        id: i64,
        created_at: DateTime<Utc>,
        start_at: Option<DateTime<Utc>>,
    ) -> JobRequest {
        self.clone().into_request(id, created_at, start_at)
    }
}

/// Where [`Store::locate_requests`](super::Store::locate_requests) found a request's uuid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Located {
    /// Still pending: the request row's id, `created_at` and `start_at`.
    Pending {
        id: i64,
        created_at: DateTime<Utc>,
        start_at: Option<DateTime<Utc>>,
    },
    /// Claimed or finished: the request row is gone. A process or result carries its
    /// `job_request_uuid` and when it was made (`requested_at`, else the row's own
    /// `created_at`).
    Taken { requested_at: DateTime<Utc> },
}

/// SQL condition on a process: its job never began, as far as the database can tell. The claim
/// stamps the jobs it starts at once with its own `now()`, the very value it gives `created_at`,
/// before the worker has seen them; only a later `started_at` (written by the result writer for
/// a job claimed ahead) shows that the job began. Used only for processes that their worker
/// does not account for (neither held nor known to have begun): the claim's own stamp is then
/// no sign of a start, since the claim's reply may never have arrived.
pub(crate) const NOT_BEGUN: &str = "(started_at IS NULL OR started_at = created_at)";

/// The condition a count by concurrency key adds so that it can use the key indexes, which
/// leave out rows without a key (`WHERE concurrency_key <> ''`): implied by a non-empty key,
/// and spelled out because neither database proves it from a bound parameter.
pub(crate) fn key_condition(key: &str) -> &'static str {
    if key.is_empty() {
        ""
    } else {
        " AND concurrency_key <> ''"
    }
}

/// What the orphan rescue did with this worker's processes that it no longer accounts for.
#[derive(Debug, Default)]
pub(crate) struct Orphans {
    /// Never began: handed back to the request table, no retry spent.
    pub handed_back: u64,
    /// Began (by the database's record or the worker's): LOST results.
    pub lost: Vec<JobResult>,
}

/// How a worker's claims run.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClaimHow {
    /// On the claim's own sessions, with its plan pinned (needs session connections: not
    /// behind a transaction-mode pooler, where session settings would reach other clients;
    /// the store ignores it behind [`Pooler::Transaction`](crate::Pooler::Transaction)).
    /// PostgreSQL only.
    pub pinned_session: bool,
    /// Commit without waiting for the WAL flush (`WorkerConfig::asynchronous_claims`).
    /// PostgreSQL only.
    pub async_commit: bool,
    /// Claim only jobs of these names (`WorkerConfig::only_registered`); None: any.
    pub job_classes: Option<std::sync::Arc<[String]>>,
}

/// A finished run to record in the batched (no follow-up request) path.
#[derive(Debug, Clone)]
pub(crate) struct Finish {
    pub process_uuid: Uuid,
    pub status: JobStatus,
    pub error: String,
}

/// A worker's registration.
#[derive(Debug, Clone)]
pub(crate) struct NewHeartbeat {
    pub worker_id: Uuid,
    pub hostname: String,
    pub pid: i32,
    pub queues: Vec<String>,
}

/// Which results to list (newest first): by status, queue, job name, uuid and when they were
/// written, a page of at most `limit` starting at `cursor`.
///
/// # Example
/// ```no_run
/// # async fn demo(jobs: plainjobs::Jobs) -> plainjobs::Result<()> {
/// use plainjobs::{JobStatus, ResultFilter};
/// let failed = jobs
///     .results(&ResultFilter::new().status(JobStatus::Errored).queue("emails").limit(20))
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ResultFilter {
    /// Only this status.
    pub status: Option<JobStatus>,
    /// Only results that were retried or are retries (plain.jobs' "Retried").
    pub retried: bool,
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this job name.
    pub job_class: Option<String>,
    /// Only results written at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only results written before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only the result with this uuid, or of the process or request with this uuid.
    pub uuid: Option<Uuid>,
    /// Only results with an id in this range.
    pub ids: Option<std::ops::Range<i64>>,
    /// A page reads at most this many results past its cursor, however few of them match
    /// (see [`ResultFilter::scan_at_most`]).
    pub scan_limit: Option<i64>,
    /// Where the page starts.
    pub cursor: Cursor,
    /// At most this many (100 by default).
    pub limit: i64,
}

impl Default for ResultFilter {
    fn default() -> Self {
        ResultFilter {
            status: None,
            retried: false,
            queue: None,
            job_class: None,
            since: None,
            until: None,
            uuid: None,
            ids: None,
            scan_limit: None,
            cursor: Cursor::First,
            limit: 100,
        }
    }
}

impl ResultFilter {
    /// Every result, the newest 100.
    pub fn new() -> ResultFilter {
        ResultFilter::default()
    }

    /// Only results with this status.
    pub fn status(mut self, status: JobStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Only results that were retried (`retry_job_request_uuid` set) or are retries
    /// (`retry_attempt` > 0), as plain.jobs' admin filters "Retried".
    pub fn retried(mut self) -> Self {
        self.retried = true;
        self
    }

    /// Only results of this queue.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Only results of this job name.
    pub fn job_class(mut self, job_class: impl Into<String>) -> Self {
        self.job_class = Some(job_class.into());
        self
    }

    /// Only results written at or after `since`.
    pub fn since(mut self, since: DateTime<Utc>) -> Self {
        self.since = Some(since);
        self
    }

    /// Only results written before `until`.
    pub fn until(mut self, until: DateTime<Utc>) -> Self {
        self.until = Some(until);
        self
    }

    /// Only the result with this uuid, or of the process or request with this uuid.
    pub fn uuid(mut self, uuid: Uuid) -> Self {
        self.uuid = Some(uuid);
        self
    }

    /// Only results with an id in `ids`.
    pub fn ids(mut self, ids: std::ops::Range<i64>) -> Self {
        self.ids = Some(ids);
        self
    }

    /// Each page of [`Jobs::results_page`](crate::Jobs::results_page) reads at most `n`
    /// results past its cursor, by id, and stops there even with fewer matches than a page —
    /// its `next` (or `prev`) cursor then continues the search. For filters that no index
    /// serves (a job name, a queue), so that a rare match costs a page `n` rows, not the
    /// whole table. Ignored by [`Jobs::results`](crate::Jobs::results).
    ///
    /// ```no_run
    /// # async fn demo(jobs: plainjobs::Jobs) -> plainjobs::Result<()> {
    /// use plainjobs::ResultFilter;
    /// let filter = ResultFilter::new().job_class("app.jobs.Rare").scan_at_most(100_000);
    /// let page = jobs.results_page(&filter).await?;
    /// // Fewer than a page may have matched in the newest 100,000 results: `next` goes on.
    /// if let Some(older) = page.next {
    ///     let more = jobs.results_page(&filter.clone().cursor(older)).await?;
    ///     println!("{} more", more.items.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn scan_at_most(mut self, n: i64) -> Self {
        self.scan_limit = Some(n);
        self
    }

    /// The page at `cursor`.
    pub fn cursor(mut self, cursor: Cursor) -> Self {
        self.cursor = cursor;
        self
    }

    /// At most `limit` results.
    pub fn limit(mut self, limit: i64) -> Self {
        self.limit = limit;
        self
    }
}

/// Which pending and running jobs an operation applies to ([`Jobs::cancel_where`]): by queue,
/// job name and when they were enqueued. The default matches every job.
///
/// [`Jobs::cancel_where`]: crate::Jobs::cancel_where
///
/// # Example
/// ```no_run
/// # async fn demo(jobs: plainjobs::Jobs) -> plainjobs::Result<()> {
/// use plainjobs::JobFilter;
/// let cancelled = jobs
///     .cancel_where(&JobFilter::new().queue("emails"), "ops@example.com")
///     .await?;
/// println!("{} pending, {} running", cancelled.requests, cancelled.processes);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct JobFilter {
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this job name.
    pub job_class: Option<String>,
    /// Only jobs enqueued at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only jobs enqueued before this time.
    pub until: Option<DateTime<Utc>>,
}

impl JobFilter {
    /// Every job.
    pub fn new() -> JobFilter {
        JobFilter::default()
    }

    /// Only jobs of this queue.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Only jobs of this job name.
    pub fn job_class(mut self, job_class: impl Into<String>) -> Self {
        self.job_class = Some(job_class.into());
        self
    }

    /// Only jobs enqueued at or after `since`.
    pub fn since(mut self, since: DateTime<Utc>) -> Self {
        self.since = Some(since);
        self
    }

    /// Only jobs enqueued before `until`.
    pub fn until(mut self, until: DateTime<Utc>) -> Self {
        self.until = Some(until);
        self
    }
}

/// A paused queue: no worker claims from it until it is resumed ([`Jobs::pause_queue`]).
///
/// [`Jobs::pause_queue`]: crate::Jobs::pause_queue
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PausedQueue {
    /// The queue.
    pub queue: String,
    /// When it was paused (None if the record was edited by hand and says no time).
    pub paused_at: Option<DateTime<Utc>>,
    /// Who paused it, as they said.
    pub paused_by: String,
}

/// What [`Jobs::cancel_where`] and [`Jobs::cancel_many`] cancelled: each job got a CANCELLED result.
///
/// [`Jobs::cancel_where`]: crate::Jobs::cancel_where
/// [`Jobs::cancel_many`]: crate::Jobs::cancel_many
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Purged {
    /// Pending requests.
    pub requests: u64,
    /// Claimed or running jobs.
    pub processes: u64,
}

/// Counts for `stats`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct QueueStats {
    /// The queue.
    pub queue: String,
    /// Requests ready to run.
    pub ready: i64,
    /// Requests scheduled for later.
    pub scheduled: i64,
    /// Claimed, not started.
    pub waiting: i64,
    /// Running.
    pub running: i64,
    /// Results by status.
    pub results: std::collections::BTreeMap<String, i64>,
    /// Paused: no worker claims from it ([`Jobs::pause_queue`](crate::Jobs::pause_queue)).
    pub paused: bool,
}

/// Folds `(queue, kind, count)` rows — kinds `ready`, `scheduled`, `waiting`, `running` and
/// `result:<STATUS>` — into per-queue stats, sorted by queue.
pub(crate) fn fold_stats(rows: impl IntoIterator<Item = (String, String, i64)>) -> Vec<QueueStats> {
    let mut by_queue: std::collections::BTreeMap<String, QueueStats> = Default::default();
    for (queue, kind, n) in rows {
        let entry = by_queue.entry(queue.clone()).or_insert_with(|| QueueStats {
            queue,
            ..Default::default()
        });
        match kind.as_str() {
            "ready" => entry.ready = n,
            "scheduled" => entry.scheduled = n,
            "waiting" => entry.waiting = n,
            "running" => entry.running = n,
            other => {
                entry
                    .results
                    .insert(other.trim_start_matches("result:").to_string(), n);
            }
        }
    }
    by_queue.into_values().collect()
}

/// What [`Jobs::migrate`](crate::Jobs::migrate) changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Migrated {
    /// Each difference it fixed, in words (empty: the schema was up to date).
    pub changes: Vec<String>,
    /// The schema version now.
    pub version: i64,
}

/// The schema as [`Jobs::check_schema`](crate::Jobs::check_schema) found it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct SchemaReport {
    /// The version plainjobs recorded (None: never migrated by plainjobs).
    pub version: Option<i64>,
    /// The newest version this build knows.
    pub known_version: i64,
    /// What differs from the expected schema, in words (`migrate` fixes it).
    pub problems: Vec<String>,
    /// Whether the claim index is in place and valid (without it every claim sorts the queue).
    pub claim_index: bool,
    /// Whether the job tables exist at all.
    pub tables: bool,
}

impl SchemaReport {
    pub(crate) fn new(
        version: Option<i64>,
        known_version: i64,
        problems: Vec<String>,
        claim_index: bool,
        tables: bool,
    ) -> SchemaReport {
        SchemaReport {
            version,
            known_version,
            problems,
            claim_index,
            tables,
        }
    }

    /// Nothing differs.
    pub fn is_current(&self) -> bool {
        self.problems.is_empty()
    }

    /// Migrated by a newer plainjobs than this one.
    pub fn is_newer(&self) -> bool {
        self.version.is_some_and(|v| v > self.known_version)
    }
}
