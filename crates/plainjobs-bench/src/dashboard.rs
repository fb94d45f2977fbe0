//! `dashboard-pages` and `dashboard-drain`: what the dashboard costs.
//!
//! - `dashboard-pages` fills the result table with N results (a mix of statuses, job names and
//!   queues over six days) and times the dashboard's list queries — the first page and a deep
//!   page by keyset, with each filter — through the library's own calls.
//! - `dashboard-drain` drains the same backlog with and without an open dashboard (viewers
//!   polling the overview and the results list at its refresh interval), alternating, and
//!   reports each pair.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use plainjobs::admin::Dashboard;
use plainjobs::{Cursor, JobStatus, Jobs, ResultFilter};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::drain::drain;
use crate::job::Shape;
use crate::out::log;
use crate::server::ServerProbe;
use crate::target::Target;
use crate::worker_setup::WorkerSpec;

#[derive(clap::Args, Debug)]
pub struct PagesArgs {
    #[command(flatten)]
    pub target: Target,
    /// Results in the table.
    #[arg(long, default_value_t = 10_000_000)]
    pub rows: u64,
    /// Keep the table filled by an earlier run (same schema and row count).
    #[arg(long)]
    pub reuse: bool,
    /// Timings per query.
    #[arg(long, default_value_t = 15)]
    pub repeat: usize,
}

