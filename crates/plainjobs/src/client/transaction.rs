//! Enqueue inside the application's own transaction.

use crate::store::{Conn, Pooler};

/// A connection in the caller's own transaction, to enqueue jobs that exist if and only if that
/// transaction commits. Implemented for `sqlx::Transaction` of PostgreSQL and SQLite (not for a
/// bare connection: outside a transaction the key's lock would end with its own statement). On SQLite, begin the transaction with
/// `pool.begin_with("BEGIN IMMEDIATE")` when it enqueues jobs with a concurrency key, so the
/// uniqueness check and the insert hold the write lock together.
pub trait TransactionConn: sealed::Sealed + Send {
    #[doc(hidden)]
    fn as_conn(&mut self, pooler: Pooler) -> Box<dyn Conn + '_>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for sqlx::Transaction<'_, sqlx::Postgres> {}

    impl Sealed for sqlx::Transaction<'_, sqlx::Sqlite> {}
}

impl TransactionConn for sqlx::Transaction<'_, sqlx::Sqlite> {
    fn as_conn(&mut self, _: Pooler) -> Box<dyn Conn + '_> {
        Box::new(crate::store::sqlite::SqliteConn(&mut **self, None))
    }
}

impl TransactionConn for sqlx::Transaction<'_, sqlx::Postgres> {
    fn as_conn(&mut self, pooler: Pooler) -> Box<dyn Conn + '_> {
        Box::new(crate::store::postgres::PgConn::new(&mut **self, pooler))
    }
}
