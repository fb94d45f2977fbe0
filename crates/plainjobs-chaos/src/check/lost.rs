//! Why each LOST result happened: the worker it names was SIGKILLed, frozen or stopped by a
//! fault, or it was a live worker declared dead (its heartbeat went stale during a database
//! outage), or the result came from a different rescue path.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use uuid::Uuid;

use crate::facts::ResultRow;
use crate::faults::{FaultKind, FaultRecord};
use crate::runlog::{Phase, RunEvent};

#[derive(Debug, Default, Serialize)]
pub struct LostCounts {
    pub total: usize,
    /// LOST jobs whose run had started (the others had only been claimed).
    pub after_start: usize,
    pub by_cause: BTreeMap<String, usize>,
}

pub fn attribute(results: &[ResultRow], events: &[RunEvent], faults: &[FaultRecord]) -> LostCounts {
    let mut hit: HashMap<u32, Vec<(i64, FaultKind)>> = HashMap::new();
    for f in faults {
        if let Some(pid) = f.pid {
            hit.entry(pid).or_default().push((f.at_us, f.kind));
        }
    }
    let started: HashSet<Uuid> = events
        .iter()
        .filter(|e| e.phase == Phase::Start)
        .map(|e| e.process)
        .collect();
    let mut counts = LostCounts::default();
    for r in results.iter().filter(|r| r.status == "LOST") {
        counts.total += 1;
        if started.contains(&r.job_process_uuid) {
            counts.after_start += 1;
        }
        *counts
            .by_cause
            .entry(cause(&r.error, r.created_us, &hit))
            .or_default() += 1;
    }
    counts
}

/// The last fault that hit the worker the LOST result names before the result was written.
fn cause(error: &str, at_us: i64, hit: &HashMap<u32, Vec<(i64, FaultKind)>>) -> String {
    let Some(pid) = named_pid(error) else {
        return if error.contains("no heartbeat row") {
            "worker_without_heartbeat_row".into()
        } else {
            "own_orphan_or_other".into()
        };
    };
    let last = hit.get(&pid).and_then(|faults| {
        faults
            .iter()
            .filter(|(t, _)| *t <= at_us)
            .max_by_key(|(t, _)| *t)
    });
    match last {
        Some((_, kind)) => format!("worker_{}", kind.name()),
        None => "live_worker_declared_dead".into(),
    }
}

/// The pid in "Lost: worker … (host, pid 123) stopped heartbeating…".
fn named_pid(error: &str) -> Option<u32> {
    let rest = &error[error.find("pid ")? + 4..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_is_read_from_the_rescue_message() {
        let text =
            "Lost: worker 0193 (box, pid 4242) stopped heartbeating; its last heartbeat was at x";
        assert_eq!(named_pid(text), Some(4242));
        assert_eq!(named_pid("Lost: its worker has no heartbeat row"), None);
        let hit = HashMap::from([(
            4242,
            vec![(10, FaultKind::Sigstop), (20, FaultKind::Sigterm)],
        )]);
        assert_eq!(cause(text, 15, &hit), "worker_sigstop");
        assert_eq!(cause(text, 25, &hit), "worker_sigterm");
        assert_eq!(cause(text, 5, &hit), "live_worker_declared_dead");
    }
}
