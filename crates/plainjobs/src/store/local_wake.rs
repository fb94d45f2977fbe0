//! In-process wake-ups: the workers of this process that wait for requests inserted into one
//! database (a key naming it), woken when this process inserts there. What SQLite has instead
//! of NOTIFY, and PostgreSQL behind a transaction pooler, where no worker can LISTEN.

use std::sync::{Arc, Mutex, OnceLock, Weak};

use tokio::sync::Notify;

/// A worker of this process waiting for inserts into one database (its key).
type Waiter = (Arc<str>, Weak<Notify>);

fn waiters() -> &'static Mutex<Vec<Waiter>> {
    static WAITERS: OnceLock<Mutex<Vec<Waiter>>> = OnceLock::new();
    WAITERS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Registers a worker waiting for inserts into database `key`; it is woken through the
/// returned [`Notify`] for as long as it keeps it.
pub(crate) fn waiter(key: Arc<str>) -> Arc<Notify> {
    let local = Arc::new(Notify::new());
    waiters()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((key, Arc::downgrade(&local)));
    local
}

/// Wakes this process's workers of database `key` (all of them when it is not known: an insert
/// in the application's own transaction on SQLite).
pub(crate) fn wake(key: Option<&str>) {
    let mut waiters = waiters().lock().unwrap_or_else(|e| e.into_inner());
    waiters.retain(|(k, w)| match w.upgrade() {
        Some(n) => {
            if key.is_none_or(|key| key == &**k) {
                n.notify_one();
            }
            true
        }
        None => false,
    });
}
