//! Open-loop arrivals: jobs enqueued one at a time at a given mean rate, with exponential gaps
//! (a Poisson process, fixed seed), whether or not earlier enqueues have returned. Each job
//! carries the moment just before its enqueue call (see [`crate::clock`]).
//!
//! `producer` runs this as a process of its own (through the queue); the load question also
//! runs it in-process on the worker's own handle (local dispatch).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use plainjobs::Jobs;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Semaphore;

use crate::children::say;
use crate::clock::now_ns;
use crate::hist::{merge, summary};
use crate::job::{Shape, LONG_JOB_MS};
use crate::meter::r1;
use crate::rng::Lcg;
use crate::target::Target;

/// What arrives, how fast, for how long.
#[derive(clap::Args, Debug, Clone)]
pub struct Arrivals {
    /// Mean arrivals per second.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// How long jobs arrive.
    #[arg(long, default_value_t = 30.0)]
    pub seconds: f64,
    /// Every this many-th job is long (0: none).
    #[arg(long, default_value_t = 0)]
    pub long_every: u64,
    /// How long a long job sleeps.
    #[arg(long, default_value_t = 1000)]
    pub long_ms: u32,
    /// How long the other jobs sleep.
    #[arg(long, default_value_t = 0)]
    pub sleep_ms: u32,
    /// Padding in each job's parameters, in bytes.
    #[arg(long, default_value_t = 0)]
    pub pad_bytes: usize,
    /// Enqueues in flight at most (a producer that falls further behind shows it as lag).
    #[arg(long, default_value_t = 1024)]
    pub max_in_flight: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

impl Arrivals {
    /// The same arrivals as command-line flags, for a producer process.
    pub fn to_args(&self) -> Vec<String> {
        [
            ("--rate", self.rate.to_string()),
            ("--seconds", self.seconds.to_string()),
            ("--long-every", self.long_every.to_string()),
            ("--long-ms", self.long_ms.to_string()),
            ("--sleep-ms", self.sleep_ms.to_string()),
            ("--pad-bytes", self.pad_bytes.to_string()),
            ("--max-in-flight", self.max_in_flight.to_string()),
            ("--seed", self.seed.to_string()),
        ]
        .into_iter()
        .flat_map(|(k, v)| [k.to_string(), v])
        .collect()
    }

    fn shape(&self, seq: u64) -> Shape {
        let long = self.long_every > 0 && seq % self.long_every == self.long_every - 1;
        Shape {
            sleep_ms: if long {
                self.long_ms.max(LONG_JOB_MS)
            } else {
                self.sleep_ms
            },
            pad_bytes: self.pad_bytes,
        }
    }
}

#[derive(Default)]
struct Tally {
    lag_ns: Vec<u64>,
    call_ns: Vec<u64>,
    local: u64,
    errors: u64,
    first_error: Option<String>,
}

/// A producer this far behind its schedule stops: the system cannot take the offered load, and
/// the rest of the schedule would only lengthen the run.
const GIVE_UP_LAG_NS: u64 = 10_000_000_000;

/// Runs the arrivals on `jobs`; returns the producer's row fields: jobs sent, the rate
/// achieved, errors, how late arrivals were sent (`arrival_lag_*`: the timer, or a full
/// in-flight window), how long enqueue calls took, and how many went to a local worker.
pub async fn open_loop(jobs: &Jobs, a: &Arrivals) -> Value {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let permits = a.max_in_flight.max(1);
    let in_flight = Arc::new(Semaphore::new(permits));
    let mut rng = Lcg(a.seed);
    let mean_gap_ns = 1e9 / a.rate.max(1e-3);
    let start = now_ns();
    let end = start + (a.seconds * 1e9) as u64;
    let mut next = start;
    let mut seq = 0u64;
    let mut overloaded = false;
    while next < end {
        let now = now_ns();
        if next > now {
            tokio::time::sleep(Duration::from_nanos(next - now)).await;
            continue;
        }
        if now - next > GIVE_UP_LAG_NS {
            overloaded = true;
            break;
        }
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let sent = now_ns();
        let job = a.shape(seq).job(seq as i64, Some(sent));
        let (jobs, tally) = (jobs.clone(), tally.clone());
        let lag = sent - next;
        tokio::spawn(async move {
            let out = jobs.enqueue(job).await;
            let took = now_ns() - sent;
            let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
            t.lag_ns.push(lag);
            t.call_ns.push(took);
            match out {
                Ok(Some(req)) if req.id == 0 => t.local += 1,
                Ok(_) => {}
                Err(e) => {
                    t.errors += 1;
                    t.first_error.get_or_insert_with(|| e.to_string());
                }
            }
            drop(permit);
        });
        seq += 1;
        next += rng.exponential(mean_gap_ns) as u64;
    }
    let dispatch_s = ((now_ns() - start) as f64 / 1e9).max(a.seconds);
    let _all = in_flight.acquire_many(permits as u32).await;
    let took_s = (now_ns() - start) as f64 / 1e9;
    let t = tally.lock().unwrap_or_else(|e| e.into_inner());
    let mut row = json!({
        "offered_per_s": r1(a.rate),
        "arrival_s": a.seconds,
        "sent": seq,
        // Over the time it took to send them (longer than the schedule when it fell behind).
        "achieved_per_s": r1(seq as f64 / dispatch_s.max(1e-9)),
        "producer_s": r1(took_s),
        "overloaded": overloaded,
        "enqueue_errors": t.errors,
        "first_enqueue_error": t.first_error,
        "local_dispatched": t.local,
    });
    merge(&mut row, summary("arrival_lag", &t.lag_ns));
    merge(&mut row, summary("enqueue_call", &t.call_ns));
    row
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub arrivals: Arrivals,
    /// The producer's pool (enqueues in flight at once on the wire).
    #[arg(long, default_value_t = 16)]
    pub connections: u32,
}

/// `producer`: the open loop as a process apart from the workers.
pub async fn main(args: Args) -> anyhow::Result<()> {
    args.target.check()?;
    let jobs = args.target.connect(args.connections).await?;
    jobs.stats().await?;
    say("ready", json!({}));
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    loop {
        match stdin.next_line().await? {
            Some(line) if line.trim() == "go" => break,
            Some(_) => continue,
            None => return Ok(()),
        }
    }
    let mut row = open_loop(&jobs, &args.arrivals).await;
    row["cpu_s"] = json!(crate::cpu::this_process().as_secs_f64());
    say("done", row);
    Ok(())
}
