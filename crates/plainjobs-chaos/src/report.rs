//! The summary a run prints: its seed and size, the faults by kind with their recovery times,
//! what the checks found.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::check::Findings;
use crate::faults::FaultRecord;
use crate::fleet::UnexpectedExit;
use crate::sampler::KeySamples;

#[derive(Debug, Serialize)]
pub struct Report {
    pub seed: u64,
    pub config: serde_json::Value,
    pub duration_s: f64,
    /// From the end of the load until nothing was left to do.
    pub quiesced_after_s: Option<f64>,
    pub faults: BTreeMap<&'static str, FaultSummary>,
    pub findings: Findings,
    pub key_samples: KeySamples,
    pub unexpected_worker_exits: Vec<UnexpectedExit>,
    pub workers_killed_at_shutdown: Vec<String>,
    pub violations: Vec<String>,
    pub fault_log: Vec<FaultRecord>,
}

#[derive(Debug, Default, Serialize)]
pub struct FaultSummary {
    pub count: usize,
    /// Recovery times in ms (see `FaultRecord::recovery_ms` for what each kind waits for).
    pub recovery_ms_min: Option<u64>,
    pub recovery_ms_median: Option<u64>,
    pub recovery_ms_max: Option<u64>,
    /// Faults not recovered from within the bound.
    pub unrecovered: usize,
    /// SIGSTOP: SIGCONT until registered again, slowest.
    pub reregistered_ms_max: Option<u64>,
}

pub fn summarize_faults(log: &[FaultRecord]) -> BTreeMap<&'static str, FaultSummary> {
    let mut by_kind: BTreeMap<&'static str, Vec<&FaultRecord>> = BTreeMap::new();
    for f in log {
        by_kind.entry(f.kind.name()).or_default().push(f);
    }
    by_kind
        .into_iter()
        .map(|(kind, faults)| {
            let mut times: Vec<u64> = faults.iter().filter_map(|f| f.recovery_ms).collect();
            times.sort_unstable();
            let summary = FaultSummary {
                count: faults.len(),
                recovery_ms_min: times.first().copied(),
                recovery_ms_median: times.get(times.len() / 2).copied(),
                recovery_ms_max: times.last().copied(),
                unrecovered: faults.len() - times.len(),
                reregistered_ms_max: faults.iter().filter_map(|f| f.reregistered_ms).max(),
            };
            (kind, summary)
        })
        .collect()
}
