//! `plainjobs-chaos run [--long] [--seed N]`: one chaos run, its summary as JSON on stdout, exit
//! code 1 if a guarantee was broken. `plainjobs-chaos worker …`: one worker process of a run
//! (started by the run itself).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use plainjobs_chaos::worker::{self, WorkerArgs};
use plainjobs_chaos::Config;

#[derive(Parser)]
#[command(about = "plainjobs under faults: worker processes, a throwaway cluster, checks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One chaos run.
    Run(RunArgs),
    /// A worker process of a run (started by `run`).
    Worker(WorkerArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// The long form (~14,000 jobs over six minutes) instead of the short one.
    #[arg(long)]
    long: bool,
    /// The seed (default: from the clock; printed either way).
    #[arg(long, env = "CHAOS_SEED")]
    seed: Option<u64>,
    /// Override the number of jobs without a key.
    #[arg(long)]
    jobs: Option<usize>,
    /// Override the load period, in seconds.
    #[arg(long)]
    load_secs: Option<u64>,
    /// The run's directory (default: target/chaos/<seed>).
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Worker(args) => {
            tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_writer(std::io::stderr)
                .with_ansi(false) // the orchestrator points stderr at a file
                .init();
            runtime.block_on(worker::run(args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => runtime.block_on(run(args)),
    }
}

async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let seed = args.seed.unwrap_or_else(clock_seed);
    let dir = args
        .dir
        .unwrap_or_else(|| PathBuf::from("target/chaos").join(seed.to_string()));
    let exe = std::env::current_exe()?;
    let mut cfg = if args.long {
        Config::long(seed, dir, exe)
    } else {
        Config::short(seed, dir, exe)
    };
    if let Some(jobs) = args.jobs {
        cfg.size.jobs = jobs;
    }
    if let Some(secs) = args.load_secs {
        cfg.load = std::time::Duration::from_secs(secs);
    }
    // On Ctrl-C or SIGTERM the run is dropped, which kills its workers and stops its cluster.
    let report = tokio::select! {
        report = plainjobs_chaos::run(&cfg) => report?,
        () = interrupted() => {
            eprintln!("plainjobs-chaos: interrupted; workers killed, cluster stopped (seed {seed})");
            return Ok(ExitCode::from(130));
        }
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    if report.violations.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "plainjobs-chaos: {} violations with seed {seed}",
            report.violations.len()
        );
        Ok(ExitCode::FAILURE)
    }
}

async fn interrupted() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

pub fn clock_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    (nanos % u128::from(u64::MAX)) as u64
}
