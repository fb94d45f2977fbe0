//! What PostgreSQL's error replies mean, by SQLSTATE.

use sqlx::postgres::PgSeverity;

use crate::error::DbErrorKind;

/// What a PostgreSQL error reply means (by its SQLSTATE class).
pub(crate) fn error_kind(e: &sqlx::postgres::PgDatabaseError) -> DbErrorKind {
    let code = e.code();
    if e.constraint() == Some("plainjobs_jobrequest_unique_uuid") {
        return DbErrorKind::DuplicateRequestUuid;
    }
    match code {
        // admin_shutdown, crash_shutdown, cannot_connect_now: the server ended the session.
        "57P01" | "57P02" | "57P03" => DbErrorKind::Terminated,
        // A connection error reported as FATAL ends the session as well. A pooler reports so
        // the loss of the server session under a client's transaction (PgBouncer: 08P01
        // `server conn crashed?`, `invalid server parameter` when the session it was about to
        // lend had just been terminated), where a direct connection would have read 57P01.
        c if c.starts_with("08") && e.severity() == PgSeverity::Fatal => DbErrorKind::Terminated,
        // connection_exception.
        c if c.starts_with("08") => DbErrorKind::ConnectionLost,
        // insufficient_resources, other operator intervention (query_canceled, …).
        c if c.starts_with("53") || c.starts_with("57") => DbErrorKind::Unavailable,
        // transaction_rollback (serialization failure, deadlock), lock_not_available.
        c if c.starts_with("40") || c == "55P03" => DbErrorKind::Conflict,
        _ => DbErrorKind::Rejected,
    }
}
