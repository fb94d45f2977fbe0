//! `plainjobs-bench`: plainjobs measured through the library's public API only.
//!
//! With no subcommand it is the shared peer harness's "new project" (one JSON line; see
//! [`harness`]). The subcommands answer the questions of issue 17, each printing one JSON row
//! per line on stdout (progress on stderr); `table` turns rows into Markdown:
//!
//! ```text
//! plainjobs-bench limits        # drains vs SQL ceiling and peers, idle latency vs one commit,
//!                               # bulk enqueue vs COPY, CPU per job
//! plainjobs-bench many-workers  # K = 1, 2, 4, 8, 16 worker processes drain 100,000 jobs
//! plainjobs-bench load          # open-loop arrivals at 25/50/75 % of the max drain rate
//! plainjobs-bench shapes        # 1 kB parameters, 10 ms jobs at C=100, 1 % of 1 s jobs
//! plainjobs-bench drain         # one in-process drain
//! plainjobs-bench table FILE…   # Markdown tables from the rows
//! ```
//!
//! `worker` and `producer` are the bodies of the processes the orchestrating subcommands
//! start. `scripts/bench` runs all this on a production-like cluster it starts, beside the CI
//! cluster and SQLite.

mod backlog;
mod ceiling;
mod children;
mod clock;
mod commit_rt;
mod copy;
mod cpu;
mod dashboard;
mod drain;
mod external;
mod harness;
mod hist;
mod job;
mod latency;
mod limits;
mod load;
mod many;
mod meter;
mod open_loop;
mod out;
mod peers;
mod producer;
mod rng;
mod runs;
mod server;
mod shapes;
mod table;
mod target;
mod telemetry;
mod waits;
mod worker_cmd;
mod worker_setup;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "plainjobs-bench",
    about = "plainjobs' benchmarks: JSON rows on stdout, progress on stderr",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a subcommand: the peer harness's mode.
    #[command(flatten)]
    harness: harness::Args,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// One backlog drained by an in-process worker, with the server's counts around it.
    Drain(drain::Args),
    /// K worker processes drain one backlog: throughput, short/empty claims, lock waits, runs.
    ManyWorkers(many::Args),
    /// Open-loop arrivals at fractions of the max drain rate: enqueue-to-start percentiles.
    Load(load::Args),
    /// Work shapes: large parameters, sleeping jobs at C=100, a mix with 1 % of 1 s jobs.
    Shapes(shapes::Args),
    /// Each figure beside its limit, measured in the same run.
    Limits(limits::Args),
    /// Markdown tables from JSON rows.
    Table(table::Args),
    /// The dashboard's list queries on a result table of N rows (first and deep pages).
    DashboardPages(dashboard::PagesArgs),
    /// Drains with and without an open dashboard, alternating.
    DashboardDrain(dashboard::DrainArgs),
    /// (internal) the body of a worker process.
    Worker(worker_cmd::Args),
    /// (internal) the body of a producer process.
    Producer(producer::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None => harness::main(cli.harness).await,
        Some(Command::Drain(a)) => drain::main(a).await,
        Some(Command::ManyWorkers(a)) => many::main(a).await,
        Some(Command::Load(a)) => load::main(a).await,
        Some(Command::Shapes(a)) => shapes::main(a).await,
        Some(Command::Limits(a)) => limits::main(a).await,
        Some(Command::Table(a)) => table::main(a),
        Some(Command::DashboardPages(a)) => dashboard::pages(a).await,
        Some(Command::DashboardDrain(a)) => dashboard::drain_cost(a).await,
        Some(Command::Worker(a)) => worker_cmd::main(a).await,
        Some(Command::Producer(a)) => producer::main(a).await,
    }
}
