//! `cancel`, `pause` and `resume`: control of running work.

use clap::Args;
use serde_json::{json, Value};

use crate::cli::error::{failure, CliError};
use crate::cli::output::print_json;
use crate::cli::show::parse_uuid;
use crate::cli::values::queue_name;
use crate::cli::{operator, Ctx};
use crate::Cancelled;

/// `cancel` arguments.
#[derive(Debug, Clone, Args)]
pub struct CancelArgs {
    /// Jobs to cancel: any uuid of each (its request's, or its process's).
    #[arg(required = true)]
    pub uuids: Vec<String>,
}

/// `pause` and `resume` arguments.
#[derive(Debug, Clone, Args)]
pub struct QueueArgs {
    /// The queue.
    #[arg(value_parser = queue_name)]
    pub queue: String,
}

/// Cancels each job; exits 1 when any was finished already or unknown.
pub(crate) async fn cancel(ctx: &Ctx, a: CancelArgs) -> Result<(), CliError> {
    let uuids = a
        .uuids
        .iter()
        .map(|u| parse_uuid(u))
        .collect::<Result<Vec<_>, _>>()?;
    let jobs = ctx.jobs().await?;
    let by = operator("plainjobs cancel");
    let mut lines = Vec::new();
    let mut list = Vec::new();
    let mut failed = false;
    for uuid in uuids {
        let (line, entry, ok) = match jobs.cancel(uuid, &by).await? {
            Cancelled::Pending(r) => (
                format!("cancelled {uuid}: it was waiting; result {}", r.uuid),
                json!({"uuid": uuid, "cancelled": true, "was": "pending", "result": r.uuid}),
                true,
            ),
            Cancelled::Running { result, worker_id } => (
                format!(
                    "cancelled {uuid}: worker {worker_id} is stopping it; result {}",
                    result.uuid
                ),
                json!({"uuid": uuid, "cancelled": true, "was": "running", "worker_id": worker_id, "result": result.uuid}),
                true,
            ),
            Cancelled::AlreadyFinished(r) => (
                format!(
                    "{uuid} already finished ({}): nothing to cancel",
                    r.status.as_str()
                ),
                json!({"uuid": uuid, "cancelled": false, "problem": format!("already finished ({})", r.status.as_str())}),
                false,
            ),
            _ => (
                format!("no job {uuid} (not pending, running or finished)"),
                json!({"uuid": uuid, "cancelled": false, "problem": "no such job"}),
                false,
            ),
        };
        failed |= !ok;
        lines.push(line);
        list.push(entry);
    }
    finish(ctx, &lines, Value::Array(list), failed)
}

pub(crate) async fn pause(ctx: &Ctx, a: QueueArgs) -> Result<(), CliError> {
    let jobs = ctx.jobs().await?;
    let newly = jobs
        .pause_queue(&a.queue, &operator("plainjobs pause"))
        .await?;
    let line = if newly {
        format!(
            "paused queue {}: workers stop claiming from it within a second; running jobs finish",
            a.queue
        )
    } else {
        format!("queue {} was paused already", a.queue)
    };
    let entry = json!({"queue": a.queue, "paused": true, "changed": newly});
    finish(ctx, &[line], entry, false)
}

pub(crate) async fn resume(ctx: &Ctx, a: QueueArgs) -> Result<(), CliError> {
    let jobs = ctx.jobs().await?;
    let changed = jobs.resume_queue(&a.queue).await?;
    let line = if changed {
        format!("resumed queue {}", a.queue)
    } else {
        format!("queue {} was not paused", a.queue)
    };
    let entry = json!({"queue": a.queue, "paused": false, "changed": changed});
    finish(ctx, &[line], entry, false)
}

/// Prints the outcome; exit 1 (printed already) when `failed`.
fn finish(ctx: &Ctx, lines: &[String], json: Value, failed: bool) -> Result<(), CliError> {
    if ctx.json {
        print_json(&json)?;
    } else {
        for line in lines {
            println!("{line}");
        }
    }
    match (failed, ctx.json) {
        (false, _) => Ok(()),
        (true, true) => Err(CliError::Reported),
        (true, false) => Err(failure("some jobs were not cancelled (see above)")),
    }
}
