//! The invariants, checked once the run is over against the tables, the run logs and what the
//! enqueues returned. A broken invariant is a line in `violations`; the counts describe the run.

mod chains;
mod keys;
mod lost;
mod runs;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::facts::{Facts, ResultRow};
use crate::faults::FaultRecord;
use crate::load::EnqueueLog;
use crate::runlog::RunEvent;

pub use chains::ChainCounts;
pub use lost::LostCounts;
pub use runs::RunCounts;

#[derive(Debug, Default, Serialize)]
pub struct Findings {
    pub chains: ChainCounts,
    /// Results by status.
    pub results: BTreeMap<String, usize>,
    pub runs: RunCounts,
    pub lost: LostCounts,
    /// Runs of different chains with the same key that overlapped (only runs whose result
    /// stands count: a run whose job was declared LOST may go on after the declaration).
    pub key_overlaps: usize,
    pub violations: Vec<String>,
}

/// What the checks read.
pub struct Evidence<'a> {
    pub facts: &'a Facts,
    pub events: &'a [RunEvent],
    pub enqueued: &'a EnqueueLog,
    pub faults: &'a [FaultRecord],
}

pub fn check(e: &Evidence<'_>) -> Findings {
    let mut f = Findings::default();
    table_invariants(e.facts, &mut f.violations);
    for r in &e.facts.results {
        *f.results.entry(r.status.clone()).or_default() += 1;
    }
    let by_chain = group_by_chain(&e.facts.results, &mut f.violations);
    f.chains = chains::check(&by_chain, e.enqueued, &mut f.violations);
    f.runs = runs::check(&by_chain, e.events, &mut f.violations);
    f.lost = lost::attribute(&e.facts.results, e.events, e.faults);
    f.key_overlaps = keys::check(&e.facts.results, e.events, &mut f.violations);
    f
}

fn table_invariants(facts: &Facts, v: &mut Vec<String>) {
    if facts.leftover_requests != 0 {
        v.push(format!("{} requests left behind", facts.leftover_requests));
    }
    if facts.leftover_processes != 0 {
        v.push(format!(
            "{} processes left behind",
            facts.leftover_processes
        ));
    }
    if facts.processes_with_two_results != 0 {
        v.push(format!(
            "{} processes have more than one result",
            facts.processes_with_two_results
        ));
    }
    if facts.requests_with_two_results != 0 {
        v.push(format!(
            "{} requests have more than one result",
            facts.requests_with_two_results
        ));
    }
    if facts.heartbeats != 0 {
        v.push(format!(
            "{} workers still registered after every worker stopped",
            facts.heartbeats
        ));
    }
}

/// Results by chain number (a result that is not a chaos job's is a violation).
fn group_by_chain<'a>(
    results: &'a [ResultRow],
    v: &mut Vec<String>,
) -> HashMap<u64, Vec<&'a ResultRow>> {
    let mut by_chain: HashMap<u64, Vec<&ResultRow>> = HashMap::new();
    for r in results {
        match r.chain.and_then(|c| u64::try_from(c).ok()) {
            Some(c) => by_chain.entry(c).or_default().push(r),
            None => v.push(format!("result {} is not a chaos job's", r.uuid)),
        }
    }
    by_chain
}
