//! Worker and producer processes: this same binary run with a subcommand, started and stopped
//! by the orchestrator. They talk in JSON lines on stdout (`ready`, `progress`, `done`) and
//! listen on stdin (`go`; end of input means stop). They are killed if the orchestrator drops
//! them, and stop by themselves if it dies (their stdin closes).

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::target::Target;

pub struct Process {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    events: mpsc::UnboundedReceiver<Value>,
    pub pid: u32,
    /// The last `progress` event's run count.
    pub runs: u64,
    done: Option<Value>,
}

impl Process {
    /// Starts `plainjobs-bench <args…>` against `target`.
    pub fn spawn(name: &str, target: &Target, args: &[String]) -> anyhow::Result<Process> {
        let exe = std::env::current_exe().context("finding this binary")?;
        let mut child = Command::new(exe)
            .args(args)
            .arg("--schema")
            .arg(&target.schema)
            .env("DATABASE_URL", &target.database_url)
            .env("BENCH_CLUSTER", target.label())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let pid = child.id().ok_or_else(|| anyhow!("{name} has no pid"))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let (tx, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Process {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child,
            events,
            pid,
            runs: 0,
            done: None,
        })
    }

    fn take(&mut self, v: Value) -> Option<String> {
        let event = v["event"].as_str().unwrap_or_default().to_string();
        match event.as_str() {
            "progress" => self.runs = v["runs"].as_u64().unwrap_or(self.runs),
            "done" => self.done = Some(v),
            _ => {}
        }
        Some(event)
    }

    /// Waits for `ready`.
    pub async fn ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Some(v)) => {
                    if self.take(v).as_deref() == Some("ready") {
                        return Ok(());
                    }
                }
                Ok(None) => bail!("{} ended before it was ready", self.name),
                Err(_) => bail!("{} not ready after {timeout:?}", self.name),
            }
        }
    }

    pub async fn go(&mut self) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().ok_or_else(|| anyhow!("stdin closed"))?;
        stdin.write_all(b"go\n").await?;
        stdin.flush().await?;
        Ok(())
    }

    /// Reads the events that came in; true once `done` has.
    pub fn poll(&mut self) -> bool {
        while let Ok(v) = self.events.try_recv() {
            self.take(v);
        }
        self.done.is_some()
    }

    /// Closes stdin (stop), waits for `done` and the exit; returns the `done` event.
    pub async fn finish(mut self, timeout: Duration) -> anyhow::Result<Value> {
        drop(self.stdin.take());
        let deadline = Instant::now() + timeout;
        while self.done.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Some(v)) => {
                    self.take(v);
                }
                Ok(None) => break,
                Err(_) => bail!("{} did not stop within {timeout:?}", self.name),
            }
        }
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .map_err(|_| anyhow!("{} did not exit", self.name))??;
        match self.done.take() {
            Some(done) if status.success() => Ok(done),
            _ => bail!("{} ended with {status} and no report", self.name),
        }
    }
}

/// Starts `go` on all, then waits until the sum of their `progress` runs reaches `n`; false
/// on `timeout` or if one of them ended.
pub async fn wait_runs(procs: &mut [Process], n: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let mut ended = false;
        for p in procs.iter_mut() {
            ended |= p.poll();
        }
        if procs.iter().map(|p| p.runs).sum::<u64>() >= n {
            return true;
        }
        if ended || Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// This process's end of the protocol: print an event.
pub fn say(event: &str, mut fields: Value) {
    fields["event"] = Value::from(event);
    println!("{fields}");
}