/// Fills the result table: 97.9 % SUCCESSFUL, 1 % ERRORED (half of them retried), 0.1 % LOST,
/// 1 % DEFERRED; 20 job names plus one rare one (one result in 100,000); three queues; ids in
/// time order over six days.
async fn fill(target: &Target, n: u64) -> anyhow::Result<()> {
    let t = Instant::now();
    let mut p = ServerProbe::connect(&target.jobs_url()).await?;
    let step: u64 = 1_000_000;
    let mut from = 0;
    while from < n {
        let to = (from + step).min(n);
        p.execute(&format!(
            "INSERT INTO plainjobs_jobresult (uuid, created_at, job_process_uuid, started_at, ended_at, error, status, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, retry_job_request_uuid, trace_id, span_id)
             SELECT gen_random_uuid(), at, gen_random_uuid(), at, at,
                    CASE WHEN i % 100 = 7 THEN 'boom' ELSE '' END,
                    CASE WHEN i % 100 = 7 THEN 'ERRORED' WHEN i % 1000 = 3 THEN 'LOST' WHEN i % 100 = 9 THEN 'DEFERRED' ELSE 'SUCCESSFUL' END,
                    gen_random_uuid(), at,
                    CASE WHEN i % 100000 = 11 THEN 'app.jobs.Rare' ELSE 'app.jobs.Job' || (i % 20) END,
                    '{{\"args\": [], \"kwargs\": {{}}}}'::jsonb, 0, 'fill',
                    CASE i % 3 WHEN 0 THEN 'default' WHEN 1 THEN 'emails' ELSE 'reports' END,
                    CASE WHEN i % 100 = 7 THEN 1 ELSE 0 END, 0, '',
                    CASE WHEN i % 200 = 7 THEN gen_random_uuid() END, NULL, NULL
             FROM generate_series({from}::int8, {to}::int8 - 1) AS i,
                  LATERAL (SELECT now() - interval '6 days' + i * (interval '6 days' / {n}::int8) AS at) AS a"
        ))
        .await?;
        log(format!("filled {to} of {n} results"));
        from = to;
    }
    p.execute("VACUUM ANALYZE plainjobs_jobresult").await?;
    log(format!(
        "filled {n} results in {:.0}s",
        t.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Median and slowest of `repeat` timings of `query`, in milliseconds, and the rows it found.
async fn time<F, Fut>(repeat: usize, mut query: F) -> anyhow::Result<(f64, f64, usize)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = plainjobs::Result<usize>>,
{
    let mut ms = Vec::with_capacity(repeat);
    let mut found = 0;
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        found = query().await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    Ok((ms[ms.len() / 2], ms[ms.len() - 1], found))
}

pub async fn pages(args: PagesArgs) -> anyhow::Result<()> {
    args.target.check()?;
    if !args.reuse {
        args.target.reset().await?;
        fill(&args.target, args.rows).await?;
    }
    let jobs = args.target.connect(4).await?;
    let middle = {
        let all = jobs.results(&ResultFilter::new().limit(1)).await?;
        all.first().map(|r| r.id / 2).unwrap_or(1)
    };
    let base = ResultFilter::new().limit(50);
    let cases: Vec<(&str, ResultFilter)> = vec![
        ("all, first page", base.clone()),
        ("all, deep page", base.clone().cursor(Cursor::Next(middle))),
        (
            "ERRORED (1 %), first page",
            base.clone().status(JobStatus::Errored),
        ),
        (
            "ERRORED, deep page",
            base.clone()
                .status(JobStatus::Errored)
                .cursor(Cursor::Next(middle)),
        ),
        (
            "LOST (0.1 %), first page",
            base.clone().status(JobStatus::Lost),
        ),
        ("retried (1 %), first page", base.clone().retried()),
        (
            "retried, deep page",
            base.clone().retried().cursor(Cursor::Next(middle)),
        ),
        (
            "queue emails, deep page",
            base.clone().queue("emails").cursor(Cursor::Next(middle)),
        ),
        (
            "job name (5 %), first page",
            base.clone().job_class("app.jobs.Job7"),
        ),
        (
            "job name (0.001 %), first page",
            base.clone().job_class("app.jobs.Rare"),
        ),
        (
            "job name (0.001 %), first page, as the dashboard asks (at most 100,000 read)",
            base.clone()
                .job_class("app.jobs.Rare")
                .scan_at_most(100_000),
        ),
        (
            "job name (0.001 %), deep page, as the dashboard asks",
            base.clone()
                .job_class("app.jobs.Rare")
                .scan_at_most(100_000)
                .cursor(Cursor::Next(middle)),
        ),
        (
            "LOST (0.1 %), first page, as the dashboard asks",
            base.clone().status(JobStatus::Lost).scan_at_most(100_000),
        ),
    ];
    println!(
        "| query (10 M results: {} rows) | median ms | slowest ms | rows |",
        args.rows
    );
    println!("|---|---:|---:|---:|");
    for (label, filter) in cases {
        let (median, worst, found) = time(args.repeat, || {
            let (jobs, filter) = (jobs.clone(), filter.clone());
            async move { Ok(jobs.results_page(&filter).await?.items.len()) }
        })
        .await?;
        println!("| {label} | {median:.2} | {worst:.2} | {found} |");
    }
    let sample = jobs
        .results_page(
            &base
                .clone()
                .status(JobStatus::Errored)
                .cursor(Cursor::Next(middle)),
        )
        .await?;
    if let Some(r) = sample.items.first() {
        let uuid = r.job_request_uuid;
        let (median, worst, found) = time(args.repeat, || {
            let jobs = jobs.clone();
            async move {
                Ok(jobs
                    .results_page(&ResultFilter::new().uuid(uuid))
                    .await?
                    .items
                    .len())
            }
        })
        .await?;
        println!("| search by a request uuid | {median:.2} | {worst:.2} | {found} |");
        let (median, worst, found) = time(args.repeat, || {
            let jobs = jobs.clone();
            async move { Ok(jobs.chain(uuid).await?.map_or(0, |c| c.attempts.len())) }
        })
        .await?;
        println!("| one job's chain | {median:.2} | {worst:.2} | {found} |");
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct DrainArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub worker: WorkerSpec,
    /// Jobs per drain.
    #[arg(long, default_value_t = 100_000)]
    pub jobs: u64,
    /// Pairs of drains, one without and one with the dashboard open, in alternating order.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Browsers watching.
    #[arg(long, default_value_t = 1)]
    pub viewers: usize,
}

/// The `application_name` of the dashboard's connections, to find its server backends.
const DASHBOARD_APP: &str = "plainjobs-dashboard-bench";

/// What the dashboard did during one drain.
struct Watched {
    pages: u64,
    /// CPU of the dashboard's own thread: its queries' client side, the pages' rendering.
    client_cpu: Duration,
}

/// Viewers polling the overview and the results list of a dashboard of their own handle every
/// refresh interval (2 s), as open browser tabs do, until cancelled. The dashboard runs on a
/// thread of its own (a current-thread runtime), so the CPU it costs this process is that
/// thread's.
fn watch(url: String, viewers: usize, stop: CancellationToken) -> std::thread::JoinHandle<Watched> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        let pages = match runtime {
            Ok(rt) => rt.block_on(poll_pages(url, viewers, stop)),
            Err(e) => {
                log(format!("dashboard thread: no runtime: {e}"));
                0
            }
        };
        Watched {
            pages,
            client_cpu: thread_cpu(),
        }
    })
}

/// The viewers' loop: see [`watch`]. Pages served.
async fn poll_pages(url: String, viewers: usize, stop: CancellationToken) -> u64 {
    let jobs = match Jobs::connect(&url).await {
        Ok(jobs) => jobs,
        Err(e) => {
            log(format!("dashboard: cannot connect: {e}"));
            return 0;
        }
    };
    let router = Dashboard::new(jobs).router();
    let mut tasks = Vec::new();
    for _ in 0..viewers {
        let (router, stop) = (router.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut pages = 0u64;
            while !stop.is_cancelled() {
                for path in ["/live/overview", "/results?fragment=1"] {
                    let Ok(request) = Request::get(path).body(Body::empty()) else {
                        continue;
                    };
                    let Ok(r) = router.clone().oneshot(request).await;
                    pages += u64::from(r.status().is_success());
                }
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
            pages
        }));
    }
    let mut pages = 0;
    for t in tasks {
        pages += t.await.unwrap_or(0);
    }
    pages
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

/// CPU of the dashboard's server backends so far (PostgreSQL on this machine; zero on SQLite,
/// whose work is all in the dashboard's thread).
async fn dashboard_server_cpu(target: &Target) -> anyhow::Result<Duration> {
    if target.backend() != crate::target::Backend::Postgres {
        return Ok(Duration::ZERO);
    }
    let mut probe = ServerProbe::connect(&target.jobs_url()).await?;
    let pids: Vec<i32> =
        sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE application_name = $1")
            .bind(DASHBOARD_APP)
            .fetch_all(probe.conn())
            .await?;
    Ok(pids
        .into_iter()
        .filter_map(|pid| u32::try_from(pid).ok())
        .filter_map(crate::cpu::process_precise)
        .sum())
}

/// One drain with the dashboard open: its row, and the dashboard's pages and CPU (client,
/// server) over it.
async fn drain_watched(
    args: &DrainArgs,
    shape: Shape,
) -> anyhow::Result<(serde_json::Value, Watched, Duration)> {
    let stop = CancellationToken::new();
    let url = match args.target.backend() {
        crate::target::Backend::Postgres => crate::target::with_param(
            &args.target.jobs_url(),
            &format!("application_name={DASHBOARD_APP}"),
        ),
        crate::target::Backend::Sqlite => args.target.jobs_url(),
    };
    let viewers = watch(url, args.viewers, stop.clone());
    let row = drain(&args.target, &args.worker, args.jobs, shape, 600).await;
    let server_cpu = dashboard_server_cpu(&args.target).await;
    stop.cancel();
    let watched = tokio::task::spawn_blocking(move || viewers.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the dashboard thread panicked"))?;
    Ok((row?, watched, server_cpu?))
}

pub async fn drain_cost(args: DrainArgs) -> anyhow::Result<()> {
    args.target.check()?;
    let shape = Shape {
        sleep_ms: 0,
        pad_bytes: 0,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    println!(
        "| pair | order | without, jobs/s | with {} viewer(s), jobs/s | change | pages | dashboard CPU ms (client + server) | share of the machine |",
        args.viewers
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let rate = |row: &serde_json::Value| row["jobs_per_s"].as_f64().unwrap_or(0.0);
    let (mut changes, mut shares) = (Vec::new(), Vec::new());
    for pair in 1..=args.runs {
        // Alternating which drain goes first cancels what the first leaves the second (a
        // bloated table, a warmer cache).
        let with_first = pair % 2 == 0;
        let mut without = None;
        if !with_first {
            without = Some(drain(&args.target, &args.worker, args.jobs, shape, 600).await?);
        }
        let (with, watched, server_cpu) = drain_watched(&args, shape).await?;
        let without = match without {
            Some(row) => row,
            None => drain(&args.target, &args.worker, args.jobs, shape, 600).await?,
        };
        let (a, b) = (rate(&without), rate(&with));
        let change = (b - a) / a.max(1.0) * 100.0;
        let cpu = watched.client_cpu + server_cpu;
        let drain_s = with["drain_s"].as_f64().unwrap_or(f64::NAN);
        let share = cpu.as_secs_f64() / (drain_s * cores) * 100.0;
        changes.push(change);
        shares.push(share);
        println!(
            "| {pair} | {} | {a:.0} | {b:.0} | {change:+.1} % | {} | {:.1} ({:.1} + {:.1}) | {share:.2} % |",
            if with_first { "with first" } else { "without first" },
            watched.pages,
            cpu.as_secs_f64() * 1000.0,
            watched.client_cpu.as_secs_f64() * 1000.0,
            server_cpu.as_secs_f64() * 1000.0,
        );
    }
    let (mean, stderr) = mean_and_stderr(&changes);
    let (share, _) = mean_and_stderr(&shares);
    println!(
        "\nchange over {} pairs: mean {mean:+.2} %, standard error {stderr:.2} %, median {:+.2} %; the dashboard's CPU: {share:.2} % of the machine on average",
        changes.len(),
        median(&changes)
    );
    Ok(())
}

fn mean_and_stderr(xs: &[f64]) -> (f64, f64) {
    let n = xs.len().max(1) as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, (var / n).sqrt())
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}
