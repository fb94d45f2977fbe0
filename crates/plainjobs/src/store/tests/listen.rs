//! `Store::listener`: a wake-up for inserted requests, which the worker drives.

use std::time::Duration;

use super::{requests, Bed};
use crate::store::Heard;
use crate::testing::{conformance, Backend};

/// The listener stays quiet while nothing is inserted, and while requests are inserted into
/// another database (another schema of the same PostgreSQL database, another SQLite file);
/// it wakes for an insert into its own, and keeps listening.
async fn the_listener_wakes_for_inserts_into_its_own_database_only(backend: Backend) {
    let bed = Bed::new(backend).await;
    let other = Bed::new(backend).await;
    let mut listener = bed.store().listener().await.unwrap().expect("a listener");
    let mut waiting =
        tokio::spawn(async move { listener.wait().await.map(|heard| (heard, listener)) });
    let quiet = Duration::from_millis(500);
    let woke = tokio::time::timeout(quiet, &mut waiting).await;
    assert!(woke.is_err(), "woke with nothing inserted");
    other.enqueue(requests("elsewhere", 1)).await;
    let woke = tokio::time::timeout(quiet, &mut waiting).await;
    assert!(woke.is_err(), "woke for another database's insert");

    for round in 0..2 {
        bed.enqueue(requests("here", 1)).await;
        let woke = tokio::time::timeout(Duration::from_secs(10), waiting).await;
        let (heard, mut listener) = woke
            .unwrap_or_else(|_| panic!("no wake-up for insert {round}"))
            .unwrap()
            .unwrap();
        assert_eq!(heard, Heard::Requests);
        waiting = tokio::spawn(async move { listener.wait().await.map(|heard| (heard, listener)) });
    }
    waiting.abort();
}

conformance!(the_listener_wakes_for_inserts_into_its_own_database_only);
