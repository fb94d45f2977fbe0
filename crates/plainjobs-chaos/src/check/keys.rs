//! Concurrency keys: runs of different chains with the same key never overlap in time. Only
//! runs whose result stands are compared: a job declared LOST may still be running on a frozen
//! worker, which no database row can stop.

use std::collections::HashMap;

use uuid::Uuid;

use crate::facts::ResultRow;
use crate::runlog::{Phase, RunEvent};

struct Span {
    chain: u64,
    start: i64,
    end: i64,
}

pub fn check(results: &[ResultRow], events: &[RunEvent], v: &mut Vec<String>) -> usize {
    let standing: HashMap<Uuid, &str> = results
        .iter()
        .filter(|r| !r.aborted() && !r.concurrency_key.is_empty())
        .map(|r| (r.job_process_uuid, r.concurrency_key.as_str()))
        .collect();
    let mut spans: HashMap<&str, Vec<Span>> = HashMap::new();
    for (process, (start, end, chain)) in run_spans(events) {
        if let Some(key) = standing.get(&process) {
            spans
                .entry(key)
                .or_default()
                .push(Span { chain, start, end });
        }
    }
    let mut overlaps = 0;
    for (key, mut runs) in spans {
        runs.sort_by_key(|s| s.start);
        for pair in runs.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if a.chain != b.chain && b.start < a.end {
                overlaps += 1;
                v.push(format!(
                    "key {key}: chain {} started {} µs before chain {} ended",
                    b.chain,
                    a.end - b.start,
                    a.chain
                ));
            }
        }
    }
    overlaps
}

/// Start and end time of each process's run (end = start when no end was logged).
fn run_spans(events: &[RunEvent]) -> HashMap<Uuid, (i64, i64, u64)> {
    let mut spans: HashMap<Uuid, (i64, i64, u64)> = HashMap::new();
    for e in events {
        let span = spans
            .entry(e.process)
            .or_insert((e.at_us, e.at_us, e.chain));
        match e.phase {
            Phase::Start => span.0 = span.0.min(e.at_us),
            Phase::End { .. } => span.1 = span.1.max(e.at_us),
        }
    }
    spans
}
