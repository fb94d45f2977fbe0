//! One job's whole history: the chain of attempts — request, process, results — that retries
//! and deferrals link, reached from any uuid of any of them.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::{JobProcess, JobRequest, JobResult};
use crate::store::ResultFilter;
use crate::{Jobs, Result};

/// The longest chain followed (a chain is a job's attempts and deferrals).
const MAX_ATTEMPTS: usize = 200;

/// One attempt of a job: its request, and where it got to. The request row is gone once a
/// worker claims it; the process row once it finishes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Attempt {
    /// The request's uuid (every row of the attempt carries it).
    pub request_uuid: Uuid,
    /// Still pending.
    pub request: Option<JobRequest>,
    /// Claimed or running.
    pub process: Option<JobProcess>,
    /// Finished (one result, as a rule).
    pub results: Vec<JobResult>,
}

impl Attempt {
    /// When the attempt's request was made.
    pub fn requested_at(&self) -> Option<DateTime<Utc>> {
        self.request
            .as_ref()
            .map(|r| r.created_at)
            .or_else(|| self.process.as_ref().and_then(|p| p.requested_at))
            .or_else(|| self.results.iter().find_map(|r| r.requested_at))
    }

    /// The request that retries or defers this attempt, if one was made.
    pub fn followed_by(&self) -> Option<Uuid> {
        self.results.last().and_then(|r| r.retry_job_request_uuid)
    }

    fn is_empty(&self) -> bool {
        self.request.is_none() && self.process.is_none() && self.results.is_empty()
    }
}

/// A job's attempts in order, the first request first.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Chain {
    /// The attempts, oldest first.
    pub attempts: Vec<Attempt>,
    /// Where the uuid asked for was found.
    pub found_in: usize,
}

impl Jobs {
    /// A job's whole chain — every attempt's request, process and results, linked by retries
    /// and deferrals — from the uuid of any request, process or result in it. None if no row
    /// has that uuid.
    ///
    /// # Example
    /// ```no_run
    /// # async fn demo(jobs: plainjobs::Jobs, uuid: uuid::Uuid) -> plainjobs::Result<()> {
    /// if let Some(chain) = jobs.chain(uuid).await? {
    ///     for attempt in &chain.attempts {
    ///         for result in &attempt.results {
    ///             println!("{} {} {}", result.retry_attempt, result.status, result.error);
    ///         }
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// A database error.
    pub async fn chain(&self, uuid: Uuid) -> Result<Option<Chain>> {
        let Some(anchor) = self.request_uuid_of(uuid).await? else {
            return Ok(None);
        };
        let found = self.attempt(anchor).await?;
        let mut earlier = Vec::new();
        let mut first = found.clone();
        while earlier.len() < MAX_ATTEMPTS {
            let Some(previous) = self.previous_attempt(&first).await? else {
                break;
            };
            earlier.push(previous.clone());
            first = previous;
        }
        earlier.reverse();
        let found_in = earlier.len();
        let mut attempts = earlier;
        attempts.push(found);
        while attempts.len() < MAX_ATTEMPTS {
            let Some(next) = attempts.last().and_then(Attempt::followed_by) else {
                break;
            };
            let attempt = self.attempt(next).await?;
            if attempt.is_empty() {
                break;
            }
            attempts.push(attempt);
        }
        Ok(Some(Chain { attempts, found_in }))
    }

    /// The request uuid of the row with this uuid (a request, a process by its own or its
    /// request's uuid, a result by its own, its process's or its request's).
    async fn request_uuid_of(&self, uuid: Uuid) -> Result<Option<Uuid>> {
        if self.store().request_by_uuid(uuid).await?.is_some() {
            return Ok(Some(uuid));
        }
        if let Some(p) = self.store().process_by_uuid(uuid).await? {
            return Ok(Some(p.job_request_uuid));
        }
        let filter = ResultFilter::new().uuid(uuid).limit(1);
        let result = self.store().results(&filter).await?.into_iter().next();
        Ok(result.map(|r| r.job_request_uuid))
    }

    /// The rows of one attempt.
    async fn attempt(&self, request_uuid: Uuid) -> Result<Attempt> {
        let store = self.store();
        Ok(Attempt {
            request_uuid,
            request: store.request_by_uuid(request_uuid).await?,
            process: store
                .process_by_uuid(request_uuid)
                .await?
                .filter(|p| p.job_request_uuid == request_uuid),
            results: store.results_of_requests(&[request_uuid]).await?,
        })
    }

    /// The attempt that `attempt` retries or defers, if any.
    async fn previous_attempt(&self, attempt: &Attempt) -> Result<Option<Attempt>> {
        let made_by = attempt
            .requested_at()
            .or_else(|| attempt.results.first().map(|r| r.created_at));
        // A second's margin: on SQLite each statement of the retry's transaction reads the
        // clock anew, so the result may be stamped a little after its retry request.
        let Some(made_by) = made_by.map(|t| t + chrono::TimeDelta::seconds(1)) else {
            return Ok(None);
        };
        let parent = self
            .store()
            .result_retried_by(attempt.request_uuid, made_by)
            .await?;
        match parent {
            Some(parent) => Ok(Some(self.attempt(parent.job_request_uuid).await?)),
            None => Ok(None),
        }
    }
}
