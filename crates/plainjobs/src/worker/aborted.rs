//! `on_aborted` hooks, for jobs whose code never saw its end (LOST and CANCELLED results), run
//! after their results committed.

use std::time::Duration;

use super::core::Core;
use crate::model::{JobResult, JobStatus};

/// How long one `on_aborted` hook may run before it is abandoned (rescue, retries and schedules
/// wait for it).
const ON_ABORTED_LIMIT: Duration = Duration::from_secs(60);

/// Runs `on_aborted` for the LOST and CANCELLED results among `results`. Errors are logged and
/// swallowed.
pub(crate) async fn run_on_aborted(core: &Core, results: &[JobResult]) {
    let aborted = results
        .iter()
        .filter(|r| matches!(r.status, JobStatus::Lost | JobStatus::Cancelled));
    for r in aborted {
        let job = match core.registry.load(&r.job_class, r.parameters.as_ref()) {
            Ok(job) => job,
            Err(e) => {
                tracing::warn!(job_class = %r.job_class, job_result_uuid = %r.uuid, error = %e, "cannot load the job for on_aborted");
                continue;
            }
        };
        match tokio::time::timeout(ON_ABORTED_LIMIT, job.on_aborted(r, &core.state)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(job_class = %r.job_class, job_result_uuid = %r.uuid, error = %e.chain(), "on_aborted failed")
            }
            Err(_) => {
                tracing::warn!(job_class = %r.job_class, job_result_uuid = %r.uuid, "on_aborted took longer than 60 s; abandoned")
            }
        }
    }
}
