//! Inserting one batch and telling each of its callers what became of its row.

use std::collections::HashMap;

use uuid::Uuid;

use super::detach::Detach;
use super::{unanswered, Batch, Member, Outcome};
use crate::error::DbErrorKind;
use crate::model::JobRequest;
use crate::{Error, Jobs, Result};

/// Inserts `batch` in one statement on a connection of its own, in place (finished by a task
/// if the leader is dropped meanwhile: see `detach.rs`).
pub(super) async fn lead(jobs: &Jobs, batch: Batch) {
    Detach::new(insert(jobs.clone(), batch)).await;
}

async fn insert(jobs: Jobs, batch: Batch) {
    let Batch { members, slot } = batch;
    // Kept for the callers in case the statement is refused: each then inserts its own row.
    let rows = members.iter().map(|m| m.req.clone()).collect();
    let made = async {
        let mut conn = jobs.store().autocommit().await?;
        conn.insert_requests(rows).await
    }
    .await;
    // The connection is back in the pool before the slot goes to the next batch.
    answer(members, made);
    drop(slot);
}

/// Tells each caller what became of its row.
fn answer(members: Vec<Member>, made: Result<Vec<JobRequest>>) {
    // A caller that went away is not told: its row is in or not with the others'.
    match made {
        Ok(rows) => {
            let mut by_uuid: HashMap<Uuid, JobRequest> =
                rows.into_iter().map(|r| (r.uuid, r)).collect();
            for m in members {
                let outcome = match by_uuid.remove(&m.req.uuid) {
                    Some(row) => Outcome::Made(row),
                    None => Outcome::Failed(unanswered(m.req.uuid)),
                };
                let _ = m.tx.send(outcome);
            }
        }
        // Refused for what a row holds: the statement rolled back, nothing is in; each row
        // alone, so that only the bad one fails.
        Err(e) if members.len() > 1 && about_the_rows(&e) => {
            for m in members {
                let _ = m.tx.send(Outcome::Alone(m.req));
            }
        }
        // About the connection or the server: each caller gets the error it would have got
        // alone (and, for a closed connection, retries idempotently by its uuid).
        Err(e) => {
            let mut members = members.into_iter();
            let first = members.next();
            for m in members {
                let _ = m.tx.send(Outcome::Failed(copy_of(&e)));
            }
            if let Some(m) = first {
                let _ = m.tx.send(Outcome::Failed(e));
            }
        }
    }
}

/// Whether a failed insert failed for what it inserts (a value refused, a duplicate uuid),
/// not because of the connection or the server: it did not commit, and the same rows fail
/// again.
fn about_the_rows(e: &Error) -> bool {
    !e.may_have_committed() && !e.is_transient()
}

/// The same failure for another caller of the batch: the same kind (what callers and the
/// retry look at) and message.
fn copy_of(e: &Error) -> Error {
    let kind = e.db_kind().unwrap_or(DbErrorKind::ConnectionLost);
    let message = match e {
        Error::Database { source, .. } => source.to_string(),
        other => other.to_string(),
    };
    Error::Database {
        kind,
        source: sqlx::Error::Io(std::io::Error::other(message)),
    }
}
