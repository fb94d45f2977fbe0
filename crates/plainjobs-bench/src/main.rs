//! `plainjobs-bench`: plainjobs measured the way the peer harness (`../shared/bench`) measures
//! every job queue, through the library's public API only.
//!
//! 1. Resets its own schema (`--schema`, default `plainjobs_bench`: dropped and recreated; every
//!    connection gets `options=-c search_path=<schema>`) and runs `Jobs::migrate()`.
//! 2. Times `--single-n` single enqueues (`jobs.enqueue(job).await`, one autocommit statement
//!    each) -> `single_enqueue_per_s`, then purges them.
//! 3. Bulk-enqueues `--jobs N` no-op jobs with `enqueue_many` in chunks of `--chunk`
//!    -> `enqueue_per_s`; then `VACUUM ANALYZE` of the request table, as the peers do.
//! 4. Drain: spawns a `Worker` with `--concurrency C`; drain time = worker start (its
//!    registration and LISTEN included) -> all N handlers ran and no JobRequest/JobProcess row
//!    remains (counted every 5 ms on a separate connection) -> `jobs_per_s = N / drain_s`.
//!    `wal_bytes_per_job` is the WAL insert position's advance over the drain (cluster-wide, so
//!    other activity on the server counts too); `statements_per_job` comes from
//!    `pg_stat_statements` when it is installed and loaded (otherwise left out).
//!    `avg_start_batch` / `avg_finish_batch`: jobs per claim (or per `mark_started`, with
//!    `--max-pending`) and per result-writing statement, read afterwards from the results'
//!    `started_at` / `created_at` (one `now()` per statement).
//! 5. Idle latency: with the same worker running and idle, 20 warm-up jobs, then `--lat-n`
//!    single enqueues through the worker's own `Jobs` handle (an application running its
//!    worker in-process; the idle worker takes each job directly unless `--no-local-dispatch`),
//!    open loop, `--lat-gap-ms` apart jittered uniformly in 0.5x..1.5x (fixed
//!    seed); each is timed from just before the enqueue call to its handler being entered
//!    (`Instant`, same process). Jobs not started 5 s after the last enqueue are
//!    `lat_timeouts`.
//!
//! Prints ONE JSON line on stdout; progress goes to stderr. No tracing subscriber is installed,
//! so the library's per-job log events cost nothing here.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench \
//!   plainjobs-bench --jobs 20000 --concurrency 10 --lat-n 200 --lat-gap-ms 20
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use plainjobs::{ConnectOptions, Job, JobContext, JobError, Jobs, Outcome, Worker};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

/// Jobs not started this long after the last latency enqueue count as timeouts.
const LAT_TIMEOUT: Duration = Duration::from_secs(5);
/// Marks the benchmark's own probe queries, so that statement counts leave them out.
const PROBE: &str = "/* plainjobs-bench probe */";

