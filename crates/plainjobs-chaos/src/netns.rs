//! Test hosts: a network namespace joined to this one by a veth pair, with addresses from
//! 198.18.0.0/15 (RFC 2544's range for network tests: never routed beyond the test). The link
//! can be cut and healed from this side; the namespace (and so the pair) is removed on drop.

use std::process::Command;

use anyhow::{bail, Context};

pub struct Host {
    /// The namespace's name (for `ip netns exec`).
    pub netns: String,
    /// This side's end of the pair: cutting it cuts the host off.
    pub link: String,
    /// This side's address: where the host reaches the database.
    pub gateway: String,
    /// The host's own address.
    pub address: String,
    /// The /30 both addresses are in.
    pub network: String,
}

impl Host {
    /// Host number `index` of the test run `run` (a small number unique among concurrent runs,
    /// so that names and subnets do not collide).
    pub fn create(run: u32, index: u32) -> anyhow::Result<Host> {
        let subnet = (run % 64) * 4 + index; // 198.18.<subnet>.0/30; index < 4
        let host = Host {
            netns: format!("pjhost{run}x{index}"),
            link: format!("pjv{run}x{index}"),
            gateway: format!("198.18.{subnet}.1"),
            address: format!("198.18.{subnet}.2"),
            network: format!("198.18.{subnet}.0/30"),
        };
        host.set_up().inspect_err(|_| host.remove())?;
        Ok(host)
    }

    fn set_up(&self) -> anyhow::Result<()> {
        let inner = format!("{}i", self.link);
        ip(&["netns", "add", &self.netns])?;
        ip(&[
            "link", "add", &self.link, "type", "veth", "peer", "name", &inner,
        ])?;
        ip(&["link", "set", &inner, "netns", &self.netns])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/30", self.gateway),
            "dev",
            &self.link,
        ])?;
        ip(&["link", "set", &self.link, "up"])?;
        let ns = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &self.netns, "ip"];
            all.extend_from_slice(args);
            ip(&all)
        };
        ns(&[
            "addr",
            "add",
            &format!("{}/30", self.address),
            "dev",
            &inner,
        ])?;
        ns(&["link", "set", &inner, "up"])?;
        ns(&["link", "set", "lo", "up"])
    }

    /// `ip netns exec <ns>`: the prefix that runs a command on this host.
    pub fn prefix(&self) -> Vec<String> {
        vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            self.netns.clone(),
        ]
    }

    pub fn cut(&self) -> anyhow::Result<()> {
        ip(&["link", "set", &self.link, "down"])
    }

    pub fn heal(&self) -> anyhow::Result<()> {
        ip(&["link", "set", &self.link, "up"])
    }

    fn remove(&self) {
        // Deleting the namespace deletes the pair's inner end and with it the outer one.
        let _ = ip(&["netns", "del", &self.netns]);
        let _ = ip(&["link", "del", &self.link]);
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.remove();
    }
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("run ip (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Whether this process may create namespaces (root with iproute2), and if not, why.
pub fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("network namespaces need root".into());
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "ip netns list failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Some(format!("ip (iproute2) cannot run: {e}")),
    }
}
