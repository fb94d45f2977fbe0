//! One open-loop run, measured: jobs arrive (see [`crate::producer`]) while workers take them;
//! enqueue-to-start percentiles of short and long jobs, what the producer managed, and the
//! meter's figures. Through the queue (a producer process, K worker processes) or in one
//! process (the producer enqueues through the worker's own handle: local dispatch).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{json, Value};

use crate::children::{wait_runs, Process};
use crate::hist::{merge, summary};
use crate::job::Recorder;
use crate::many::{latency_file, start_workers, stop_workers};
use crate::meter::{Meter, Workers};
use crate::producer::{open_loop, Arrivals};
use crate::runs;
use crate::target::Target;
use crate::worker_setup::WorkerSpec;

/// After the last arrival, how long jobs may take to start before they count as not started.
const SETTLE: Duration = Duration::from_secs(15);

/// A producer process and `k` worker processes.
pub async fn through_queue(
    target: &Target,
    spec: &WorkerSpec,
    k: usize,
    arrivals: &Arrivals,
    connections: u32,
    dir: &Path,
) -> anyhow::Result<Value> {
    target.reset().await?;
    let mut workers = start_workers(target, spec, k, dir, true).await?;
    let mut pargs = vec!["producer".to_string()];
    pargs.extend(arrivals.to_args());
    pargs.extend(["--connections".into(), connections.to_string()]);
    let mut producer = Process::spawn("producer", target, &pargs)?;
    producer.ready(Duration::from_secs(60)).await?;
    let pids = Workers::Children(workers.iter().map(|p| p.pid).collect());
    let meter = Meter::start(target, &pids).await?;
    for w in &mut workers {
        w.go().await?;
    }
    producer.go().await?;
    let deadline =
        Instant::now() + Duration::from_secs_f64(arrivals.seconds) + Duration::from_secs(120);
    while !producer.poll() {
        if Instant::now() > deadline {
            bail!("the producer did not finish");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let made = producer.finish(Duration::from_secs(10)).await?;
    let sent = made["sent"].as_u64().unwrap_or(0);
    wait_runs(&mut workers, sent, SETTLE).await;
    let started: u64 = workers.iter().map(|w| w.runs).sum();
    let mut metrics = meter.finish(sent, &pids).await?;
    let (claims, distinct, twice) = stop_workers(workers, dir).await?;
    let (mut short, mut long) = (Vec::new(), Vec::new());
    for i in 0..k {
        short.extend(runs::read_samples(
            &latency_file(dir, i).with_extension("short"),
        ));
        long.extend(runs::read_samples(
            &latency_file(dir, i).with_extension("long"),
        ));
    }
    let mut row = json!({
        "path": "queue",
        "processes": k,
        "ran": distinct,
        "ran_twice": twice,
        "not_started": sent.saturating_sub(started),
        "producer_cpu_us_per_job": made["cpu_s"].as_f64().map(|s| (s * 1e6 / sent.max(1) as f64).round()),
    });
    merge(&mut row, spec.fields());
    merge(&mut row, strip_event(made));
    merge(&mut row, claims);
    merge(&mut row, summary("lat", &short));
    merge(&mut row, summary("long_lat", &long));
    merge(&mut metrics, row);
    Ok(metrics)
}

/// The producer and the worker in this process, enqueueing through the worker's own handle.
pub async fn in_process(
    target: &Target,
    spec: &WorkerSpec,
    arrivals: &Arrivals,
    connections: u32,
) -> anyhow::Result<Value> {
    target.reset().await?;
    let jobs = target
        .connect(WorkerSpec::IN_PROCESS_POOL + connections)
        .await?;
    let recorder = Arc::new(Recorder::default());
    let handle = spec.worker(jobs.clone(), recorder.clone(), true).spawn();
    // Let it register and go idle (its first claim finds nothing).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let meter = Meter::start(target, &Workers::ThisProcess).await?;
    let made = open_loop(&jobs, arrivals).await;
    let sent = made["sent"].as_u64().unwrap_or(0);
    let deadline = Instant::now() + SETTLE;
    while recorder.done() < sent && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let started = recorder.done();
    let counters = handle.counters();
    let mut metrics = meter.finish(sent, &Workers::ThisProcess).await?;
    handle.stop().await?;
    crate::target::close(&jobs).await;
    let (distinct, twice) = runs::tally(&recorder.take_runs());
    let (short, long) = recorder.take_latencies();
    let mut row = json!({
        "path": "local",
        "processes": 1,
        "ran": distinct,
        "ran_twice": twice,
        "not_started": sent.saturating_sub(started),
        "claims": counters.claims,
        "short_claims": counters.short_claims,
        "empty_claims": counters.empty_claims,
        "cpu_note": "worker and producer share this process",
    });
    merge(&mut row, spec.fields());
    merge(&mut row, made);
    merge(&mut row, summary("lat", &short));
    merge(&mut row, summary("long_lat", &long));
    merge(&mut metrics, row);
    Ok(metrics)
}

fn strip_event(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("event");
        o.remove("cpu_s");
    }
    v
}
