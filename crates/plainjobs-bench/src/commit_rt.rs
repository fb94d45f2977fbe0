//! One durable single-row commit's round trip, by pgbench with one client: an autocommit
//! `INSERT` of one row into a table with a primary key, over the same loopback TCP (no TLS) as
//! the library. Paced like the idle-latency phase (`--rate`, a Poisson schedule at the same
//! mean gap), so both see an idle system, and back to back for reference.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};

use crate::external::run;
use crate::hist::{merge, summary};
use crate::server::ServerProbe;
use crate::target::Target;

pub async fn measure(
    target: &Target,
    gap_ms: f64,
    seconds: u64,
    dir: &Path,
) -> anyhow::Result<Value> {
    let table = format!("{}.bench_commit_rt", target.schema);
    let mut p = ServerProbe::connect(&target.jobs_url()).await?;
    p.execute(&format!(
        "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id bigserial PRIMARY KEY, v int NOT NULL)"
    ))
    .await?;
    p.checkpoint().await?;
    let script = dir.join("insert-one-row.sql");
    std::fs::write(&script, format!("INSERT INTO {table} (v) VALUES (1);\n"))?;
    let prefix = dir.join("commit-rt");
    let rate = 1000.0 / gap_ms.max(0.1);
    let base = |extra: &[String]| {
        let mut a: Vec<String> = ["-n", "-M", "prepared", "-c", "1", "-j", "1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(["-f".into(), script.display().to_string()]);
        a.extend(extra.iter().cloned());
        a.push(target.libpq_url());
        a
    };
    let paced = base(&[
        "-R".into(),
        format!("{rate:.3}"),
        "-T".into(),
        seconds.to_string(),
        "-l".into(),
        format!("--log-prefix={}", prefix.display()),
    ]);
    let limit = Duration::from_secs(seconds + 60);
    run("pgbench", &paced, Some(dir), &[], limit).await?;
    let samples = read_log(dir, "commit-rt")?;
    let back_to_back = run(
        "pgbench",
        &base(&["-T".into(), seconds.min(5).to_string()]),
        None,
        &[],
        limit,
    )
    .await?;
    let avg = back_to_back
        .lines()
        .find_map(|l| l.strip_prefix("latency average = "))
        .and_then(|v| v.trim_end_matches(" ms").trim().parse::<f64>().ok());
    p.execute(&format!("DROP TABLE IF EXISTS {table}")).await?;
    let mut row = json!({ "paced_per_s": rate, "back_to_back_avg_ms": avg });
    merge(&mut row, summary("commit", &samples));
    Ok(row)
}

/// pgbench's per-transaction log: `client tx time script epoch us [lag]`, times in µs. With
/// `--rate`, `time` counts from the scheduled start; the lag is taken off, leaving the
/// transaction itself.
fn read_log(dir: &Path, prefix: &str) -> anyhow::Result<Vec<u64>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)
        .context("reading pgbench's log folder")?
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(&format!("{prefix}.")) {
            continue;
        }
        let text = std::fs::read_to_string(entry.path())?;
        for line in text.lines() {
            let f: Vec<u64> = line
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            if let (Some(time), lag) = (f.get(2), f.get(6).copied().unwrap_or(0)) {
                out.push(time.saturating_sub(lag) * 1000);
            }
        }
        let _ = std::fs::remove_file(entry.path());
    }
    Ok(out)
}