#[derive(Parser, Debug)]
#[command(
    name = "plainjobs-bench",
    about = "Drain throughput, enqueue rates and idle enqueue-to-start latency of plainjobs (one JSON line on stdout)"
)]
struct Args {
    /// Jobs to bulk-enqueue and drain.
    #[arg(long, default_value_t = 20_000)]
    jobs: u64,
    /// Worker concurrency (job slots).
    #[arg(long, default_value_t = 10)]
    concurrency: usize,
    /// Latency samples.
    #[arg(long, default_value_t = 200)]
    lat_n: u64,
    /// Mean gap between latency enqueues (jittered 0.5x..1.5x).
    #[arg(long, default_value_t = 20.0)]
    lat_gap_ms: f64,
    /// Warm-up jobs before the latency samples.
    #[arg(long, default_value_t = 20)]
    lat_warmup: u64,
    /// Jobs the worker may claim ahead of a free slot (`Worker::max_pending`); default: the
    /// library's default.
    #[arg(long)]
    max_pending: Option<usize>,
    /// Jobs per `enqueue_many` call.
    #[arg(long, default_value_t = 10_000)]
    chunk: usize,
    /// Single enqueues timed for `single_enqueue_per_s` (0: skip).
    #[arg(long, default_value_t = 500)]
    single_n: u64,
    /// Skip the latency phase (its fields are null).
    #[arg(long)]
    skip_latency: bool,
    /// Only reset, enqueue the backlog and report the enqueue rates; the rows are left in place
    /// (to look at the claim with EXPLAIN, say).
    #[arg(long)]
    backlog_only: bool,
    /// Before the drain, fill the result table with this many finished jobs of the past 6 days
    /// (history within the default 7-day retention, so the worker keeps it), to measure that its size does
    /// not slow the lifecycle down.
    #[arg(long, default_value_t = 0)]
    prefill_results: u64,
    /// Claims commit without waiting for their WAL flush (`WorkerConfig::asynchronous_claims`,
    /// off by default; PostgreSQL only). Labels the row.
    #[arg(long)]
    asynchronous_claims: bool,
    /// Turn off `WorkerConfig::local_dispatch` (on by default: the latency phase enqueues
    /// through the worker's own handle, as an application that runs its worker in-process
    /// does, so an idle worker takes each job directly). Labels the row.
    #[arg(long)]
    no_local_dispatch: bool,
    /// Do not VACUUM ANALYZE the request table after the bulk enqueue.
    #[arg(long)]
    no_vacuum: bool,
    /// The schema to drop, recreate and use.
    #[arg(long, default_value = "plainjobs_bench")]
    schema: String,
    /// Give up on the drain after this long.
    #[arg(long, default_value_t = 600)]
    drain_timeout_s: u64,
    /// The database (the harness sets DATABASE_URL).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/bench",
        hide_env_values = true
    )]
    database_url: String,
}

/// What the handlers report to the benchmark.
#[derive(Default)]
struct Probe {
    done: AtomicU64,
    starts: Mutex<HashMap<i64, Instant>>,
}

/// The no-op job. `timed` jobs record when their handler was entered, by `seq`.
#[derive(Serialize, Deserialize)]
struct Noop {
    seq: i64,
    timed: bool,
}

impl Job for Noop {
    const NAME: &'static str = "bench.Noop";

    async fn run(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
        let entered = Instant::now();
        let probe = ctx.state::<Arc<Probe>>()?;
        if self.timed {
            probe
                .starts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(self.seq, entered);
        }
        probe.done.fetch_add(1, Ordering::Relaxed);
        Ok(Outcome::Success)
    }
}

/// Tiny LCG (the Rust peer's), so the pacing is reproducible without a rand dependency.
struct Lcg(u64);

