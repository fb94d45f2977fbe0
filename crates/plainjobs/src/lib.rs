//! # plainjobs
//!
//! Background jobs for Rust applications, stored in PostgreSQL, in the tables of the Python
//! package [plain.jobs](https://plainframework.com) — so a Plain app and Rust workers can share
//! one queue.
//!
//! ## The lifecycle
//!
//! A job lives in exactly one of three tables; every move between them is one transaction:
//!
//! ```text
//! enqueue ──► JobRequest ──claim──► JobProcess ──finish──► JobResult
//!              (pending)          (one worker owns it)   (SUCCESSFUL | ERRORED | DEFERRED
//!                 ▲                        │               | CANCELLED | LOST)
//!                 └──── retry / defer ─────┘
//! ```
//!
//! Workers register a heartbeat; a worker that stops heartbeating is dead, and any other worker
//! turns its jobs into `LOST` results (and retries them when they may be retried).
//!
//! ## A complete example
//!
//! ```no_run
//! use plainjobs::{Job, JobContext, JobError, Jobs, Outcome, Worker};
//! use serde::{Deserialize, Serialize};
//! use std::time::Duration;
//!
//! #[derive(Serialize, Deserialize)]
//! struct WelcomeUser {
//!     user_id: i64,
//! }
//!
//! impl Job for WelcomeUser {
//!     // Stored in `job_class`: keep it stable across refactors.
//!     const NAME: &'static str = "app.jobs.WelcomeUser";
//!
//!     async fn run(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
//!         let greeting = ctx.state::<String>()?;
//!         println!("{greeting}, user {}!", self.user_id);
//!         Ok(Outcome::Success)
//!     }
//!
//!     // One pending welcome per user at a time.
//!     fn default_concurrency_key(&self) -> String {
//!         format!("user-{}", self.user_id)
//!     }
//!     fn default_retries(&self) -> i16 {
//!         3
//!     }
//!     fn retry_delay(&self, attempt: u32) -> Duration {
//!         Duration::from_secs(1 << (attempt - 1))
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let jobs = Jobs::connect("postgres://postgres@127.0.0.1:5432/postgres").await?;
//!     jobs.migrate().await?;
//!
//!     // Returns None when the concurrency key refused a duplicate.
//!     jobs.enqueue(WelcomeUser { user_id: 1 }).priority(10).await?;
//!     jobs.enqueue(WelcomeUser { user_id: 2 }).delay(Duration::from_secs(60)).await?;
//!
//!     Worker::new(jobs)
//!         .register::<WelcomeUser>()
//!         .state("Welcome".to_string())
//!         .queues(["default"])
//!         .concurrency(16)
//!         .run() // until Ctrl-C or SIGTERM
//!         .await?;
//!     Ok(())
//! }
//! ```
//!
//! ## Where to look
//! - [`Job`]: defining a job type, its defaults and hooks; [`Outcome`] to defer.
//! - [`Jobs`]: enqueueing ([`Enqueue`], [`EnqueueMany`], inside your own transaction too) and
//!   inspecting.
//! - [`Worker`]: running jobs; [`WorkerConfig`] for its timing.
//! - [`schedule`]: cron schedules and the shell-command job.
//! - [`params`]: how parameters are stored (plain.jobs' envelope, its date strings).
#![warn(missing_docs)]

// Layers, each using only those listed before it: leaves (error, model, params, settings,
// schedule's cron) → telemetry → store → jobs (the handle) and dispatch → job and registry → client →
// admin → worker → cli. docs/ARCHITECTURE.md has the picture.
#[cfg(feature = "admin")]
pub mod admin;
#[cfg(feature = "cli")]
pub mod cli;
mod client;
mod coalesce;
mod dispatch;
mod error;
mod job;
mod jobs;
pub mod model;
pub mod params;
mod registry;
pub mod schedule;
pub mod settings;
mod store;
#[cfg(feature = "otel")]
pub mod telemetry;
#[cfg(not(feature = "otel"))]
mod telemetry;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;
mod worker;

pub use client::{
    Attempt, Cancelled, Chain, Enqueue, EnqueueMany, Found, TransactionConn, MAX_NAME_LEN,
};
pub use error::{redact_url, DbErrorKind, Error, Result};
pub use job::{
    advisory_lock_id, Job, JobContext, JobError, KeyLock, LockStrategy, Outcome, State, UniqueCheck,
};
pub use jobs::{Backend, ConnectOptions, Jobs};
pub use model::{JobProcess, JobRequest, JobResult, JobStatus, WorkerHeartbeat};
pub use registry::{LoadError, Registry};
pub use store::{
    Cursor, JobFilter, Migrated, Page, PausedQueue, Pooler, ProcessFilter, ProcessState, Purged,
    QueueDepth, QueueStats, RequestFilter, ResultFilter, SchemaReport, UnknownPooler,
};
pub use worker::{Worker, WorkerConfig, WorkerCounters, WorkerHandle};
