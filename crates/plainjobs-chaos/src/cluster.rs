//! A throwaway PostgreSQL cluster that the suite starts itself (initdb on a spare port in a
//! directory of its own), so that it may be restarted and crashed. Stopped on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

pub struct Cluster {
    bindir: PathBuf,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    /// Address clients use (the first listen address).
    host: String,
    running: bool,
}

/// Where a cluster listens and whom it lets in (trust: it is a test cluster on test addresses).
pub struct ClusterOptions {
    /// `listen_addresses`: 127.0.0.1 plus, for the network-namespace test, host-side veth ends.
    pub listen: Vec<String>,
    /// Extra `pg_hba.conf` networks (CIDR) allowed with trust.
    pub allow: Vec<String>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            listen: vec!["127.0.0.1".into()],
            allow: Vec::new(),
        }
    }
}

impl Cluster {
    /// initdb in `dir/data` and start the server on a spare port.
    pub fn start(dir: &Path, options: &ClusterOptions) -> anyhow::Result<Cluster> {
        let bindir = postgres_bindir()?;
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let mut cluster = Cluster {
            bindir,
            data: dir.join("data"),
            log: dir.join("postgres.log"),
            port: spare_port()?,
            host: options.listen[0].clone(),
            running: false,
        };
        std::fs::write(dir.join(OWNER_FILE), std::process::id().to_string())?;
        give_to_postgres(dir)?;
        cluster.pg_tool(
            "initdb",
            &[
                "-D",
                path_str(&cluster.data)?,
                "-U",
                "postgres",
                "-A",
                "trust",
            ],
        )?;
        cluster.configure(options)?;
        cluster.pg_ctl(&["start", "-w", "-t", "60"])?;
        cluster.running = true;
        Ok(cluster)
    }

    fn configure(&self, options: &ClusterOptions) -> anyhow::Result<()> {
        let conf = format!(
            "\n# plainjobs-chaos (TCP only: a socket path under target/ could pass the 107-byte limit)\nport = {}\nlisten_addresses = '{}'\nunix_socket_directories = ''\nmax_connections = 300\n",
            self.port,
            options.listen.join(","),
        );
        append(&self.data.join("postgresql.conf"), &conf)?;
        let hba: String = options
            .allow
            .iter()
            .map(|cidr| format!("host all all {cidr} trust\n"))
            .collect();
        append(&self.data.join("pg_hba.conf"), &hba)
    }

    /// `postgres://postgres@host:port/db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@{}:{}/{db}", self.host, self.port)
    }

    /// Creates database `name` and returns its URL.
    pub async fn create_database(&self, name: &str) -> anyhow::Result<String> {
        let admin = sqlx::PgPool::connect(&self.url("postgres")).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await?;
        admin.close().await;
        Ok(self.url(name))
    }

    pub fn url_on(&self, host: &str, db: &str) -> String {
        format!("postgres://postgres@{host}:{}/{db}", self.port)
    }

    /// `pg_ctl restart -m fast` (a clean restart) or `-m immediate` (a crash: no checkpoint,
    /// every backend killed, WAL replayed on start).
    pub fn restart(&self, immediate: bool) -> anyhow::Result<()> {
        let mode = if immediate { "immediate" } else { "fast" };
        self.pg_ctl(&["restart", "-m", mode, "-w", "-t", "60"])
    }

    /// The postmaster's pid while it runs.
    pub fn postmaster_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// Stops the server and waits (10 s at most) for the postmaster to be gone: pg_ctl returns
    /// when the pid file is removed, a moment before the process exits.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if !self.running {
            return Ok(());
        }
        self.running = false;
        let pid = self.postmaster_pid();
        self.pg_ctl(&["stop", "-m", "immediate", "-w", "-t", "60"])?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while pid.is_some_and(|p| crate::fleet::pid_exists(p.unsigned_abs()))
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok(())
    }

    fn pg_ctl(&self, args: &[&str]) -> anyhow::Result<()> {
        let mut all = vec!["-D", path_str(&self.data)?, "-l", path_str(&self.log)?];
        all.extend_from_slice(args);
        self.pg_tool("pg_ctl", &all)
    }

    /// Runs a server tool, as the postgres user when we are root (the server refuses root).
    fn pg_tool(&self, tool: &str, args: &[&str]) -> anyhow::Result<()> {
        let exe = self.bindir.join(tool);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("run {}", exe.display()))?;
        if !out.status.success() {
            bail!(
                "{tool} {args:?} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!(
                "plainjobs-chaos: could not stop the cluster in {}: {e:#}",
                self.data.display()
            );
        }
    }
}

/// Which process started a cluster: its pid, in the cluster's directory.
const OWNER_FILE: &str = "owner.pid";

/// Stops the clusters under `root/*/pg` whose owner process is gone: an orchestrator that was
/// SIGKILLed ran no drop, and its server would run on. Clusters of live runs are left alone.
pub fn stop_orphaned(root: &Path) {
    let Ok(runs) = std::fs::read_dir(root) else {
        return;
    };
    for run in runs.filter_map(Result::ok) {
        let dir = run.path().join("pg");
        let owner = std::fs::read_to_string(dir.join(OWNER_FILE))
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok());
        let running = dir.join("data").join("postmaster.pid").exists();
        if running && owner.is_some_and(|pid| !crate::fleet::pid_exists(pid)) {
            let Ok(bindir) = postgres_bindir() else {
                return;
            };
            let orphan = Cluster {
                bindir,
                data: dir.join("data"),
                log: dir.join("postgres.log"),
                port: 0,
                host: String::new(),
                running: true,
            };
            drop(orphan); // Drop stops it
        }
    }
}

/// The newest installed server's binaries (Debian's layout; scripts/test installs them).
fn postgres_bindir() -> anyhow::Result<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context(
            "no PostgreSQL server installed in /usr/lib/postgresql (scripts/test installs it)",
        )?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop()
        .map(|(_, bin)| bin)
        .context("no initdb under /usr/lib/postgresql/*/bin (scripts/test installs it)")
}

/// A port nothing listens on now (the kernel's pick for an ephemeral bind).
pub fn spare_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("find a spare port")?;
    Ok(listener.local_addr()?.port())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn give_to_postgres(dir: &Path) -> anyhow::Result<()> {
    if !is_root() {
        return Ok(());
    }
    let status = Command::new("chown")
        .args(["-R", "postgres"])
        .arg(dir)
        .status()
        .context("chown")?;
    if !status.success() {
        bail!("chown -R postgres {} failed", dir.display());
    }
    Ok(())
}

fn append(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("write {}", path.display()))
}

fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str()
        .with_context(|| format!("{} is not UTF-8", p.display()))
}
