//! What a run does, drawn from its seed before it starts: the jobs, the racing keyed enqueues
//! and the order of the faults. The same seed gives the same plan (timing still varies).

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::faults::FaultKind;
use crate::job::ChaosJob;

/// How big a run is.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Size {
    /// Jobs enqueued without a key, one chain each.
    pub jobs: usize,
    /// Rounds in which `racers` enqueuers try the same key at the same instant.
    pub key_rounds: usize,
    pub racers: usize,
    /// Distinct concurrency keys the rounds draw from.
    pub keys: usize,
}

/// One round of racing enqueues: every job has the same key and its own chain.
#[derive(Debug, Clone)]
pub struct KeyRound {
    pub jobs: Vec<ChaosJob>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub jobs: Vec<ChaosJob>,
    pub key_rounds: Vec<KeyRound>,
    /// Faults in the order they are injected: every kind once (shuffled), then drawn by weight.
    pub faults: Vec<FaultKind>,
}

impl Plan {
    pub fn draw(rng: &mut ChaCha8Rng, size: &Size) -> Plan {
        let jobs = (0..size.jobs as u64)
            .map(|chain| plain_job(rng, chain))
            .collect();
        let mut chain = size.jobs as u64;
        let key_rounds = (0..size.key_rounds)
            .map(|_| {
                let key = format!("k{}", rng.gen_range(0..size.keys.max(1)));
                let jobs = (0..size.racers)
                    .map(|_| {
                        chain += 1;
                        keyed_job(rng, chain, &key)
                    })
                    .collect();
                KeyRound { jobs }
            })
            .collect();
        Plan {
            jobs,
            key_rounds,
            faults: fault_order(rng, 10_000),
        }
    }
}

/// Mostly short jobs (claimed ahead, many per claim), a quarter of medium ones and 5% long
/// ones (so that faults catch jobs mid-run); 15% fail on early attempts, some of them past
/// their last retry.
fn plain_job(rng: &mut ChaCha8Rng, chain: u64) -> ChaosJob {
    let sleep_ms = match rng.gen_range(0..100) {
        0..=4 => rng.gen_range(1_000..3_000),
        5..=29 => rng.gen_range(100..600),
        _ => rng.gen_range(0..30),
    };
    let retries = rng.gen_range(0..=3);
    let fail_below = if rng.gen_ratio(15, 100) {
        rng.gen_range(1..=retries + 1)
    } else {
        0
    };
    ChaosJob {
        chain,
        sleep_ms,
        fail_below,
        retries,
        key: String::new(),
    }
}

/// Keyed jobs run long enough for racing enqueues to find the key taken.
fn keyed_job(rng: &mut ChaCha8Rng, chain: u64, key: &str) -> ChaosJob {
    ChaosJob {
        key: key.to_string(),
        sleep_ms: rng.gen_range(50..400),
        ..plain_job(rng, chain)
    }
}

fn fault_order(rng: &mut ChaCha8Rng, n: usize) -> Vec<FaultKind> {
    let mut order = FaultKind::ALL.to_vec();
    order.shuffle(rng);
    let total: u32 = FaultKind::ALL.iter().map(|k| k.weight()).sum();
    while order.len() < n {
        let mut pick = rng.gen_range(0..total);
        for kind in FaultKind::ALL {
            if pick < kind.weight() {
                order.push(kind);
                break;
            }
            pick -= kind.weight();
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_seed_draws_the_same_plan_and_every_fault_kind_comes_first() {
        let size = Size {
            jobs: 50,
            key_rounds: 10,
            racers: 3,
            keys: 4,
        };
        let a = Plan::draw(&mut ChaCha8Rng::seed_from_u64(7), &size);
        let b = Plan::draw(&mut ChaCha8Rng::seed_from_u64(7), &size);
        assert_eq!(a.jobs, b.jobs);
        assert_eq!(a.faults, b.faults);
        let mut first: Vec<FaultKind> = a.faults[..FaultKind::ALL.len()].to_vec();
        first.sort();
        assert_eq!(first, FaultKind::ALL.to_vec());
        let chains: std::collections::HashSet<u64> = a
            .jobs
            .iter()
            .chain(a.key_rounds.iter().flat_map(|r| &r.jobs))
            .map(|j| j.chain)
            .collect();
        assert_eq!(chains.len(), 50 + 30, "every chain number is used once");
    }
}
