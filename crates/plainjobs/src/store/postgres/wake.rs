//! Waking the workers after the store's own inserts commit. Their inserts keep the trigger's
//! `NOTIFY` out of the inserting transaction (`plainjobs.notify = off`, see `requests.rs`):
//! PostgreSQL takes an exclusive lock at the commit of every transaction that notifies and
//! holds it through the commit's WAL flush, so a `NOTIFY` in each enqueue made concurrent
//! enqueues commit one at a time (docs/benchmarks.md). Instead, once an insert has committed:
//!
//! - this process's workers of the same tables are woken at once (`local_wake`), behind a
//!   transaction pooler, where none can LISTEN;
//! - otherwise every listener is told by one `NOTIFY` sent after the commit, in a transaction
//!   of its own that does not wait for its WAL flush (a lost wake-up is covered by polling),
//!   and coalesced: while one is being sent, the commits that come meanwhile are covered by
//!   one more, not one each.
//!
//! The sender is a task that lives while wake-ups are pending, so an enqueue never waits for
//! it, nor for a pool connection it would need while enqueuers hold the others.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;

use sqlx::PgPool;

use super::{PgExec, Pooler};
use crate::store::local_wake;

/// The `NOTIFY` sent after a commit: the payload names the tables' schema, as the trigger's.
const NOTIFY_AFTER_COMMIT: &str = concat!(
    "SELECT set_config('synchronous_commit', 'off', true), \
     pg_notify('plainjobs_jobrequest', n.nspname::text)",
    from_our_schema!()
);

/// How a store wakes the workers after its inserts commit.
pub(crate) struct InsertWake {
    /// Behind a transaction pooler: the tables' key for in-process wake-ups.
    local: Option<Arc<str>>,
    /// Elsewhere: the pool the `NOTIFY` is sent from.
    notify: Option<(PgPool, Arc<Sender>)>,
}

/// The sender's state: a wake-up is pending; a task is sending.
#[derive(Default)]
struct Sender {
    pending: AtomicBool,
    running: AtomicBool,
}

impl InsertWake {
    /// In-process wake-ups for the tables `local` (behind a transaction pooler), else a
    /// `NOTIFY` from `pool`.
    pub(crate) fn new(pool: &PgPool, local: Option<Arc<str>>) -> InsertWake {
        let notify = local
            .is_none()
            .then(|| (pool.clone(), Arc::new(Sender::default())));
        InsertWake { local, notify }
    }

    /// Requests inserted by the store have committed: wake the workers.
    pub(crate) fn committed(&self) {
        if let Some(key) = &self.local {
            local_wake::wake(Some(key));
        }
        let Some((pool, sender)) = &self.notify else {
            return;
        };
        sender.pending.store(true, SeqCst);
        // A running sender sees `pending` before it stops (see `send_while_pending`).
        if !sender.running.swap(true, SeqCst) {
            tokio::spawn(send_while_pending(pool.clone(), sender.clone()));
        }
    }
}

/// Sends one `NOTIFY` per round of pending wake-ups, until none is pending. A wake-up that
/// arrives as it stops either is seen by its last look at `pending`, or finds `running`
/// cleared and starts a sender of its own.
async fn send_while_pending(pool: PgPool, sender: Arc<Sender>) {
    loop {
        while sender.pending.swap(false, SeqCst) {
            if let Err(e) = send(&pool).await {
                tracing::debug!(error = %e, "could not notify the workers of new jobs; they find them at their next poll");
            }
        }
        sender.running.store(false, SeqCst);
        if !sender.pending.load(SeqCst) || sender.running.swap(true, SeqCst) {
            return;
        }
    }
}

async fn send(pool: &PgPool) -> crate::Result<()> {
    let mut conn = pool.acquire().await?;
    sqlx::query(NOTIFY_AFTER_COMMIT)
        .execute(&mut PgExec::new(&mut conn, Pooler::Session))
        .await?;
    Ok(())
}
