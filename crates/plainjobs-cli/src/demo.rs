//! `plainjobs demo`: the whole lifecycle in about ten seconds.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use clap::Args;
use plainjobs::cli::{connect, load_settings, CliError, GlobalArgs};
use plainjobs::schedule::ScheduledCommand;
use plainjobs::{Job, JobContext, JobError, JobResult, Jobs, Outcome, Worker, WorkerConfig};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `demo` options.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

const QUEUE: &str = "demo";

/// Says hello.
#[derive(Serialize, Deserialize)]
struct Greet {
    name: String,
}

impl Job for Greet {
    const NAME: &'static str = "demo.Greet";
    async fn run(&self, _ctx: &JobContext) -> Result<Outcome, JobError> {
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(Outcome::Success)
    }
    fn default_queue(&self) -> String {
        QUEUE.into()
    }
    fn default_concurrency_key(&self) -> String {
        format!("greet-{}", self.name)
    }
}

/// Fails on its first two attempts, then succeeds; retries after 1 s, then 2 s.
#[derive(Serialize, Deserialize)]
struct Flaky;

impl Job for Flaky {
    const NAME: &'static str = "demo.Flaky";
    async fn run(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
        let attempt = ctx.process().retry_attempt;
        if attempt < 2 {
            return Err(JobError::msg(format!(
                "the flaky service timed out (attempt {attempt})"
            )));
        }
        Ok(Outcome::Success)
    }
    fn default_queue(&self) -> String {
        QUEUE.into()
    }
    fn default_retries(&self) -> i16 {
        3
    }
    fn retry_delay(&self, attempt: u32) -> Duration {
        Duration::from_secs(1 << (attempt.saturating_sub(1)))
    }
}

/// Defers itself once (2 s), then succeeds.
#[derive(Serialize, Deserialize)]
struct WaitForUpload;

impl Job for WaitForUpload {
    const NAME: &'static str = "demo.WaitForUpload";
    async fn run(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
        if ctx.process().retry_attempt == 0 {
            return Ok(Outcome::Defer {
                delay: Duration::from_secs(2),
                increment_retries: true,
            });
        }
        Ok(Outcome::Success)
    }
    fn default_queue(&self) -> String {
        QUEUE.into()
    }
}

/// A nightly report, here on a schedule of every minute.
#[derive(Serialize, Deserialize)]
struct Report;

impl Job for Report {
    const NAME: &'static str = "demo.Report";
    async fn run(&self, _ctx: &JobContext) -> Result<Outcome, JobError> {
        Ok(Outcome::Success)
    }
    fn default_queue(&self) -> String {
        QUEUE.into()
    }
}

fn failure(e: impl std::fmt::Display) -> CliError {
    CliError::Failure(e.to_string())
}

