//! The worker: claims jobs, runs them, records results; heartbeats, rescue, retries, retention
//! and graceful shutdown.
//!
//! A running worker is a handful of tasks around one claim loop:
//! - the **claim loop** takes as many ready jobs as it has free slots, in one statement, and
//!   spawns each; it sleeps on `LISTEN/NOTIFY` (or the next `start_at`, or a poll interval);
//! - a **completer** writes the results of finished jobs, many per statement;
//! - the **heartbeat** keeps this worker's row fresh (claiming pauses while it cannot);
//! - **maintenance** rescues dead workers' jobs, retries, deletes old results, runs schedules.

mod aborted;
mod builder;
mod claim_loop;
mod config;
mod control;
mod core;
mod execute;
mod follow_up;
mod handle;
mod ledger;
mod local;
mod maintenance;
mod pace;
mod runtime;
#[cfg(feature = "cli")]
pub(crate) use runtime::hostname;
mod shutdown;
#[cfg(test)]
mod tests;
mod vacuum;
mod writer;

pub use builder::Worker;
pub use config::WorkerConfig;
pub use handle::WorkerHandle;
pub use pace::WorkerCounters;
