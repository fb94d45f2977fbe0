//! The scheduling pass: the next occurrence of each cron schedule, enqueued once across any
//! number of workers.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::client::enqueue_on;
use crate::client::request::{build_request, Options};
use crate::job::{advisory_lock_id, fitted_key};
use crate::model::JobRequest;
use crate::model::MAX_NAME_LEN;
use crate::registry::ErasedJob;
use crate::schedule::Schedule;
use crate::store::{NewRequest, Start};
use crate::{Jobs, Result};

/// Where the scheduling pass reads the time.
pub(crate) type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// A job with its schedule, as given to the worker.
pub(crate) struct ScheduledJob {
    pub job: Box<dyn ErasedJob>,
    pub schedule: Schedule,
    /// The occurrence last enqueued by a whole successful pass.
    pub stamped: Option<DateTime<Utc>>,
    /// Evaluate in the worker's configured time zone (a schedule given as text).
    pub zone_from_config: bool,
}

/// The concurrency key of one scheduled occurrence: any number of workers enqueue it once. A
/// default key too long to take the suffix within the schema's limit is fitted first.
fn scheduled_key(default_key: &str, at: DateTime<Utc>) -> String {
    let suffix = format!(":scheduled:{}", at.timestamp());
    let room = MAX_NAME_LEN.saturating_sub(suffix.chars().count());
    format!("{}{suffix}", fitted_key(default_key, room))
}

/// Enqueues one occurrence unless it is pending, running, or already finished: the default
/// uniqueness rule sees only requests and processes, so an occurrence that already ran must not
/// be enqueued again by a worker whose pass began before it was due.
async fn enqueue_occurrence(
    jobs: &Jobs,
    job: &dyn ErasedJob,
    req: NewRequest,
) -> Result<Option<JobRequest>> {
    let mut tx = jobs.store().begin().await?;
    tx.advisory_lock(advisory_lock_id(&req.job_class, &req.concurrency_key))
        .await?;
    if tx
        .count_results(&req.job_class, &req.concurrency_key)
        .await?
        > 0
    {
        return Ok(None);
    }
    let out = enqueue_on(&mut *tx, job, req, None).await?;
    tx.commit().await?;
    Ok(out)
}

/// Enqueues the next occurrence of every schedule whose job's default queue this worker
/// serves. Stamps only after the whole pass succeeded, so a failed pass is retried next tick.
pub(crate) async fn schedule_pass(
    jobs: &Jobs,
    queues: &HashSet<String>,
    schedules: &mut [ScheduledJob],
    now: DateTime<Utc>,
) {
    let mut stamps = Vec::new();
    for (i, s) in schedules.iter().enumerate() {
        if !queues.contains(&s.job.default_queue()) {
            continue;
        }
        let Some(next) = s.schedule.next_after(now) else {
            continue;
        };
        if s.stamped == Some(next) {
            continue;
        }
        let opts = Options {
            concurrency_key: Some(scheduled_key(&s.job.default_concurrency_key(), next)),
            start: Some(Start::At(next)),
            ..Options::default()
        };
        let source = format!("schedule {}", s.schedule);
        let result = match build_request(&*s.job, &opts, source) {
            Ok(req) => enqueue_occurrence(jobs, &*s.job, req).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(queued) => {
                if queued.is_some() {
                    tracing::info!(job_class = %s.job.job_class(), at = %next.to_rfc3339(), schedule = %s.schedule, "scheduled");
                }
                stamps.push((i, next));
            }
            Err(e) => {
                tracing::warn!(job_class = %s.job.job_class(), error = %e, "scheduling pass failed; retrying next tick");
                return;
            }
        }
    }
    for (i, next) in stamps {
        schedules[i].stamped = Some(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_occurrence_key_fits_the_schema_however_long_the_default_key() {
        let at = DateTime::from_timestamp(1_772_805_600, 0).unwrap_or_default();
        assert_eq!(scheduled_key("echo hi", at), "echo hi:scheduled:1772805600");
        let long = "x".repeat(250);
        let key = scheduled_key(&long, at);
        assert_eq!(key.chars().count(), MAX_NAME_LEN, "{key}");
        assert!(key.ends_with(":scheduled:1772805600"), "{key}");
        assert_eq!(scheduled_key(&long, at), key, "stable");
    }
}
