//! Schedules: cron expressions, their next fire times, and the built-in shell-command job.
//!
//! The cron parser is our own, on purpose: it follows standard (Vixie) cron exactly — including
//! `*/n` and `a-b/n` steps that start at the range's first value (plain.jobs filters steps by
//! `value % step == 0`, so its `0 0 */7 * *` runs on the 7th, 14th…; here, as in every cron, on
//! the 1st, 8th, 15th…) and day-of-month OR day-of-week when both are restricted — and it
//! controls DST: a wall time that does not exist fires at the first instant after the gap, an
//! ambiguous one fires once (at its first occurrence).
//!
//! ## How schedules run
//!
//! Schedules are given to a worker ([`Worker::schedule`](crate::Worker::schedule),
//! [`Worker::schedule_by_name`](crate::Worker::schedule_by_name), or `schedule = [["job name or
//! cmd:…", "cron"]]` in plainjobs.toml). Every worker that serves the job's default queue
//! regularly enqueues the **next** occurrence (read from the database's clock) as a request with
//! `start_at` = that time and concurrency key `"{default key}:scheduled:{unix seconds}"`, so any
//! number of workers enqueue each occurrence exactly once; an occurrence that already has a result
//! is not enqueued again. A pass that fails part way is retried on the next tick.
//!
//! **Catch-up after downtime:** only the next occurrence is ever enqueued. Occurrences that fell
//! while no worker ran are skipped — no storm of missed runs when workers come back. (An
//! occurrence already enqueued before the downtime still runs, late, once.)

mod command;
mod cron;
mod output;
mod process;
mod shell;
mod shell_command;

pub use command::ScheduledCommand;
pub use cron::{CronError, Field, Schedule, ScheduleBuilder};
pub use process::KILL_AFTER;
pub use shell_command::ShellCommand;
