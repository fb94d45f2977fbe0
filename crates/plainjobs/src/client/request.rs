//! The row an enqueue inserts: options filled from the job's defaults, every value checked
//! against what the schema holds.

use std::panic::Location;
use std::time::Duration;

use uuid::Uuid;

use crate::model::new_uuid;
use crate::params::RunOptions;
use crate::registry::ErasedJob;
use crate::store::{NewRequest, Start};
use crate::{Error, Result};

pub use crate::model::MAX_NAME_LEN;

/// Options of one enqueue; missing ones come from the job type's defaults.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    pub queue: Option<String>,
    pub priority: Option<i16>,
    pub retries: Option<i16>,
    pub retry_attempt: Option<i16>,
    pub concurrency_key: Option<String>,
    pub start: Option<Start>,
    pub trace: Option<(String, String)>,
    pub exclude_process: Option<Uuid>,
    pub timeout: Option<Duration>,
}

fn check_len(field: &'static str, value: &str) -> Result<()> {
    let chars = value.chars().count();
    if chars > MAX_NAME_LEN {
        return Err(Error::InvalidInput {
            field,
            problem: format!("{chars} characters long; the limit is {MAX_NAME_LEN}"),
        });
    }
    Ok(())
}

fn check_hex(field: &'static str, value: &str, digits: usize) -> Result<()> {
    let ok = value.len() == digits + 2
        && value.starts_with("0x")
        && value[2..].chars().all(|c| c.is_ascii_hexdigit());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput {
            field,
            problem: format!("{value:?} is not 0x followed by {digits} hex digits"),
        })
    }
}

/// Builds the row to insert, validating every value the schema constrains.
pub(crate) fn build_request(
    job: &dyn ErasedJob,
    opts: &Options,
    source: String,
) -> Result<NewRequest> {
    build_request_as(job, opts, source, new_uuid())
}

/// [`build_request`] with the request's uuid given (a bulk enqueue makes them all up front).
pub(crate) fn build_request_as(
    job: &dyn ErasedJob,
    opts: &Options,
    source: String,
    uuid: Uuid,
) -> Result<NewRequest> {
    let job_class = job.job_class().to_string();
    check_len("job class name", &job_class)?;
    if job_class.is_empty() {
        return Err(Error::InvalidInput {
            field: "job class name",
            problem: "it is empty".into(),
        });
    }
    let queue = opts.queue.clone().unwrap_or_else(|| job.default_queue());
    check_len("queue", &queue)?;
    if queue.is_empty() {
        return Err(Error::InvalidInput {
            field: "queue",
            problem: "it is empty".into(),
        });
    }
    let concurrency_key = opts
        .concurrency_key
        .clone()
        .unwrap_or_else(|| job.default_concurrency_key());
    check_len("concurrency_key", &concurrency_key)?;
    let retries = opts.retries.unwrap_or_else(|| job.default_retries());
    if retries < 0 {
        return Err(Error::InvalidInput {
            field: "retries",
            problem: format!("{retries} is negative"),
        });
    }
    let retry_attempt = opts.retry_attempt.unwrap_or(0);
    if retry_attempt < 0 {
        return Err(Error::InvalidInput {
            field: "retry_attempt",
            problem: format!("{retry_attempt} is negative"),
        });
    }
    let start = opts.start.unwrap_or(Start::Now);
    if let Start::After(d) = start {
        // Far beyond any sensible delay, and safely inside PostgreSQL's interval range.
        if d > Duration::from_secs(100 * 365 * 24 * 3600) {
            return Err(Error::InvalidInput {
                field: "delay",
                problem: format!("{d:?} is more than 100 years"),
            });
        }
    }
    let (trace_id, span_id) = match &opts.trace {
        Some((t, s)) => {
            check_hex("trace_id", t, 32)?;
            check_hex("span_id", s, 16)?;
            (Some(t.clone()), Some(s.clone()))
        }
        None => (None, None),
    };
    if opts.timeout.is_some_and(|t| t.is_zero()) {
        return Err(Error::InvalidInput {
            field: "timeout",
            problem: "it is zero; give a positive duration, or none for no limit".into(),
        });
    }
    let mut parameters = job.parameters()?;
    RunOptions {
        timeout: opts.timeout,
    }
    .write(&mut parameters);
    Ok(NewRequest {
        uuid,
        parameters,
        job_class,
        priority: opts.priority.unwrap_or_else(|| job.default_priority()),
        source,
        queue,
        retries,
        retry_attempt,
        concurrency_key,
        start,
        trace_id,
        span_id,
    })
}

/// Where an enqueue came from, as plain.jobs records it: `file:line`.
pub(crate) fn caller_source(loc: &Location<'_>) -> String {
    format!("{}:{}", loc.file(), loc.line())
}
