//! The [`Job`] trait: what a job type is, its defaults and its hooks.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::model::JobResult;

mod context;
mod error;
mod state;
mod unique;

pub use context::JobContext;
pub use error::JobError;
pub use state::State;
pub(crate) use unique::fitted_key;
pub use unique::{advisory_lock_id, UniqueCheck};

/// A background job type.
///
/// The struct's fields are the job's parameters; they are stored as plain.jobs stores them
/// (see [`params`](crate::params)). `NAME` is what goes in the `job_class` column: keep it stable
/// across refactors (use [`ALIASES`](Job::ALIASES) when you rename).
///
/// Every method but [`run`](Job::run) has a default that matches plain.jobs.
///
/// # Example
/// ```
/// use plainjobs::{Job, JobContext, JobError, Outcome};
/// use serde::{Deserialize, Serialize};
/// use std::time::Duration;
///
/// #[derive(Serialize, Deserialize)]
/// struct WelcomeUser { user_id: i64 }
///
/// impl Job for WelcomeUser {
///     const NAME: &'static str = "app.jobs.WelcomeUser";
///     async fn run(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
///         println!("welcome {} (attempt {})", self.user_id, ctx.process().retry_attempt);
///         Ok(Outcome::Success)
///     }
///     fn default_concurrency_key(&self) -> String { format!("user-{}", self.user_id) }
///     fn default_retries(&self) -> i16 { 3 }
///     fn retry_delay(&self, attempt: u32) -> Duration { Duration::from_secs(1 << (attempt - 1)) }
/// }
/// ```
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The stable name stored in `job_class` (plain.jobs uses the Python class path).
    const NAME: &'static str;
    /// Older names rows may still carry; a worker runs them as this type.
    const ALIASES: &'static [&'static str] = &[];
    /// One line for `plainjobs list`.
    const DESCRIPTION: &'static str = "";

    /// The job's work. Return [`Outcome::Success`], [`Outcome::Defer`] to run again later, or an
    /// error (which, like a panic, makes an `ERRORED` result and may be retried).
    fn run(&self, ctx: &JobContext) -> impl Future<Output = Result<Outcome, JobError>> + Send;

    /// Queue when the enqueue does not name one (`"default"`).
    fn default_queue(&self) -> String {
        "default".to_string()
    }
    /// Priority when the enqueue does not give one (0; higher runs first, negatives allowed).
    fn default_priority(&self) -> i16 {
        0
    }
    /// Retries when the enqueue does not give them (0).
    fn default_retries(&self) -> i16 {
        0
    }
    /// Uniqueness key when the enqueue does not give one (`""`: no uniqueness).
    fn default_concurrency_key(&self) -> String {
        String::new()
    }
    /// Backoff before retry number `attempt` (1 for the first retry). Default: none.
    fn retry_delay(&self, attempt: u32) -> Duration {
        let _ = attempt;
        Duration::ZERO
    }

    /// The longest one run may take (None, the default: no limit). A run over its limit is
    /// stopped (its future dropped: a shell command's process group ends with it) and recorded
    /// ERRORED with a message saying so, then retried if it may be. An enqueue's
    /// [`timeout`](crate::Enqueue::timeout) overrides it.
    fn timeout(&self) -> Option<Duration> {
        None
    }

    /// Whether to enqueue, asked under the key's lock. The default: an empty key always
    /// enqueues; otherwise only when no request and no process of this job class has the key
    /// (retries included). Override it for limits or rate limits with the queries of
    /// [`UniqueCheck`].
    ///
    /// # Errors
    /// A database error from a query; the enqueue fails with it.
    fn should_enqueue(
        &self,
        concurrency_key: &str,
        check: &mut UniqueCheck<'_>,
    ) -> impl Future<Output = crate::Result<bool>> + Send {
        async move {
            if concurrency_key.is_empty() {
                return Ok(true);
            }
            Ok(check.requested_jobs(true).await? == 0 && check.processing_jobs(true).await? == 0)
        }
    }

    /// How enqueues of this job serialize on their concurrency key (an advisory lock).
    fn lock_strategy(&self) -> LockStrategy {
        LockStrategy::Advisory
    }

    /// Called after a `LOST` or `CANCELLED` result was committed (the job's code never saw its
    /// end). Errors are logged and swallowed. Never called for SUCCESSFUL, ERRORED or DEFERRED.
    fn on_aborted(
        &self,
        result: &JobResult,
        state: &State,
    ) -> impl Future<Output = Result<(), JobError>> + Send {
        let _ = (result, state);
        async { Ok(()) }
    }
}

/// How an enqueue with a non-empty concurrency key is serialized against other enqueues.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum LockStrategy {
    /// No lock: `should_enqueue` races with concurrent enqueues.
    None,
    /// A transaction-scoped advisory lock on the first 8 bytes of
    /// `md5("{job_class}::{concurrency_key}")`, the id plain.jobs uses.
    #[default]
    Advisory,
    /// The application's own lock, taken inside the enqueue's transaction.
    Custom(Arc<dyn KeyLock>),
}

impl fmt::Debug for LockStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockStrategy::None => f.write_str("None"),
            LockStrategy::Advisory => f.write_str("Advisory"),
            LockStrategy::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// An application-defined lock for [`LockStrategy::Custom`].
#[async_trait::async_trait]
pub trait KeyLock: Send + Sync {
    /// Takes the lock for `job_class` and `concurrency_key` inside the enqueue's transaction
    /// (for example with [`UniqueCheck::advisory_lock`] on an id of your own).
    ///
    /// # Errors
    /// A database error; the enqueue fails with it.
    async fn lock(
        &self,
        check: &mut UniqueCheck<'_>,
        job_class: &str,
        concurrency_key: &str,
    ) -> crate::Result<()>;
}

/// What a job's [`run`](Job::run) asks for when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Done: a `SUCCESSFUL` result.
    Success,
    /// Run again later: a `DEFERRED` result and a new request (plain's `DeferJob`).
    Defer {
        /// How long from now.
        delay: Duration,
        /// Whether the new request counts as a retry attempt.
        increment_retries: bool,
    },
}

impl Outcome {
    /// Defer by `delay` without using a retry.
    pub fn defer(delay: Duration) -> Outcome {
        Outcome::Defer {
            delay,
            increment_retries: false,
        }
    }
}
