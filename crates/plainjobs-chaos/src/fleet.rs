//! The worker processes of a run: started as `plainjobs-chaos worker`, signalled by the faults,
//! restarted in their slot, stopped at the end. Every child is killed on drop.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::process::{Child, Command};

/// How to start a worker process.
#[derive(Debug, Clone)]
pub struct FleetSpec {
    /// The plainjobs-chaos binary.
    pub exe: PathBuf,
    /// Run logs and stderr files go here.
    pub dir: PathBuf,
    /// The database URL without a query string (each process adds its application_name).
    pub url: String,
    pub concurrency: usize,
    pub listen: bool,
    /// A command the worker runs under (`ip netns exec NAME`), if any.
    pub prefix: Vec<String>,
}

/// One worker process; `slot` is its place in the fleet, `generation` counts restarts.
pub struct WorkerProc {
    pub slot: usize,
    pub generation: u32,
    /// Its application_name, so faults can find its database sessions.
    pub name: String,
    pub pid: u32,
    pub stopped: bool,
    child: Child,
}

/// A worker that exited without being told to.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UnexpectedExit {
    pub name: String,
    pub status: String,
}

pub struct Fleet {
    spec: FleetSpec,
    pub procs: Vec<WorkerProc>,
    /// Every pid ever started, to check at the end that none is left running.
    pub all_pids: Vec<u32>,
    pub unexpected_exits: Vec<UnexpectedExit>,
}

impl Fleet {
    pub fn start(spec: FleetSpec, workers: usize) -> anyhow::Result<Fleet> {
        let mut fleet = Fleet {
            spec,
            procs: Vec::new(),
            all_pids: Vec::new(),
            unexpected_exits: Vec::new(),
        };
        for slot in 0..workers {
            let p = fleet.spawn(slot, 0)?;
            fleet.procs.push(p);
        }
        Ok(fleet)
    }

    fn spawn(&mut self, slot: usize, generation: u32) -> anyhow::Result<WorkerProc> {
        let name = format!("chaos-w{slot}g{generation}");
        let stderr = std::fs::File::create(self.spec.dir.join(format!("{name}.stderr")))?;
        let (program, pre_args) = match self.spec.prefix.split_first() {
            Some((p, rest)) => (PathBuf::from(p), rest.to_vec()),
            None => (self.spec.exe.clone(), Vec::new()),
        };
        let mut cmd = Command::new(program);
        cmd.args(pre_args);
        if !self.spec.prefix.is_empty() {
            cmd.arg(&self.spec.exe);
        }
        cmd.arg("worker")
            .arg("--url")
            .arg(format!("{}?application_name={name}", self.spec.url))
            .arg("--log")
            .arg(self.spec.dir.join(format!("{name}.runs")))
            .arg("--concurrency")
            .arg(self.spec.concurrency.to_string())
            .arg("--listen")
            .arg(self.spec.listen.to_string())
            .env("RUST_LOG", "plainjobs=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // A file, not a pipe: a pipe nobody drains would block the worker's logging.
            .stderr(stderr)
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .with_context(|| format!("start worker {name}"))?;
        let pid = child.id().context("worker pid")?;
        self.all_pids.push(pid);
        Ok(WorkerProc {
            slot,
            generation,
            name,
            pid,
            stopped: false,
            child,
        })
    }

    pub fn signal(&mut self, slot: usize, sig: i32) -> anyhow::Result<()> {
        let p = &mut self.procs[slot];
        send_signal(p.pid, sig)?;
        match sig {
            libc::SIGSTOP => p.stopped = true,
            libc::SIGCONT => p.stopped = false,
            _ => {}
        }
        Ok(())
    }

    /// SIGKILL, reap, and start a new generation in the slot.
    pub async fn kill_and_restart(&mut self, slot: usize) -> anyhow::Result<()> {
        self.signal(slot, libc::SIGKILL)?;
        wait_bounded(&mut self.procs[slot].child, Duration::from_secs(10)).await?;
        self.restart(slot)
    }

    /// SIGTERM (a graceful stop: running jobs get the shutdown timeout, then are cancelled);
    /// waits for the exit, SIGKILLs after `bound`. Returns how long the stop took.
    pub async fn terminate(&mut self, slot: usize, bound: Duration) -> anyhow::Result<Duration> {
        let started = Instant::now();
        self.signal(slot, libc::SIGCONT)?;
        self.signal(slot, libc::SIGTERM)?;
        let p = &mut self.procs[slot];
        if wait_bounded(&mut p.child, bound).await.is_err() {
            send_signal(p.pid, libc::SIGKILL)?;
            wait_bounded(&mut p.child, Duration::from_secs(10)).await?;
            anyhow::bail!("worker {} ignored SIGTERM for {bound:?}", p.name);
        }
        Ok(started.elapsed())
    }

    pub fn restart(&mut self, slot: usize) -> anyhow::Result<()> {
        let generation = self.procs[slot].generation + 1;
        self.procs[slot] = self.spawn(slot, generation)?;
        Ok(())
    }

    /// Restarts workers that exited on their own (recording them: none is expected).
    pub fn restart_exited(&mut self) -> anyhow::Result<()> {
        for slot in 0..self.procs.len() {
            if let Some(status) = self.procs[slot].child.try_wait()? {
                self.unexpected_exits.push(UnexpectedExit {
                    name: self.procs[slot].name.clone(),
                    status: status.to_string(),
                });
                self.restart(slot)?;
            }
        }
        Ok(())
    }

    /// Wakes every stopped worker, SIGTERMs all, waits up to `bound`, SIGKILLs what is left.
    /// Returns the workers that had to be killed.
    pub async fn shutdown(&mut self, bound: Duration) -> anyhow::Result<Vec<String>> {
        for p in &mut self.procs {
            let _ = send_signal(p.pid, libc::SIGCONT);
            let _ = send_signal(p.pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + bound;
        let mut killed = Vec::new();
        for p in &mut self.procs {
            let left = deadline.saturating_duration_since(Instant::now());
            if wait_bounded(&mut p.child, left).await.is_err() {
                let _ = send_signal(p.pid, libc::SIGKILL);
                wait_bounded(&mut p.child, Duration::from_secs(10)).await?;
                killed.push(p.name.clone());
            }
        }
        Ok(killed)
    }
}

async fn wait_bounded(child: &mut Child, bound: Duration) -> anyhow::Result<ExitStatus> {
    tokio::time::timeout(bound, child.wait())
        .await
        .context("the worker did not exit in time")?
        .context("wait for the worker")
}

pub fn send_signal(pid: u32, sig: i32) -> anyhow::Result<()> {
    let pid = libc::pid_t::try_from(pid).context("pid out of range")?;
    // SAFETY: kill(2) takes plain integers; the pid is a child of ours (or an exited one's
    // number, which is reaped only through our own wait, so not reused meanwhile).
    let rc = unsafe { libc::kill(pid, sig) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context(format!("kill({pid}, {sig})"));
    }
    Ok(())
}

/// Whether a process with this pid still exists (a zombie counts: it was never reaped).
pub fn pid_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}
