//! Results with a follow-up request (a retry, a deferral, a cancelled job's retry), each in a
//! transaction of its own, retried through database outages.

use std::time::Duration;

use super::core::Core;
use crate::client::follow_up::{finish_with_follow_up, FollowUp};
use crate::model::{JobProcess, JobResult, JobStatus};
use crate::registry::ErasedJob;

/// Attempts before the worker gives up writing one such result.
const ATTEMPTS: u32 = 20;

/// Writes `process`'s result with its follow-up. Gives up after a while: the process row stays,
/// and the orphan rescue turns it LOST (and retries it) later. None when given up, or when a
/// rescuer had written the result already.
pub(crate) async fn write_follow_up(
    core: &Core,
    process: &JobProcess,
    status: JobStatus,
    error: &str,
    job: Option<&dyn ErasedJob>,
    follow: FollowUp,
) -> Option<JobResult> {
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=ATTEMPTS {
        let written =
            finish_with_follow_up(&core.jobs, core.id(), process, status, error, job, follow).await;
        match written {
            Ok(result) => {
                core.ledger.release(process.uuid);
                if result.is_none() {
                    tracing::info!(job_process_uuid = %process.uuid, "result already written by a rescuer; this late finish is dropped");
                }
                return result;
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, job_process_uuid = %process.uuid, "could not write the result; retrying");
                if core.shutdown.is_aborted() {
                    break;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
    core.ledger.abandon(process.uuid);
    tracing::error!(job_process_uuid = %process.uuid, "gave up writing the result; the job will be rescued as LOST");
    None
}
