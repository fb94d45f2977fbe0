//! Connections whose plans do not follow the statistics: for the worker's hot statements (the
//! claim, the result writer's), whose tables swing between empty and full of dead rows faster
//! than the statistics follow.
//!
//! A plan made when a table was small (a scan of it all, or of an index that then fills with
//! dead entries) would otherwise be kept for as long as the session keeps the statement, and
//! read every dead row on every execution. [`PINNED_PLANS`] rule out sequential and bitmap
//! scans, so the only plans left walk the index the statement was written for.

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, Postgres, Transaction};

use super::{PgExec, PgStore, Pooler};
use crate::Result;

/// Idle pinned sessions kept for reuse.
pub(super) const PINNED_SESSIONS_KEPT: usize = 4;

/// The settings of the pinned sessions. They pin one plan: the generic plan is made once per
/// session and reused (`plan_cache_mode`), and with sequential and bitmap scans ruled out it
/// is the index each statement was written for, whatever the statistics said when it was made
/// — an empty table at start-up must not leave a plan that sorts a million-row backlog later.
/// `jit` stays off, since ruling scans out inflates cost estimates past the JIT threshold.
pub(crate) const PINNED_PLANS: [(&str, &str); 4] = [
    ("plan_cache_mode", "force_generic_plan"),
    ("enable_seqscan", "off"),
    ("enable_bitmapscan", "off"),
    ("jit", "off"),
];

/// Behind a transaction pooler, a pinned statement runs in a transaction of its own begun with
/// the settings that rule the plan (scans, JIT) for that transaction only: no session keeps
/// them, and nothing is left for the session's next client. Each statement is planned anew
/// with its parameters (an unnamed statement), so `plan_cache_mode` has no use.
pub(super) fn begin_pinned() -> String {
    PINNED_PLANS
        .iter()
        .filter(|(name, _)| *name != "plan_cache_mode")
        .fold("BEGIN".to_string(), |sql, (name, value)| {
            format!("{sql}; SET LOCAL {name} = {value}")
        })
}

/// A connection for a pinned statement, as [`PgStore::pinned`] chose it.
pub(super) enum Pinned {
    /// A pinned session, kept again by [`Pinned::done`].
    Session(PgConnection),
    /// Behind a transaction pooler: a transaction begun with [`begin_pinned`].
    Transaction(Transaction<'static, Postgres>),
    /// Neither allowed: a pooled connection as it is.
    Pooled(PoolConnection<Postgres>),
}

impl Pinned {
    /// The executor to run the statement on: only the transaction is behind a transaction
    /// pooler ([`PgStore::pinned`] chooses it there and only there).
    pub(super) fn exec(&mut self) -> PgExec<'_> {
        match self {
            Pinned::Session(conn) => PgExec::new(conn, Pooler::Session),
            Pinned::Transaction(tx) => PgExec::new(tx, Pooler::Transaction),
            Pinned::Pooled(conn) => PgExec::new(conn, Pooler::Session),
        }
    }

    /// The statement succeeded: commits its transaction, or keeps the session for the next.
    pub(super) async fn done(self, store: &PgStore) -> Result<()> {
        match self {
            Pinned::Session(conn) => store.keep_pinned_session(conn),
            Pinned::Transaction(tx) => tx.commit().await?,
            Pinned::Pooled(_) => {}
        }
        Ok(())
    }
}

impl PgStore {
    /// Where a pinned statement runs: behind a transaction pooler, a transaction of its own
    /// with the settings; else, when `session` allows session connections (a worker with
    /// LISTEN on: where it is off, an undeclared transaction pooler may be in between), a
    /// pinned session; else a pooled connection as it is.
    pub(super) async fn pinned(&self, session: bool) -> Result<Pinned> {
        Ok(if self.behind_transaction_pooler() {
            Pinned::Transaction(self.pool.begin_with(begin_pinned()).await?)
        } else if session {
            Pinned::Session(self.pinned_session().await?)
        } else {
            Pinned::Pooled(self.pool.acquire().await?)
        })
    }

    /// An idle pinned session, or a new one.
    pub(super) async fn pinned_session(&self) -> Result<PgConnection> {
        let idle = self.pinned.lock().unwrap_or_else(|e| e.into_inner()).pop();
        if let Some(conn) = idle {
            return Ok(conn);
        }
        let mut conn = self.pool.acquire().await?.detach();
        set_up_pinned_session(&mut PgExec::new(&mut conn, Pooler::Session)).await?;
        Ok(conn)
    }

    /// Keeps a pinned session that just worked for the next statement.
    pub(super) fn keep_pinned_session(&self, conn: PgConnection) {
        let mut idle = self.pinned.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < PINNED_SESSIONS_KEPT {
            idle.push(conn);
        }
    }
}

/// Gives a new pinned session its settings.
async fn set_up_pinned_session(conn: &mut PgExec<'_>) -> sqlx::Result<()> {
    for (name, value) in PINNED_PLANS {
        sqlx::query(&format!("SET {name} = {value}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
