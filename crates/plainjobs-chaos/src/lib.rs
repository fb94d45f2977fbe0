//! The chaos suite of plainjobs: several worker processes drain thousands of jobs with retries
//! and concurrency keys while faults drawn from a printed seed hit them (SIGKILL, SIGSTOP past
//! the heartbeat timeout, SIGTERM, `pg_terminate_backend`, a server restart and crash on a
//! cluster the suite starts itself); then every guarantee is checked against the tables and
//! the run logs the workers wrote. See `docs/reliability.md`.

pub mod check;
pub mod cluster;
pub mod facts;
pub mod faults;
pub mod fleet;
pub mod job;
pub mod load;
pub mod netns;
pub mod plan;
pub mod probe;
pub mod report;
pub mod run;
pub mod runlog;
pub mod sampler;
pub mod worker;

pub use run::{run, Config};
