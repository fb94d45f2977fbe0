//! Database errors as kinds: each backend maps its own codes, so nothing above the store
//! matches on SQLSTATEs or driver types.

use sqlx::error::DatabaseError;

use crate::error::DbErrorKind;
use crate::Error;

impl From<sqlx::Error> for Error {
    fn from(source: sqlx::Error) -> Self {
        Error::Database {
            kind: kind_of(&source),
            source,
        }
    }
}

/// What a driver error means: a reply from the database is classified by its backend; the
/// rest by what the driver saw.
pub(crate) fn kind_of(e: &sqlx::Error) -> DbErrorKind {
    match e {
        sqlx::Error::Database(db) => database_kind(&**db),
        // The connection broke, or the reply came but could not be read: the statement may
        // have run.
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. } => DbErrorKind::ConnectionLost,
        // No connection was had: nothing ran.
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => DbErrorKind::Unavailable,
        _ => DbErrorKind::Rejected,
    }
}

fn database_kind(db: &dyn DatabaseError) -> DbErrorKind {
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        return super::postgres::error_kind(pg);
    }
    if let Some(lite) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
        return super::sqlite::error_kind(lite);
    }
    DbErrorKind::Rejected
}