pub async fn run(global: GlobalArgs, args: DemoArgs) -> Result<(), CliError> {
    if global.json {
        return Err(CliError::Usage(
            "demo shows a live view and has no JSON output: run it without --json, then `plainjobs results --json`".into(),
        ));
    }
    let settings = load_settings(&global)?;
    let jobs = connect(&settings).await?;
    jobs.migrate().await?;
    let started = chrono::Utc::now();
    println!("plainjobs demo — queue {QUEUE:?}");
    println!();

    let step = |what: &str, req: Option<plainjobs::JobRequest>| match req {
        Some(r) => {
            println!("  enqueued  {:<38} {what}", r.job_class);
        }
        None => println!("  skipped   {:<38} {what}", "demo.Greet"),
    };
    let run_id = &Uuid::new_v4().simple().to_string()[..8];
    step(
        "a job that succeeds",
        jobs.enqueue(Greet {
            name: format!("ada-{run_id}"),
        })
        .await?,
    );
    step(
        "the same job again: refused by its concurrency key",
        jobs.enqueue(Greet {
            name: format!("ada-{run_id}"),
        })
        .await?,
    );
    step(
        "fails twice, retried after 1 s then 2 s",
        jobs.enqueue(Flaky).await?,
    );
    step(
        "defers itself for 2 s, then succeeds",
        jobs.enqueue(WaitForUpload).await?,
    );
    step(
        "delayed: runs 3 s from now",
        jobs.enqueue(Greet {
            name: format!("grace-{run_id}"),
        })
        .delay(Duration::from_secs(3))
        .await?,
    );
    step(
        "a shell command (sh -c)",
        jobs.enqueue(ScheduledCommand(format!("echo plainjobs demo {run_id}")))
            .queue(QUEUE)
            .await?,
    );
    println!(
        "  schedule  {:<38} every minute (\"* * * * *\"), enqueued by the worker",
        "demo.Report"
    );
    println!();

    let mut config = WorkerConfig::default();
    config.poll_interval = Duration::from_millis(500);
    config.retry_interval = Duration::from_secs(1);
    config.stats_interval = None;
    let worker = Worker::new(jobs.clone())
        .register::<Greet>()
        .register::<Flaky>()
        .register::<WaitForUpload>()
        .register::<Report>()
        .register::<ScheduledCommand>()
        .queues([QUEUE])
        .concurrency(4)
        .config(config)
        .schedule("* * * * *", Report)
        .map_err(failure)?
        .spawn();

    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let tty = std::io::stdout().is_terminal();
    let mut last_line = String::new();
    let finished = loop {
        let results = demo_results(&jobs, started).await?;
        let stats = jobs.stats().await?;
        let q = stats.iter().find(|s| s.queue == QUEUE);
        let (pending, scheduled, running) = q
            .map(|q| (q.ready + q.waiting, q.scheduled, q.running))
            .unwrap_or((0, 0, 0));
        let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
        for r in &results {
            *by_status.entry(r.status.to_string()).or_default() += 1;
        }
        let counts: Vec<String> = by_status.iter().map(|(s, n)| format!("{s} {n}")).collect();
        let line = format!(
            "  ready {pending}  scheduled {scheduled}  running {running}  |  {}",
            if counts.is_empty() {
                "no results yet".to_string()
            } else {
                counts.join("  ")
            }
        );
        if tty {
            print!("\r\x1b[2K{line}");
            let _ = std::io::stdout().flush();
        } else if line != last_line {
            println!("{line}");
        }
        last_line = line;
        // Done when every job of the tour has ended: nothing of the queue is claimed or
        // pending but the scheduled report, and the five tour jobs (greet, delayed greet,
        // flaky, the deferred one, the command) have their successes.
        let tour_successes = results
            .iter()
            .filter(|r| r.status == plainjobs::JobStatus::Successful && r.job_class != Report::NAME)
            .count();
        let waiting: usize = jobs
            .requests(10_000)
            .await?
            .iter()
            .filter(|r| r.queue == QUEUE && r.job_class != Report::NAME)
            .count();
        let claimed = q.map(|q| q.waiting + q.running).unwrap_or(0);
        if tour_successes >= 5 && waiting == 0 && claimed == 0 {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    if tty {
        println!();
    }
    worker.stop().await.map_err(failure)?;

    let results = demo_results(&jobs, started).await?;
    println!();
    println!(
        "{:<10} {:<38} {:>7}  {:<36}  note",
        "status", "job", "attempt", "result uuid"
    );
    for r in &results {
        let note = r.error.lines().next().unwrap_or("").to_string();
        let note = if r.retry_job_request_uuid.is_some() {
            format!("{note} → retried")
        } else {
            note
        };
        println!(
            "{:<10} {:<38} {:>7}  {:<36}  {}",
            r.status.as_str(),
            r.job_class,
            format!("{}/{}", r.retry_attempt, r.retries),
            r.uuid,
            note
        );
    }
    let scheduled = jobs
        .requests(1000)
        .await?
        .into_iter()
        .filter(|r| r.job_class == Report::NAME)
        .collect::<Vec<_>>();
    for r in &scheduled {
        println!(
            "{:<10} {:<38} {:>7}  {:<36}  fires at {}",
            "PENDING",
            r.job_class,
            "0/0",
            r.uuid,
            r.start_at.map(|t| t.to_rfc3339()).unwrap_or_default()
        );
    }
    println!();
    if !finished {
        return Err(failure(format!(
            "the demo did not finish within {} s",
            args.timeout
        )));
    }
    println!("Every job ended exactly once. Try: plainjobs stats, plainjobs results --queue {QUEUE}, plainjobs show <uuid>");
    Ok(())
}

async fn demo_results(
    jobs: &Jobs,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<JobResult>, CliError> {
    let mut results: Vec<JobResult> = jobs
        .results(&plainjobs::ResultFilter::new().queue(QUEUE).limit(1000))
        .await?
        .into_iter()
        .filter(|r| r.created_at >= since)
        .collect();
    results.sort_by_key(|r| r.id);
    Ok(results)
}
