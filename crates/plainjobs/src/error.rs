//! The library's error type.

/// Everything that can go wrong in plainjobs outside of a job's own code.
///
/// A job's own failures are [`JobError`](crate::JobError)s and end as `ERRORED` results; these
/// errors are about the system: the database, bad input to enqueue, bad configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database could not be reached. The URL is shown with its password redacted.
    #[error("cannot connect to the database at {url}: {source}")]
    Connect {
        /// The database URL, password redacted.
        url: String,
        /// What the driver said.
        #[source]
        source: sqlx::Error,
    },
    /// The database URL names a backend this build does not support.
    #[error("unsupported database URL {0}: expected postgres://… (or postgresql://…)")]
    UnsupportedUrl(String),
    /// A query failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying a schema migration failed.
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        /// The migration's number.
        version: i64,
        /// The migration's name.
        name: &'static str,
        /// What the database said.
        #[source]
        source: sqlx::Error,
    },
    /// An enqueue was given a value the schema cannot hold (a queue name over 255 characters…).
    #[error("invalid {field}: {problem}")]
    InvalidInput {
        /// The field at fault (`queue`, `concurrency_key`, …).
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// Job parameters could not be encoded or decoded.
    #[error(transparent)]
    Params(#[from] crate::params::ParamsError),
    /// No job type is registered under this name.
    #[error("unknown job name {0:?}: no job type is registered under that name")]
    UnknownJob(String),
    /// A job's `should_enqueue` hook failed.
    #[error("should_enqueue of {job_class} failed: {message}")]
    ShouldEnqueue {
        /// The job class.
        job_class: String,
        /// Its error, with causes.
        message: String,
    },
    /// A schedule could not be parsed or can never fire.
    #[error("invalid schedule {expression:?}: {source}")]
    Schedule {
        /// The schedule's text.
        expression: String,
        /// What is wrong with it.
        #[source]
        source: crate::schedule::CronError,
    },
    /// The worker gave up (for example after too many consecutive claim failures).
    #[error("worker stopped: {0}")]
    Worker(String),
}

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Returns `url` with any password replaced by `***`, for messages and logs.
///
/// # Example
/// ```
/// assert_eq!(
///     plainjobs::redact_url("postgres://app:s3cret@db:5432/app"),
///     "postgres://app:***@db:5432/app"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &rest[at..]
                ),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    }
}

/// Formats an error with its chain of causes, one per line.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(cause) = cur {
        out.push_str("\nCaused by: ");
        out.push_str(&cause.to_string());
        cur = cause.source();
    }
    out
}
