//! `show`: one job by any of its uuids, its fields in the order a person reads them.

use chrono::Utc;
use clap::Args;
use serde_json::Value;
use uuid::Uuid;

use crate::cli::error::{failure, usage, CliError};
use crate::cli::output::{job_label, print_json, took, when_ago};
use crate::cli::Ctx;
use crate::Found;

/// `show` arguments.
#[derive(Debug, Clone, Args)]
pub struct ShowArgs {
    /// A request, process or result uuid (any uuid `enqueue`, `results` or a log printed).
    pub uuid: String,
}

pub(crate) fn parse_uuid(text: &str) -> Result<Uuid, CliError> {
    Uuid::parse_str(text.trim()).map_err(|_| {
        usage(format!(
            "{text:?} is not a uuid (like 0192f0c4-3a5e-7c1b-9d2a-4f6e8b0c1d2e)"
        ))
    })
}

pub(crate) async fn show(ctx: &Ctx, a: ShowArgs) -> Result<(), CliError> {
    let uuid = parse_uuid(&a.uuid)?;
    let jobs = ctx.jobs().await?;
    let found = jobs.find(uuid).await?.ok_or_else(|| {
        failure(format!(
            "no job with uuid {uuid} in {} (results are deleted after the retention period)",
            ctx.database()
        ))
    })?;
    if ctx.json {
        return print_json(&found);
    }
    for (name, value) in fields(&found) {
        println!("{name:<18} {value}");
    }
    if let Found::Result(r) = &found {
        if !r.error.is_empty() {
            println!("error:");
            for line in r.error.lines() {
                println!("  {line}");
            }
        }
    }
    Ok(())
}

fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) if s.is_empty() => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The fields of a request, process or result: what and where first, then when, then the
/// uuids that link it to the others.
fn fields(found: &Found) -> Vec<(&'static str, String)> {
    let now = Utc::now();
    let mut out = Vec::new();
    let (row, kind) = match found {
        Found::Request(r) => (serde_json::to_value(r), "pending request".to_string()),
        Found::Process(p) => (
            serde_json::to_value(p),
            if p.started_at.is_some() {
                "running process"
            } else {
                "claimed process (not started)"
            }
            .to_string(),
        ),
        Found::Result(r) => (serde_json::to_value(r), format!("result {}", r.status)),
    };
    let row = row.unwrap_or(Value::Null);
    let get = |k: &str| text(row.get(k));
    out.push(("state", kind));
    out.push(("uuid", get("uuid")));
    let (job_class, params) = (get("job_class"), row.get("parameters"));
    out.push(("job", job_label(&job_class, params)));
    if job_label(&job_class, params) != job_class {
        out.push(("job name", job_class));
    }
    out.push(("queue", get("queue")));
    out.push((
        "attempt",
        format!("{}/{}", get("retry_attempt"), get("retries")),
    ));
    out.push(("priority", get("priority")));
    out.push(("concurrency key", get("concurrency_key")));
    out.extend(times(found, now));
    out.push(("request uuid", get("job_request_uuid")));
    out.push(("process uuid", get("job_process_uuid")));
    out.push(("retried as", get("retry_job_request_uuid")));
    out.push(("source", get("source")));
    out.push(("parameters", text(params)));
    out.push(("trace", get("trace_id")));
    out.retain(|(name, value)| {
        !(value == "-"
            && matches!(
                *name,
                "request uuid" | "process uuid" | "retried as" | "trace"
            ))
    });
    out
}

/// When the job was enqueued, claimed, started, ended; how long it waited and took.
fn times(found: &Found, now: chrono::DateTime<Utc>) -> Vec<(&'static str, String)> {
    match found {
        Found::Request(r) => {
            let starts = match r.start_at {
                Some(_) => when_ago(r.start_at, now),
                None => "as soon as a worker is free".into(),
            };
            vec![
                ("enqueued", when_ago(Some(r.created_at), now)),
                ("starts", starts),
            ]
        }
        Found::Process(p) => vec![
            ("enqueued", when_ago(p.requested_at, now)),
            ("claimed", when_ago(Some(p.created_at), now)),
            ("started", when_ago(p.started_at, now)),
            ("worker", p.worker_id.to_string()),
        ],
        Found::Result(r) => vec![
            ("enqueued", when_ago(r.requested_at, now)),
            ("started", when_ago(r.started_at, now)),
            ("ended", when_ago(r.ended_at, now)),
            ("took", took(r.started_at, r.ended_at)),
            ("waited", took(r.requested_at, r.started_at)),
        ],
    }
}
