//! In-process wake-ups: the workers of this process that wait on one database (a key naming
//! it), woken when this process inserts requests there, or cancels or pauses there. What SQLite
//! has instead of NOTIFY, and PostgreSQL behind a transaction pooler, where no worker can
//! LISTEN.

use std::sync::{Arc, Mutex, OnceLock, Weak};

use tokio::sync::Notify;

/// What a waiting worker is woken for.
#[derive(Debug, Default)]
pub(crate) struct Waiter {
    /// Requests were inserted (or put back).
    pub(crate) requests: Notify,
    /// Jobs were cancelled, or a queue paused or resumed.
    pub(crate) control: Notify,
}

/// A registered worker: the database it waits on, and its [`Waiter`] while it keeps it.
type Registered = (Arc<str>, Weak<Waiter>);

fn waiters() -> &'static Mutex<Vec<Registered>> {
    static WAITERS: OnceLock<Mutex<Vec<Registered>>> = OnceLock::new();
    WAITERS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Registers a worker waiting on database `key`; it is woken through the returned [`Waiter`]
/// for as long as it keeps it.
pub(crate) fn waiter(key: Arc<str>) -> Arc<Waiter> {
    let waiter = Arc::new(Waiter::default());
    waiters()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((key, Arc::downgrade(&waiter)));
    waiter
}

/// Wakes the waiters of database `key` (all of them when it is not known: an insert in the
/// application's own transaction on SQLite) through `which` of their [`Notify`]s.
fn wake_with(key: Option<&str>, which: fn(&Waiter) -> &Notify) {
    let mut waiters = waiters().lock().unwrap_or_else(|e| e.into_inner());
    waiters.retain(|(k, w)| match w.upgrade() {
        Some(waiter) => {
            if key.is_none_or(|key| key == &**k) {
                which(&waiter).notify_one();
            }
            true
        }
        None => false,
    });
}

/// Requests were inserted into database `key` (None: a database this crate cannot name).
pub(crate) fn wake(key: Option<&str>) {
    wake_with(key, |w| &w.requests);
}

/// Jobs were cancelled, or a queue paused or resumed, in database `key`.
pub(crate) fn wake_control(key: &str) {
    wake_with(Some(key), |w| &w.control);
}
