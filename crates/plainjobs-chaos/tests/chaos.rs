//! The short chaos run, part of every `cargo test --workspace` (and so of scripts/test and CI):
//! ~1,900 jobs on 4 worker processes while every kind of fault is injected at least once.
//! CHAOS_SEED=<n> replays a seed; the seed is printed first either way.

use std::path::PathBuf;
use std::time::Duration;

use plainjobs_chaos::faults::FaultKind;
use plainjobs_chaos::{run, Config};

fn seed() -> u64 {
    match std::env::var("CHAOS_SEED") {
        Ok(s) => s.parse().expect("CHAOS_SEED is a whole number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_chaos_run_keeps_every_guarantee() {
    let seed = seed();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("chaos")
        .join(format!("{seed}-{}", std::process::id()));
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_plainjobs-chaos"));
    let cfg = Config::short(seed, dir, exe);
    let report = tokio::time::timeout(Duration::from_secs(600), run(&cfg))
        .await
        .unwrap_or_else(|_| panic!("seed {seed}: the chaos run did not finish within 600 s"))
        .unwrap_or_else(|e| panic!("seed {seed}: the chaos run failed: {e:#}"));
    let summary = serde_json::to_string_pretty(&report).expect("summary as JSON");
    println!("{summary}");
    assert!(
        report.violations.is_empty(),
        "seed {seed}: guarantees broken:\n{}\n(summary above; replay with CHAOS_SEED={seed})",
        report.violations.join("\n")
    );
    for kind in FaultKind::ALL {
        assert!(
            report.faults.get(kind.name()).is_some_and(|f| f.count > 0),
            "seed {seed}: no {} fault was injected",
            kind.name()
        );
    }
    let chains = &report.findings.chains;
    assert!(
        chains.enqueued >= 1_500,
        "seed {seed}: only {} jobs enqueued",
        chains.enqueued
    );
    assert!(
        chains.refused_by_key > 0,
        "seed {seed}: racing enqueues never found a key taken"
    );
    assert!(
        report.findings.lost.total > 0,
        "seed {seed}: no fault caught a job (the faults missed the work)"
    );
}
