//! Runs against results: a job ran more than once only where its chain has a LOST or CANCELLED
//! result. Each SUCCESSFUL or ERRORED result matches exactly one run that started and ended
//! that way; the runs beyond those are counted by cause.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use uuid::Uuid;

use crate::facts::ResultRow;
use crate::runlog::{Phase, RunEvent};

#[derive(Debug, Default, Serialize)]
pub struct RunCounts {
    pub started: usize,
    pub ended: usize,
    /// Runs whose work was, or may have been, done again, by cause.
    pub reruns: BTreeMap<&'static str, usize>,
    /// Requests (one attempt) that started more than once.
    pub requests_run_twice: usize,
    /// Chains whose code succeeded more than once.
    pub chains_succeeded_twice: usize,
    /// Runs that started after their job's LOST result was written (the first 20): a worker
    /// starting a job that was no longer its own.
    pub started_after_lost: Vec<String>,
}

pub fn check(
    by_chain: &HashMap<u64, Vec<&ResultRow>>,
    events: &[RunEvent],
    v: &mut Vec<String>,
) -> RunCounts {
    let mut counts = RunCounts::default();
    let mut events_by_chain: HashMap<u64, Vec<&RunEvent>> = HashMap::new();
    for e in events {
        events_by_chain.entry(e.chain).or_default().push(e);
        match e.phase {
            Phase::Start => counts.started += 1,
            Phase::End { .. } => counts.ended += 1,
        }
    }
    for (chain, evs) in &events_by_chain {
        let results = by_chain.get(chain).map(Vec::as_slice).unwrap_or(&[]);
        check_chain(*chain, results, evs, &mut counts, v);
    }
    counts
}

fn check_chain(
    chain: u64,
    results: &[&ResultRow],
    events: &[&RunEvent],
    counts: &mut RunCounts,
    v: &mut Vec<String>,
) {
    let aborted = results.iter().any(|r| r.aborted());
    let mut by_process: HashMap<Uuid, Vec<&RunEvent>> = HashMap::new();
    for e in events {
        by_process.entry(e.process).or_default().push(e);
    }
    for r in results {
        let evs = by_process.remove(&r.job_process_uuid).unwrap_or_default();
        if r.aborted() {
            aborted_run(chain, r, &evs, counts, v);
        } else {
            standing_run(chain, r, &evs, v);
        }
    }
    // Runs whose process has no result at all: started, then handed back to the queue.
    for (process, evs) in by_process {
        let starts = evs.iter().filter(|e| e.phase == Phase::Start).count();
        *counts.reruns.entry("ran_without_a_result").or_default() += starts;
        if !aborted {
            v.push(format!(
                "chain {chain}: process {process} ran but has no result (no LOST/CANCELLED in the chain)"
            ));
        }
    }
    repeated_work(chain, events, aborted, counts, v);
}

/// A SUCCESSFUL, ERRORED or DEFERRED result stands for exactly one run that ended that way.
fn standing_run(chain: u64, r: &ResultRow, evs: &[&RunEvent], v: &mut Vec<String>) {
    let starts = evs.iter().filter(|e| e.phase == Phase::Start).count();
    let want_ok = r.status != "ERRORED";
    let ends: Vec<bool> = evs
        .iter()
        .filter_map(|e| match e.phase {
            Phase::End { ok } => Some(ok),
            Phase::Start => None,
        })
        .collect();
    if starts != 1 || ends != [want_ok] {
        v.push(format!(
            "chain {chain}: {} result of process {} matches {starts} starts and ends {ends:?}",
            r.status, r.job_process_uuid
        ));
    }
}

/// A LOST or CANCELLED job ran at most once as that process; a run that started or ended after
/// the LOST result was written is the frozen-worker case.
fn aborted_run(
    chain: u64,
    r: &ResultRow,
    evs: &[&RunEvent],
    counts: &mut RunCounts,
    v: &mut Vec<String>,
) {
    let start = evs.iter().find(|e| e.phase == Phase::Start);
    let starts = evs.iter().filter(|e| e.phase == Phase::Start).count();
    if starts > 1 {
        v.push(format!(
            "chain {chain}: process {} started {starts} times",
            r.job_process_uuid
        ));
    }
    let Some(start) = start else { return };
    let cause = match (r.status.as_str(), r.retry_job_request_uuid.is_some()) {
        ("LOST", true) => "retried_after_lost_mid_run",
        ("LOST", false) => "lost_mid_run_no_retry_left",
        (_, true) => "retried_after_cancelled_mid_run",
        (_, false) => "cancelled_mid_run_no_retry_left",
    };
    *counts.reruns.entry(cause).or_default() += 1;
    if r.status == "LOST" && start.at_us > r.created_us {
        *counts
            .reruns
            .entry("started_after_its_lost_result")
            .or_default() += 1;
        if counts.started_after_lost.len() < 20 {
            counts.started_after_lost.push(format!(
                "chain {chain} attempt {}: process {} started in pid {} {} ms after its LOST result ({})",
                start.attempt,
                r.job_process_uuid,
                start.pid,
                (start.at_us - r.created_us) / 1000,
                r.error
            ));
        }
    }
    let late_end = evs
        .iter()
        .any(|e| matches!(e.phase, Phase::End { .. }) && e.at_us > r.created_us);
    if r.status == "LOST" && late_end {
        *counts
            .reruns
            .entry("finished_after_its_lost_result")
            .or_default() += 1;
    }
}

/// The same attempt started twice, or the job's code succeeded twice: only with an abort.
fn repeated_work(
    chain: u64,
    events: &[&RunEvent],
    aborted: bool,
    counts: &mut RunCounts,
    v: &mut Vec<String>,
) {
    let mut starts_by_request: HashMap<Uuid, usize> = HashMap::new();
    for e in events.iter().filter(|e| e.phase == Phase::Start) {
        *starts_by_request.entry(e.request).or_default() += 1;
    }
    let twice = starts_by_request.values().filter(|n| **n > 1).count();
    counts.requests_run_twice += twice;
    let successes = events
        .iter()
        .filter(|e| e.phase == (Phase::End { ok: true }))
        .count();
    if successes > 1 {
        counts.chains_succeeded_twice += 1;
    }
    if !aborted && (twice > 0 || successes > 1) {
        v.push(format!(
            "chain {chain}: ran more than once ({twice} attempts started twice, {successes} successes) without a LOST or CANCELLED result"
        ));
    }
}
