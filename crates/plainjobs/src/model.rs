//! The rows of the four plain.jobs tables.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The longest queue name, job class and concurrency key the schema holds (characters).
pub const MAX_NAME_LEN: usize = 255;

/// A new uuid for a row (or a worker) this library creates: version 7, time-ordered (RFC 9562), so each
/// uuid index of the four tables grows at its right edge instead of at a random page. Random
/// (version 4) uuids touch a random leaf of every such index on each insert, which turns into
/// a full-page write per insert after each checkpoint once the index outgrows the cache.
pub(crate) fn new_uuid() -> Uuid {
    Uuid::now_v7()
}

/// The final status of a job run, stored in `plainjobs_jobresult.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    /// The job's code returned success.
    Successful,
    /// The job's code returned an error or panicked.
    Errored,
    /// The job was aborted by a shutdown timeout.
    Cancelled,
    /// The job asked to run again later; a new request was made.
    Deferred,
    /// The worker running the job died; a rescuer wrote this result.
    Lost,
}

impl JobStatus {
    /// Every status, in display order.
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Successful,
        JobStatus::Errored,
        JobStatus::Cancelled,
        JobStatus::Deferred,
        JobStatus::Lost,
    ];

    /// The text stored in the database (`"SUCCESSFUL"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Successful => "SUCCESSFUL",
            JobStatus::Errored => "ERRORED",
            JobStatus::Cancelled => "CANCELLED",
            JobStatus::Deferred => "DEFERRED",
            JobStatus::Lost => "LOST",
        }
    }

    /// Whether a result with this status may be retried (ERRORED, LOST, CANCELLED).
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            JobStatus::Errored | JobStatus::Lost | JobStatus::Cancelled
        )
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a status text that is not one of the five.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown job status {0:?}: expected SUCCESSFUL, ERRORED, CANCELLED, DEFERRED or LOST")]
pub struct UnknownStatus(pub String);

impl std::str::FromStr for JobStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

/// A pending job: waiting in `plainjobs_jobrequest` to be claimed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRequest {
    /// Row id.
    pub id: i64,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// Its stable identifier.
    pub uuid: Uuid,
    /// The job type's registered name.
    pub job_class: String,
    /// The `{"args": [...], "kwargs": {...}}` envelope.
    pub parameters: Option<Value>,
    /// Higher runs first.
    pub priority: i16,
    /// Where it was enqueued from (`file:line`).
    pub source: String,
    /// The queue it waits in.
    pub queue: String,
    /// How many retries it may have.
    pub retries: i16,
    /// Which attempt this is (0 for the first run).
    pub retry_attempt: i16,
    /// Its uniqueness key (`""` for none).
    pub concurrency_key: String,
    /// Not to start before this time (None: as soon as possible).
    pub start_at: Option<DateTime<Utc>>,
    /// Trace id of the enqueuing span (`0x` + 32 hex digits).
    pub trace_id: Option<String>,
    /// Span id of the enqueuing span (`0x` + 16 hex digits).
    pub span_id: Option<String>,
}

/// A claimed job: owned by one worker in `plainjobs_jobprocess`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobProcess {
    /// Row id.
    pub id: i64,
    /// Its identifier (the result's `job_process_uuid`).
    pub uuid: Uuid,
    /// When it was claimed.
    pub created_at: DateTime<Utc>,
    /// When its code began (None: claimed but not started).
    pub started_at: Option<DateTime<Utc>>,
    /// The request it came from.
    pub job_request_uuid: Uuid,
    /// When the request was made.
    pub requested_at: Option<DateTime<Utc>>,
    /// The job type's registered name.
    pub job_class: String,
    /// The parameter envelope.
    pub parameters: Option<Value>,
    /// Priority.
    pub priority: i16,
    /// Where it was enqueued from.
    pub source: String,
    /// Queue.
    pub queue: String,
    /// Retries allowed.
    pub retries: i16,
    /// This attempt's number.
    pub retry_attempt: i16,
    /// Uniqueness key.
    pub concurrency_key: String,
    /// Trace id.
    pub trace_id: Option<String>,
    /// Span id.
    pub span_id: Option<String>,
    /// The worker that owns it.
    pub worker_id: Uuid,
}

/// A finished job run, kept in `plainjobs_jobresult` for the retention period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    /// Row id.
    pub id: i64,
    /// Its identifier.
    pub uuid: Uuid,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// The process it ended (unique).
    pub job_process_uuid: Uuid,
    /// When the job's code began.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// Error text (message, causes, backtrace) or deferral note; empty on success.
    pub error: String,
    /// The outcome.
    pub status: JobStatus,
    /// The request it came from.
    pub job_request_uuid: Uuid,
    /// When the request was made.
    pub requested_at: Option<DateTime<Utc>>,
    /// Job type name.
    pub job_class: String,
    /// Parameter envelope.
    pub parameters: Option<Value>,
    /// Priority.
    pub priority: i16,
    /// Where it was enqueued from.
    pub source: String,
    /// Queue.
    pub queue: String,
    /// Retries allowed.
    pub retries: i16,
    /// This attempt's number.
    pub retry_attempt: i16,
    /// Uniqueness key.
    pub concurrency_key: String,
    /// The request made to retry or defer it, if any.
    pub retry_job_request_uuid: Option<Uuid>,
    /// Trace id.
    pub trace_id: Option<String>,
    /// Span id.
    pub span_id: Option<String>,
}

impl JobResult {
    /// Whether this result qualifies for a retry: failed, not yet retried, attempts left.
    pub fn is_retryable(&self) -> bool {
        self.status.is_failure()
            && self.retry_job_request_uuid.is_none()
            && self.retries > 0
            && self.retry_attempt < self.retries
    }
}

/// A live worker's registration row in `plainjobs_workerheartbeat`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerHeartbeat {
    /// Row id.
    pub id: i64,
    /// The worker's identifier (stamped on the jobs it claims).
    pub worker_id: Uuid,
    /// Its host.
    pub hostname: String,
    /// Its process id.
    pub pid: i32,
    /// The queues it serves.
    pub queues: Vec<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its last sign of life.
    pub last_heartbeat_at: DateTime<Utc>,
}
