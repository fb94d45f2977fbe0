//! The job every chaos worker runs: it sleeps, fails on its first attempts if told to, and logs
//! the start and the end of each run.

use std::sync::Arc;
use std::time::Duration;

use plainjobs::{Job, JobContext, JobError, Outcome};
use serde::{Deserialize, Serialize};

use crate::runlog::{now_us, Phase, RunEvent, RunLog};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChaosJob {
    /// Shared by every attempt of one enqueued job: the checks group runs and results by it.
    pub chain: u64,
    pub sleep_ms: u64,
    /// The run fails on attempts below this one (0: never fails).
    pub fail_below: i16,
    pub retries: i16,
    #[serde(default)]
    pub key: String,
}

impl ChaosJob {
    fn event(&self, ctx: &JobContext, log: &RunLog, phase: Phase) -> RunEvent {
        let p = ctx.process();
        RunEvent {
            phase,
            at_us: now_us(),
            pid: log.pid(),
            chain: self.chain,
            request: p.job_request_uuid,
            process: p.uuid,
            attempt: p.retry_attempt,
        }
    }
}

impl Job for ChaosJob {
    const NAME: &'static str = "chaos.ChaosJob";
    const DESCRIPTION: &'static str = "Sleeps, fails on early attempts if told to, logs its runs";

    async fn run(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
        let log = ctx.state::<Arc<RunLog>>()?;
        log.record(&self.event(ctx, log, Phase::Start))?;
        tokio::time::sleep(Duration::from_millis(self.sleep_ms)).await;
        let ok = ctx.process().retry_attempt >= self.fail_below;
        log.record(&self.event(ctx, log, Phase::End { ok }))?;
        if ok {
            Ok(Outcome::Success)
        } else {
            Err(JobError::msg(format!(
                "chain {} fails below attempt {} on purpose",
                self.chain, self.fail_below
            )))
        }
    }

    fn default_retries(&self) -> i16 {
        self.retries
    }

    fn default_concurrency_key(&self) -> String {
        self.key.clone()
    }

    // Short backoff: retries must happen within the run, and a delayed retry still exercises
    // start_at and the claim's readiness filter.
    fn retry_delay(&self, attempt: u32) -> Duration {
        Duration::from_millis(100 * u64::from(attempt))
    }
}
