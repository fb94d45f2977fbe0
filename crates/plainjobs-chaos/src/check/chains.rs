//! Every enqueued job's chain of attempts ends in exactly one terminal result; a refused job
//! left no row; nothing ran that nobody enqueued.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use uuid::Uuid;

use crate::facts::ResultRow;
use crate::load::EnqueueLog;

#[derive(Debug, Default, Serialize)]
pub struct ChainCounts {
    /// Enqueues that returned a request.
    pub enqueued: usize,
    /// Enqueues skipped because the concurrency key was taken.
    pub refused_by_key: usize,
    /// Enqueues that returned an error (during a fault).
    pub enqueue_errors: usize,
    /// Of those, how many had committed all the same (their chain is in the results).
    pub enqueue_errors_committed: usize,
    /// Chains with results.
    pub in_results: usize,
    /// Chains that took more than one attempt.
    pub retried: usize,
}

pub fn check(
    by_chain: &HashMap<u64, Vec<&ResultRow>>,
    log: &EnqueueLog,
    v: &mut Vec<String>,
) -> ChainCounts {
    let mut counts = ChainCounts {
        enqueued: log.accepted.len(),
        refused_by_key: log.refused.len(),
        enqueue_errors: log.failed.len(),
        in_results: by_chain.len(),
        ..ChainCounts::default()
    };
    for (chain, first) in &log.accepted {
        match by_chain.get(chain) {
            None => v.push(format!("chain {chain} was enqueued but has no result")),
            Some(results) => check_root(*chain, *first, results, v),
        }
    }
    for chain in &log.refused {
        if by_chain.contains_key(chain) {
            v.push(format!("chain {chain} was refused by its key but ran"));
        }
    }
    for (chain, results) in by_chain {
        let known = log.accepted.contains_key(chain) || log.failed.contains_key(chain);
        if !known {
            v.push(format!("chain {chain} has results but was never enqueued"));
        }
        if log.failed.contains_key(chain) {
            counts.enqueue_errors_committed += 1;
        }
        if results.len() > 1 {
            counts.retried += 1;
        }
        check_links(*chain, results, v);
    }
    counts
}

/// The chain starts with the request the enqueue returned.
fn check_root(chain: u64, first: Uuid, results: &[&ResultRow], v: &mut Vec<String>) {
    if !results.iter().any(|r| r.job_request_uuid == first) {
        v.push(format!(
            "chain {chain}: the enqueued request {first} has no result"
        ));
    }
}

/// One path: one root, each retry link to a request of the chain that has a result, one end,
/// and that end is final (not a deferral, not a failure still owed a retry).
fn check_links(chain: u64, results: &[&ResultRow], v: &mut Vec<String>) {
    let requests: HashSet<Uuid> = results.iter().map(|r| r.job_request_uuid).collect();
    let linked: HashSet<Uuid> = results
        .iter()
        .filter_map(|r| r.retry_job_request_uuid)
        .collect();
    for target in &linked {
        if !requests.contains(target) {
            v.push(format!(
                "chain {chain}: retry request {target} never got a result"
            ));
        }
    }
    let roots = results
        .iter()
        .filter(|r| !linked.contains(&r.job_request_uuid))
        .count();
    let ends: Vec<&&ResultRow> = results
        .iter()
        .filter(|r| r.retry_job_request_uuid.is_none())
        .collect();
    if roots != 1 || ends.len() != 1 {
        v.push(format!(
            "chain {chain}: {roots} first attempts and {} terminal results (want 1 and 1)",
            ends.len()
        ));
    }
    for end in ends {
        let owed_retry = matches!(end.status.as_str(), "ERRORED" | "LOST" | "CANCELLED")
            && end.retries > 0
            && end.retry_attempt < end.retries;
        if end.status == "DEFERRED" || owed_retry {
            v.push(format!(
                "chain {chain}: ends in {} at attempt {} of {} retries without a follow-up",
                end.status, end.retry_attempt, end.retries
            ));
        }
    }
}
