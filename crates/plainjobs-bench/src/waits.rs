//! Lock waits, by sampling `pg_stat_activity`.
//!
//! Why sampling: `pg_stat_statements` has no lock-wait time; `log_lock_waits` only reports waits
//! longer than `deadlock_timeout` (1 s), and the waits that matter here last micro- to
//! milliseconds; `pg_locks` shows heavyweight locks held and awaited, but not for how long. A
//! backend's `wait_event` says what it is waiting for right now, heavyweight locks (`Lock`:
//! `transactionid`, `tuple`, `extend`, `advisory`…) and internal ones (`LWLock`: buffer
//! contents, WAL insertion…) alike, so sampling it every few milliseconds gives the average
//! number of backends waiting on each — the method of `pg_wait_sampling`, without installing it.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::PgConnection;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::server::PROBE;

/// Average number of this database's active backends waiting on each wait event.
#[derive(Debug, Default, Clone)]
pub struct WaitProfile {
    pub samples: u64,
    /// "type:event" → average backends waiting on it.
    pub events: Vec<(String, f64)>,
}

impl WaitProfile {
    /// Average backends waiting on events of one type (`Lock`, `LWLock`, `IO`, …).
    pub fn of_type(&self, kind: &str) -> f64 {
        let prefix = format!("{kind}:");
        self.events
            .iter()
            .filter(|(e, _)| e.starts_with(&prefix))
            .map(|(_, n)| n)
            .fold(0.0, |a, b| a + b)
    }
}

pub struct WaitSampler {
    stop: oneshot::Sender<()>,
    task: JoinHandle<WaitProfile>,
}

impl WaitSampler {
    /// Samples on `conn` (a connection of its own) every `every` until [`WaitSampler::finish`].
    pub fn start(conn: PgConnection, every: Duration) -> WaitSampler {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(sample(conn, every, stopped));
        WaitSampler { stop, task }
    }

    pub async fn finish(self) -> WaitProfile {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

async fn sample(
    mut conn: PgConnection,
    every: Duration,
    mut stopped: oneshot::Receiver<()>,
) -> WaitProfile {
    let sql = format!(
        "{PROBE} SELECT wait_event_type || ':' || wait_event, count(*)
         FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND state = 'active' AND wait_event IS NOT NULL
         GROUP BY 1"
    );
    let mut counts: HashMap<String, u64> = HashMap::new();
    let mut samples = 0u64;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            _ = tick.tick() => {}
        }
        let Ok(rows) = sqlx::query_as::<_, (String, i64)>(&sql)
            .fetch_all(&mut conn)
            .await
        else {
            continue;
        };
        samples += 1;
        for (event, n) in rows {
            *counts.entry(event).or_default() += u64::try_from(n).unwrap_or(0);
        }
    }
    let mut events: Vec<(String, f64)> = counts
        .into_iter()
        .map(|(e, n)| (e, n as f64 / samples.max(1) as f64))
        .collect();
    events.sort_by(|a, b| b.1.total_cmp(&a.1));
    WaitProfile { samples, events }
}
