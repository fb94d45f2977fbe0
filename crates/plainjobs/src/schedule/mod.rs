//! Schedules: cron expressions, their next fire times, and the built-in shell-command job.
//!
//! The cron parser is our own, on purpose: it follows standard (Vixie) cron exactly — including
//! `*/n` and `a-b/n` steps that start at the range's first value (plain.jobs filters steps by
//! `value % step == 0`, so its `0 0 */7 * *` runs on the 7th, 14th…; here, as in every cron, on
//! the 1st, 8th, 15th…) and day-of-month OR day-of-week when both are restricted — and it
//! controls DST: a wall time that does not exist fires at the first instant after the gap, an
//! ambiguous one fires once (at its first occurrence).

mod command;
mod cron;

pub use command::ScheduledCommand;
pub use cron::{CronError, Field, Schedule, ScheduleBuilder};
