//! Watches the tables while the run goes on: in no snapshot may two requests or processes hold
//! the same concurrency key.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sqlx::PgPool;

use crate::probe;

#[derive(Debug, Default, Clone, Serialize)]
pub struct KeySamples {
    /// Snapshots taken.
    pub samples: u64,
    /// Snapshots that failed (the database was down).
    pub failed: u64,
    /// (key, rows) seen sharing a key.
    pub shared: Vec<(String, i64)>,
}

/// Samples every 50 ms until `stop` is set or `bound` has passed.
pub async fn watch_keys(db: PgPool, stop: Arc<AtomicBool>, bound: Duration) -> KeySamples {
    let mut out = KeySamples::default();
    let started = std::time::Instant::now();
    while !stop.load(Ordering::Relaxed) && started.elapsed() < bound {
        match probe::shared_keys(&db).await {
            Ok(shared) => {
                out.samples += 1;
                out.shared.extend(shared);
            }
            Err(_) => out.failed += 1,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    out
}
