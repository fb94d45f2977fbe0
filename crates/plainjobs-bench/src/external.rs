//! Other programs run in the same run, on the same database: the shared SQL ceiling script,
//! pgbench, the peers, the SQLite ceiling script. Each with a time limit, killed if it
//! overruns or if the benchmark stops.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde_json::Value;
use tokio::process::Command;

/// Runs `cmd` (in `dir`) with `env`, up to `limit`; returns its stdout.
pub async fn run(
    cmd: &str,
    args: &[String],
    dir: Option<&Path>,
    env: &[(&str, String)],
    limit: Duration,
) -> anyhow::Result<String> {
    let mut c = Command::new(cmd);
    c.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(d) = dir {
        c.current_dir(d);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let out = tokio::time::timeout(limit, c.output())
        .await
        .map_err(|_| anyhow!("{cmd} did not finish within {limit:?}"))?
        .with_context(|| format!("running {cmd}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(3).collect();
        bail!("{cmd} failed ({}): {}", out.status, tail.join(" / "));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The last line of `stdout` that is a JSON object.
pub fn last_json(stdout: &str) -> anyhow::Result<Value> {
    stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| anyhow!("no JSON line in the output"))
        .and_then(|l| serde_json::from_str(l).context("parsing the JSON line"))
}
