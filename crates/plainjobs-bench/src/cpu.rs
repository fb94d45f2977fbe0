//! CPU time from /proc: of a process (user + system), and of a whole PostgreSQL cluster.
//!
//! A cluster's CPU is its postmaster's own time, plus the time of its children that have ended
//! (the postmaster reaps them at once, so the kernel has added them to its `cutime`/`cstime`),
//! plus the time of its children alive now. The difference of two such readings counts every
//! backend and auxiliary process that ran between them, even those that came and went.

use std::time::Duration;

/// CPU times of one process, in clock ticks.
#[derive(Clone, Copy, Debug, Default)]
struct ProcTimes {
    ppid: i32,
    own: u64,
    reaped_children: u64,
}

/// Fields of /proc/PID/stat after the command name, which is in parentheses and may hold
/// spaces: state is the first, ppid the second, utime the 12th.
fn parse_stat(text: &str) -> Option<ProcTimes> {
    let after = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok());
    Some(ProcTimes {
        ppid: f.get(1)?.parse().ok()?,
        own: num(11)? + num(12)?,
        reaped_children: num(13)? + num(14)?,
    })
}

fn read(pid: i32) -> Option<ProcTimes> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn ticks_per_second() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .filter(|t| *t > 0)
        .unwrap_or(100)
}

fn duration(ticks: u64) -> Duration {
    Duration::from_secs_f64(ticks as f64 / ticks_per_second() as f64)
}

/// User + system time of one live process (None once it has gone).
pub fn process(pid: u32) -> Option<Duration> {
    read(i32::try_from(pid).ok()?).map(|t| duration(t.own))
}

/// User + system time of this process.
pub fn this_process() -> Duration {
    process(std::process::id()).unwrap_or_default()
}

/// The parent of a process (a backend's parent is its postmaster).
pub fn parent(pid: i32) -> Option<i32> {
    read(pid).map(|t| t.ppid)
}

/// Everything a cluster has used so far, leaving out the live processes in `exclude` (the
/// benchmark's own probe backends).
pub fn cluster(postmaster: i32, exclude: &[i32]) -> Option<Duration> {
    let root = read(postmaster)?;
    let mut ticks = root.own + root.reaped_children;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if exclude.contains(&pid) {
            continue;
        }
        if let Some(t) = read(pid).filter(|t| t.ppid == postmaster) {
            ticks += t.own;
        }
    }
    Some(duration(ticks))
}

/// Time one live process has spent on a CPU, in nanoseconds (the scheduler's own count, finer
/// than the clock ticks of /proc/PID/stat: for processes that run milliseconds at a time).
pub fn process_precise(pid: u32) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    let ns = text.split_whitespace().next()?.parse::<u64>().ok()?;
    Some(Duration::from_nanos(ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_with_spaces_in_the_name() {
        let line = "4242 (postgres: bench (x)) S 100 4242 4242 0 -1 4194560 10 0 0 0 7 3 5 6 20 0 1 0 1 1 1";
        let t = parse_stat(line).expect("parses");
        assert_eq!((t.ppid, t.own, t.reaped_children), (100, 10, 11));
    }

    #[test]
    fn this_process_has_a_parent() {
        let me = i32::try_from(std::process::id()).expect("pid fits");
        assert!(parent(me).is_some());
    }
}
