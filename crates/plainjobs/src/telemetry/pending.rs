//! Enqueues made in the caller's transaction, waiting to be counted: the transaction is the
//! caller's, so no hook says when it commits. The client looks their rows up shortly after
//! (`client/on_commit.rs`) and counts those that exist; a rolled-back enqueue never does.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use uuid::Uuid;

/// One enqueue (or bulk enqueue: all its rows commit together, so one uuid tells) to count.
#[derive(Debug, Clone)]
pub(crate) struct PendingSend {
    pub probe: Uuid,
    pub count: u64,
    pub queue: String,
    pub job_class: String,
    pub took: Duration,
    pub since: Instant,
}

#[derive(Debug, Default)]
struct State {
    sends: Vec<PendingSend>,
    looking: bool,
}

/// The sends waiting, and whether a task is looking them up.
#[derive(Debug, Default)]
pub(crate) struct PendingSends {
    state: Mutex<State>,
}

/// More than this many waiting sends (a look-up that keeps failing) and new ones are dropped
/// uncounted rather than held without bound.
const MAX_PENDING: usize = 100_000;

impl PendingSends {
    /// Adds `send`; true when no task is looking and the caller must start one.
    pub(crate) fn push(&self, send: PendingSend) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.sends.len() < MAX_PENDING {
            state.sends.push(send);
        }
        !std::mem::replace(&mut state.looking, true)
    }

    /// Everything waiting (the task looks it up and gives back what it did not find).
    pub(crate) fn take(&self) -> Vec<PendingSend> {
        std::mem::take(
            &mut self
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .sends,
        )
    }

    /// Gives back sends not found yet.
    pub(crate) fn give_back(&self, sends: Vec<PendingSend>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.sends.extend(sends);
    }

    /// True (and the task ends) when nothing waits.
    pub(crate) fn done_if_empty(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.sends.is_empty() {
            state.looking = false;
            true
        } else {
            false
        }
    }
}
