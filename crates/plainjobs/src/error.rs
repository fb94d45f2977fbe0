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
    /// The database URL names no backend this build supports.
    #[error(
        "unsupported database URL {0}: expected postgres://… (or postgresql://…) for PostgreSQL, \
         or sqlite://path/to/file.sqlite3 (or sqlite::memory:) for SQLite"
    )]
    UnsupportedUrl(String),
    /// The SQLite file does not exist, and the connection was asked not to create it
    /// ([`ConnectOptions::create_if_missing`](crate::ConnectOptions::create_if_missing)).
    #[error("no database at {0}: the file does not exist")]
    NoDatabase(String),
    /// A query failed; [`DbErrorKind`] says what that means for the caller.
    #[error("database error: {source}")]
    Database {
        /// What the failure means: may the statement have committed, is it worth trying again.
        kind: DbErrorKind,
        /// What the driver said.
        #[source]
        source: sqlx::Error,
    },
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
    /// The database was migrated by a newer plainjobs: this one refuses to run against it.
    #[error(
        "the job tables are at schema version {found}, newer than this plainjobs knows ({known}): \
         upgrade plainjobs (every worker and the plainjobs command) before running it against this database"
    )]
    SchemaTooNew {
        /// The version the database records.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// The job tables do not exist yet.
    #[error("the job tables do not exist in this database: run `plainjobs migrate` (or Jobs::migrate) first")]
    NotMigrated,
    /// `migrate` found differences it cannot fix by itself.
    #[error("the job tables differ in ways plainjobs cannot fix by itself: {}; fix them by hand (or restore plain.jobs' schema), then run migrate again", problems.join("; "))]
    SchemaUnfixable {
        /// What differs.
        problems: Vec<String>,
    },
    /// A statement that fixes the schema failed.
    #[error("migrate could not fix \"{change}\": `{statement}` failed: {source}")]
    SchemaChange {
        /// What it was fixing.
        change: String,
        /// The statement.
        statement: String,
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
    /// The worker gave up claiming: this many claims failed in a row (its supervisor should
    /// restart it once the database is back).
    #[error("worker stopped: claiming failed {failures} times in a row; last error: {last}")]
    ClaimFailures {
        /// Consecutive failed claims.
        failures: u32,
        /// The last claim's error.
        #[source]
        last: Box<Error>,
    },
    /// The worker's task panicked or was aborted.
    #[error("worker task failed: {0}")]
    WorkerTask(#[source] tokio::task::JoinError),
}

impl Error {
    /// What a database error means for the caller (None for the other variants).
    pub fn db_kind(&self) -> Option<DbErrorKind> {
        match self {
            Error::Database { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// Whether the statement that failed may have committed without our learning of it (the
    /// connection broke, or the server closed it, after the statement was sent).
    pub fn may_have_committed(&self) -> bool {
        self.db_kind().is_some_and(DbErrorKind::may_have_committed)
    }

    /// Whether the same statement may succeed if tried again (the failure was about the
    /// connection or the server, not about what was written).
    pub fn is_transient(&self) -> bool {
        self.db_kind().is_some_and(DbErrorKind::is_transient)
    }

    /// The variant's name, as `plainjobs::Error::Database`: what telemetry records as
    /// `error.type` (a short, stable identifier, as the conventions ask).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Error::Connect { .. } => "plainjobs::Error::Connect",
            Error::UnsupportedUrl(_) => "plainjobs::Error::UnsupportedUrl",
            Error::NoDatabase(_) => "plainjobs::Error::NoDatabase",
            Error::Database { .. } => "plainjobs::Error::Database",
            Error::Migration { .. } => "plainjobs::Error::Migration",
            Error::SchemaTooNew { .. } => "plainjobs::Error::SchemaTooNew",
            Error::NotMigrated => "plainjobs::Error::NotMigrated",
            Error::SchemaUnfixable { .. } => "plainjobs::Error::SchemaUnfixable",
            Error::SchemaChange { .. } => "plainjobs::Error::SchemaChange",
            Error::InvalidInput { .. } => "plainjobs::Error::InvalidInput",
            Error::Params(_) => "plainjobs::Error::Params",
            Error::UnknownJob(_) => "plainjobs::Error::UnknownJob",
            Error::ShouldEnqueue { .. } => "plainjobs::Error::ShouldEnqueue",
            Error::Schedule { .. } => "plainjobs::Error::Schedule",
            Error::ClaimFailures { .. } => "plainjobs::Error::ClaimFailures",
            Error::WorkerTask(_) => "plainjobs::Error::WorkerTask",
        }
    }
}

/// What a database error means to the layers above the storage backend. Each backend maps its
/// own error codes (PostgreSQL's SQLSTATE, SQLite's result codes) to these kinds, so nothing
/// above the store matches on a driver's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DbErrorKind {
    /// The server ended the session (a restart, a shutdown, an administrator's
    /// `pg_terminate_backend`): the statement may have committed; a new connection may work.
    Terminated,
    /// The connection broke (I/O, TLS, protocol) or its reply could not be read: the statement
    /// may have committed.
    ConnectionLost,
    /// No connection could be had, or the server lacked the resources (pool timed out, too many
    /// connections, out of disk): the statement did not run; try later.
    Unavailable,
    /// The statement lost a race (deadlock, serialization failure, a lock not available, a busy
    /// SQLite file): it rolled back; try again.
    Conflict,
    /// A request with this uuid exists already (`plainjobs_jobrequest_unique_uuid`).
    DuplicateRequestUuid,
    /// Refused for what it holds or asks (a constraint, a missing table, bad SQL): the same
    /// statement fails again.
    Rejected,
}

impl DbErrorKind {
    /// See [`Error::may_have_committed`].
    pub fn may_have_committed(self) -> bool {
        matches!(self, DbErrorKind::Terminated | DbErrorKind::ConnectionLost)
    }

    /// See [`Error::is_transient`].
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            DbErrorKind::Terminated
                | DbErrorKind::ConnectionLost
                | DbErrorKind::Unavailable
                | DbErrorKind::Conflict
        )
    }
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
