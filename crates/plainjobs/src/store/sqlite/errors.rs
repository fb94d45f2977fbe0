//! What SQLite's result codes mean.

use crate::error::DbErrorKind;

/// What a SQLite error means (by its extended result code).
pub(crate) fn error_kind(e: &sqlx::sqlite::SqliteError) -> DbErrorKind {
    use sqlx::error::DatabaseError;
    let code: i64 = e.code().and_then(|c| c.parse().ok()).unwrap_or(0);
    match code & 0xff {
        // SQLITE_CONSTRAINT: SQLite names the column, not the constraint.
        19 if e.message().contains("plainjobs_jobrequest.uuid") => {
            DbErrorKind::DuplicateRequestUuid
        }
        // SQLITE_BUSY, SQLITE_LOCKED: another writer held the file past the busy timeout.
        5 | 6 => DbErrorKind::Conflict,
        // SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN: the file cannot be written now.
        10 | 13 | 14 => DbErrorKind::Unavailable,
        _ => DbErrorKind::Rejected,
    }
}