impl Lcg {
    fn next_f64(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Nearest-rank percentile of sorted samples (as the peers compute it).
fn pct(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let idx = ((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[idx])
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn log(msg: impl std::fmt::Display) {
    eprintln!("[plainjobs-bench] {msg}");
}

/// `url` with `-c search_path=<schema>` added to its startup options.
fn url_with_search_path(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

/// Peak resident set size of this process (VmHWM), in kB.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Pending plus claimed/running jobs.
async fn queued(probe: &PgPool) -> anyhow::Result<i64> {
    let n: i64 = sqlx::query_scalar(&format!(
        "{PROBE} SELECT (SELECT count(*) FROM plainjobs_jobrequest) + (SELECT count(*) FROM plainjobs_jobprocess)"
    ))
    .fetch_one(probe)
    .await?;
    Ok(n)
}

/// Fills the result table with `n` SUCCESSFUL results spread over the past 6 days, with
/// time-ordered (version 7) uuids as the library makes them, in statements of a million rows.
async fn prefill_results(probe: &PgPool, n: u64) -> anyhow::Result<()> {
    let t = Instant::now();
    sqlx::raw_sql(
        "CREATE FUNCTION pg_temp.uuid7_at(t timestamptz) RETURNS uuid LANGUAGE sql VOLATILE AS $$
           SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
             PLACING substring(int8send((extract(epoch FROM t) * 1000)::int8) FROM 3) FROM 1 FOR 6),
             52, 1), 53, 1), 'hex')::uuid
         $$",
    )
    .execute(probe)
    .await
    .context("creating the prefill's uuid function")?;
    let step: u64 = 1_000_000;
    let mut from = 0;
    while from < n {
        let to = (from + step).min(n);
        sqlx::query(&format!(
            "{PROBE} INSERT INTO plainjobs_jobresult (uuid, created_at, job_process_uuid, started_at, ended_at, error, status, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, retry_job_request_uuid, trace_id, span_id)
             SELECT pg_temp.uuid7_at(at), at, pg_temp.uuid7_at(at), at, at, '', 'SUCCESSFUL', pg_temp.uuid7_at(at), at,
                    'bench.Noop', jsonb_build_object('args', jsonb_build_array(), 'kwargs', jsonb_build_object('seq', i, 'timed', false)),
                    0, 'prefill', 'default', 0, 0, '', NULL, NULL, NULL
             FROM generate_series($1::int8, $2::int8 - 1) AS i,
                  LATERAL (SELECT now() - interval '6 days' + i * (interval '6 days' / $3::int8) AS at) AS a"
        ))
        .bind(from as i64)
        .bind(to as i64)
        .bind(n as i64)
        .execute(probe)
        .await
        .context("prefilling the result table")?;
        from = to;
    }
    sqlx::query(&format!("{PROBE} VACUUM ANALYZE plainjobs_jobresult"))
        .execute(probe)
        .await
        .context("vacuuming the prefilled result table")?;
    log(format!(
        "prefilled {n} results in {:.1}s",
        t.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// The server's WAL insert position, in bytes (None where it cannot be read).
async fn wal_position(probe: &PgPool) -> Option<i64> {
    sqlx::query_scalar::<_, i64>(&format!(
        "{PROBE} SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::int8"
    ))
    .fetch_one(probe)
    .await
    .ok()
}

/// Statements executed so far in this database per `pg_stat_statements`, leaving out the
/// benchmark's probes (None when the extension is not installed or not loaded).
async fn statement_count(probe: &PgPool) -> Option<i64> {
    let exists: Option<String> = sqlx::query_scalar(&format!(
        "{PROBE} SELECT to_regclass('pg_stat_statements')::text"
    ))
    .fetch_one(probe)
    .await
    .ok()?;
    exists?;
    sqlx::query_scalar::<_, i64>(&format!(
        "{PROBE} SELECT coalesce(sum(calls), 0)::int8 FROM pg_stat_statements
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND query NOT LIKE '%plainjobs-bench probe%'"
    ))
    .fetch_one(probe)
    .await
    .ok()
}

/// Enqueues `seqs` one at a time, paced open loop; returns when each enqueue call began.
async fn enqueue_paced(
    jobs: &Jobs,
    seqs: impl Iterator<Item = i64>,
    gap_ms: f64,
    rng: &mut Lcg,
) -> anyhow::Result<HashMap<i64, Instant>> {
    let mut began = HashMap::new();
    let mut next = Instant::now();
    for seq in seqs {
        next += Duration::from_secs_f64((0.5 + rng.next_f64()) * gap_ms / 1000.0);
        tokio::time::sleep_until(next.into()).await;
        let t = Instant::now();
        jobs.enqueue(Noop { seq, timed: true })
            .await
            .context("latency enqueue")?;
        began.insert(seq, t);
    }
    Ok(began)
}

/// Waits (up to the latency timeout) until every job in `seqs` has started.
async fn wait_started(probe: &Probe, seqs: &[i64]) {
    let deadline = Instant::now() + LAT_TIMEOUT;
    while Instant::now() < deadline {
        {
            let starts = probe.starts.lock().unwrap_or_else(|e| e.into_inner());
            if seqs.iter().all(|s| starts.contains_key(s)) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.schema.is_empty()
        || !args
            .schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        || args.schema.starts_with(|c: char| c.is_ascii_digit())
    {
        bail!(
            "--schema must be a lowercase identifier ([a-z_][a-z0-9_]*), got {:?}",
            args.schema
        );
    }
    let n = args.jobs;
    let c = args.concurrency.max(1);
    let sqlite = args.database_url.starts_with("sqlite:");
    let url = if sqlite {
        // A fresh file: the SQLite backend's rows of the benchmark.
        let path = args
            .database_url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
        args.database_url.clone()
    } else {
        url_with_search_path(&args.database_url, &args.schema)
    };
    if sqlite {
        if args.prefill_results > 0 || args.asynchronous_claims {
            bail!("--prefill-results and --asynchronous-claims are for PostgreSQL only");
        }
        return run_sqlite(&args, &url).await;
    }

    // The benchmark's own probes (schema reset, counts, WAL) on a pool of their own.
    let probe_pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .with_context(|| {
            format!(
                "connecting to {}",
                plainjobs::redact_url(&args.database_url)
            )
        })?;

    // --- reset the schema --------------------------------------------------------------
    sqlx::raw_sql(&format!(
        "DROP SCHEMA IF EXISTS {s} CASCADE; CREATE SCHEMA {s}",
        s = args.schema
    ))
    .execute(&probe_pool)
    .await
    .context("resetting the schema")?;
    // The producer (enqueues) and the worker each get their own pool, as in the peers.
    let producer = Jobs::connect_with(
        &url,
        ConnectOptions {
            max_connections: 2,
            ..Default::default()
        },
    )
    .await?;
    producer.migrate().await.context("migrate")?;
    log(format!("schema {} reset and migrated", args.schema));
    if args.prefill_results > 0 {
        prefill_results(&probe_pool, args.prefill_results).await?;
    }

    // --- single enqueues ------------------------------------------------------------------
    let single_enqueue_per_s = if args.single_n > 0 {
        let t = Instant::now();
        for i in 0..args.single_n {
            producer
                .enqueue(Noop {
                    seq: i as i64,
                    timed: false,
                })
                .await
                .context("single enqueue")?;
        }
        let s = t.elapsed().as_secs_f64();
        producer
            .purge()
            .await
            .context("purging the single enqueues")?;
        log(format!("{} single enqueues in {s:.3}s", args.single_n));
        Some((args.single_n as f64 / s).round())
    } else {
        None
    };

    // --- bulk enqueue -----------------------------------------------------------------------
    let t = Instant::now();
    let mut next = 0u64;
    while next < n {
        let end = (next + args.chunk.max(1) as u64).min(n);
        let batch = (next..end).map(|i| Noop {
            seq: i as i64,
            timed: false,
        });
        let made = producer.enqueue_many(batch).await.context("enqueue_many")?;
        if made.len() as u64 != end - next {
            bail!("enqueue_many made {} jobs of {}", made.len(), end - next);
        }
        next = end;
    }
    let enqueue_s = t.elapsed().as_secs_f64();
    let enqueue_per_s = if enqueue_s > 0.0 {
        (n as f64 / enqueue_s).round()
    } else {
        0.0
    };
    log(format!(
        "bulk-enqueued {n} jobs in {enqueue_s:.3}s ({enqueue_per_s} jobs/s)"
    ));
    if !args.no_vacuum {
        sqlx::query("VACUUM ANALYZE plainjobs_jobrequest")
            .execute(&probe_pool)
            .await
            .context("vacuum")?;
    }

    let mut out = serde_json::json!({
        "system": system_name(&args, "Rust"),
        "concurrency": c,
        "jobs": n,
        "prefilled_results": args.prefill_results,
        "enqueue_s": r3(enqueue_s),
        "enqueue_per_s": enqueue_per_s,
        "single_enqueue_per_s": single_enqueue_per_s,
    });
    if args.backlog_only {
        out["peak_rss_kb"] = serde_json::json!(peak_rss_kb());
        println!("{out}");
        return Ok(());
    }

    // --- drain ------------------------------------------------------------------------------
    let probe = Arc::new(Probe::default());
    let worker_jobs = Jobs::connect_with(
        &url,
        ConnectOptions {
            max_connections: u32::try_from(c).unwrap_or(u32::MAX).saturating_add(4),
            ..Default::default()
        },
    )
    .await?;
    let wal_before = wal_position(&probe_pool).await;
    let statements_before = statement_count(&probe_pool).await;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let drain_timeout = Duration::from_secs(args.drain_timeout_s);

    let t0 = Instant::now();
    let mut config = plainjobs::WorkerConfig::default();
    config.asynchronous_claims = args.asynchronous_claims;
    config.local_dispatch = !args.no_local_dispatch;
    let mut worker = Worker::new(worker_jobs.clone())
        .config(config)
        .register::<Noop>()
        .state(probe.clone())
        .concurrency(c);
    if let Some(n) = args.max_pending {
        worker = worker.max_pending(n);
    }
    let worker = tokio::spawn(worker.run_until(async move {
        let _ = stop_rx.await;
    }));
    while probe.done.load(Ordering::Relaxed) < n {
        if worker.is_finished() {
            bail!("the worker stopped during the drain: {:?}", worker.await);
        }
        if t0.elapsed() > drain_timeout {
            bail!(
                "drain timed out: {}/{n} handlers ran",
                probe.done.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    loop {
        let left = queued(&probe_pool).await?;
        if left == 0 {
            break;
        }
        if t0.elapsed() > drain_timeout {
            bail!("drain timed out: all handlers ran but {left} rows remain");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let drain_s = t0.elapsed().as_secs_f64();
    let wal_after = wal_position(&probe_pool).await;
    let statements_after = statement_count(&probe_pool).await;
    let done = probe.done.load(Ordering::Relaxed);
    if done != n {
        bail!("{done} handlers ran for {n} jobs");
    }
    let jobs_per_s = (n as f64 / drain_s).round();
    log(format!(
        "drained {n} jobs in {drain_s:.3}s with concurrency {c} ({jobs_per_s} jobs/s)"
    ));
    out["drain_s"] = serde_json::json!(r3(drain_s));
    out["jobs_per_s"] = serde_json::json!(jobs_per_s);
    if let (Some(a), Some(b)) = (wal_before, wal_after) {
        if n > 0 {
            out["wal_bytes_per_job"] = serde_json::json!(((b - a) as f64 / n as f64).round());
        }
    }
    // How the drain batched: every row one claim moved shares that claim's now() as started_at,
    // and every result one finish_many wrote shares its now() as created_at.
    let (results, claims, finishes): (i64, i64, i64) = sqlx::query_as(&format!(
        "{PROBE} SELECT count(*), count(DISTINCT started_at), count(DISTINCT created_at) FROM plainjobs_jobresult WHERE source <> 'prefill'"
    ))
    .fetch_one(&probe_pool)
    .await?;
    if results > 0 && claims > 0 && finishes > 0 {
        out["avg_start_batch"] = serde_json::json!(r3(results as f64 / claims as f64));
        out["avg_finish_batch"] = serde_json::json!(r3(results as f64 / finishes as f64));
        // Claims and result writes are one statement each (and one transaction).
        out["worker_statements_per_job"] =
            serde_json::json!(r3((claims + finishes) as f64 / results as f64));
        log(format!(
            "{results} results: {claims} start batches (claims), {finishes} finish batches"
        ));
    }
    if let (Some(a), Some(b)) = (statements_before, statements_after) {
        if n > 0 {
            out["statements_per_job"] = serde_json::json!(r3((b - a) as f64 / n as f64));
        }
    }

    // --- idle latency -----------------------------------------------------------------------
    let (samples, timeouts) = if args.skip_latency {
        (Vec::new(), 0)
    } else {
        latency_phase(&args, &worker_jobs, &probe).await?
    };

    let _ = stop_tx.send(());
    match tokio::time::timeout(Duration::from_secs(10), worker).await {
        Ok(joined) => joined.context("worker task")?.context("worker")?,
        Err(_) => log("the worker did not stop within 10 s"),
    }

    let p = |q: f64| pct(&samples, q).map(r3);
    out["lat_p50_ms"] = serde_json::json!(p(50.0));
    out["lat_p95_ms"] = serde_json::json!(p(95.0));
    out["lat_p99_ms"] = serde_json::json!(p(99.0));
    out["lat_n"] = serde_json::json!(samples.len());
    out["lat_timeouts"] = serde_json::json!(timeouts);
    out["max_pending"] = serde_json::json!(args.max_pending.unwrap_or(100));
    out["peak_rss_kb"] = serde_json::json!(peak_rss_kb());
    println!("{out}");
    Ok(())
}

/// With the worker idle: warm-up jobs, then `lat_n` single enqueues open loop, each timed from
/// just before its enqueue call to its handler starting. Returns sorted samples (ms) and how
/// many never started.
async fn latency_phase(
    args: &Args,
    producer: &Jobs,
    probe: &Probe,
) -> anyhow::Result<(Vec<f64>, u64)> {
    let mut samples = Vec::new();
    let mut timeouts = 0u64;
    let mut rng = Lcg(42);
    let warm: Vec<i64> = (0..args.lat_warmup as i64).map(|i| -1 - i).collect();
    enqueue_paced(producer, warm.iter().copied(), args.lat_gap_ms, &mut rng).await?;
    wait_started(probe, &warm).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seqs: Vec<i64> = (0..args.lat_n as i64).collect();
    let began = enqueue_paced(producer, seqs.iter().copied(), args.lat_gap_ms, &mut rng).await?;
    wait_started(probe, &seqs).await;
    let starts = probe.starts.lock().unwrap_or_else(|e| e.into_inner());
    for seq in &seqs {
        match starts.get(seq) {
            Some(s) => samples.push(s.duration_since(began[seq]).as_secs_f64() * 1000.0),
            None => timeouts += 1,
        }
    }
    samples.sort_by(f64::total_cmp);
    log(format!(
        "latency: {} samples, {timeouts} timeouts",
        samples.len()
    ));
    Ok((samples, timeouts))
}

/// The row's label: the system and every non-default setting.
fn system_name(args: &Args, base: &str) -> String {
    let mut labels = vec![base.to_string()];
    if let Some(n) = args.max_pending {
        labels.push(format!("max_pending={n}"));
    }
    if args.asynchronous_claims {
        labels.push("asynchronous claims".to_string());
    }
    if args.no_local_dispatch {
        labels.push("no local dispatch".to_string());
    }
    format!("plainjobs ({})", labels.join(", "))
}

/// The SQLite rows: the same drain and latency phases, on a fresh file, counted through the
/// library's own API (no WAL or statement statistics).
async fn run_sqlite(args: &Args, url: &str) -> anyhow::Result<()> {
    let n = args.jobs;
    let c = args.concurrency.max(1);
    let producer = Jobs::connect(url).await?;
    producer.migrate().await.context("migrate")?;
    let t = Instant::now();
    let mut next = 0u64;
    while next < n {
        let end = (next + args.chunk.max(1) as u64).min(n);
        producer
            .enqueue_many((next..end).map(|i| Noop {
                seq: i as i64,
                timed: false,
            }))
            .await
            .context("enqueue_many")?;
        next = end;
    }
    let enqueue_s = t.elapsed().as_secs_f64();
    let probe = Arc::new(Probe::default());
    let worker_jobs = Jobs::connect(url).await?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let t0 = Instant::now();
    let mut config = plainjobs::WorkerConfig::default();
    config.local_dispatch = !args.no_local_dispatch;
    let mut worker = Worker::new(worker_jobs.clone())
        .config(config)
        .register::<Noop>()
        .state(probe.clone())
        .concurrency(c);
    if let Some(m) = args.max_pending {
        worker = worker.max_pending(m);
    }
    let worker = tokio::spawn(worker.run_until(async move {
        let _ = stop_rx.await;
    }));
    let drain_timeout = Duration::from_secs(args.drain_timeout_s);
    while probe.done.load(Ordering::Relaxed) < n {
        if t0.elapsed() > drain_timeout {
            bail!("drain timed out");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    loop {
        let stats = producer.stats().await?;
        let left: i64 = stats
            .iter()
            .map(|q| q.ready + q.scheduled + q.waiting + q.running)
            .sum();
        if left == 0 {
            break;
        }
        if t0.elapsed() > drain_timeout {
            bail!("drain timed out: {left} rows remain");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let drain_s = t0.elapsed().as_secs_f64();
    let (samples, timeouts) = if args.skip_latency {
        (Vec::new(), 0)
    } else {
        latency_phase(args, &worker_jobs, &probe).await?
    };
    let _ = stop_tx.send(());
    let _ = worker.await;
    let out = serde_json::json!({
        "system": system_name(args, "Rust, SQLite"),
        "concurrency": c,
        "jobs": n,
        "enqueue_s": r3(enqueue_s),
        "enqueue_per_s": (n as f64 / enqueue_s.max(1e-9)).round(),
        "drain_s": r3(drain_s),
        "jobs_per_s": (n as f64 / drain_s).round(),
        "lat_p50_ms": pct(&samples, 50.0).map(r3),
        "lat_p95_ms": pct(&samples, 95.0).map(r3),
        "lat_p99_ms": pct(&samples, 99.0).map(r3),
        "lat_n": samples.len(),
        "lat_timeouts": timeouts,
        "peak_rss_kb": peak_rss_kb(),
    });
    println!("{out}");
    Ok(())
}
