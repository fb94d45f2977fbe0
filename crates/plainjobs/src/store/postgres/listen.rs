//! Wake-ups for inserted requests: `LISTEN` on a session of its own, filtered by schema.

use std::sync::Arc;

use sqlx::postgres::PgListener;

use super::PgStore;
use crate::store::{local_wake, Heard, Listener};
use crate::Result;

/// The channel the insert trigger notifies.
pub(crate) const CHANNEL: &str = "plainjobs_jobrequest";

/// The channel cancels and pauses notify.
const CONTROL_CHANNEL: &str = "plainjobs_control";

/// Sent on [`CONTROL_CHANNEL`] in the transaction that cancels claimed jobs or pauses a queue,
/// naming the schema of our tables: the workers of that schema look at once.
pub(crate) const CONTROL_NOTICE: &str = concat!(
    "SELECT pg_notify('plainjobs_control', n.nspname::text)",
    from_our_schema!()
);

/// The schema our tables resolve to, as the trigger names it in each notification since
/// schema version 5. Before it the payload was empty (3–4) or the queue's name (1–2): a
/// database not migrated that far wakes the worker for every notification (None).
async fn notification_schema(store: &PgStore) -> Result<Option<String>> {
    let mut conn = store.conn().await?;
    let migrated = super::schema::recorded_version(&mut conn.exec()).await?;
    if migrated.is_none_or(|v| v < 5) {
        return Ok(None);
    }
    Ok(
        sqlx::query_scalar(concat!("SELECT n.nspname::text", from_our_schema!()))
            .fetch_optional(&mut conn.exec())
            .await?,
    )
}

/// `LISTEN plainjobs_jobrequest` and `plainjobs_control` on a session of its own. A
/// notification reaches every listener of the database; only those for our schema count.
struct InsertListener {
    listener: PgListener,
    schema: Option<String>,
}

#[async_trait::async_trait]
impl Listener for InsertListener {
    async fn wait(&mut self) -> Result<Heard> {
        loop {
            match self.listener.try_recv().await? {
                Some(n) => {
                    let ours = match &self.schema {
                        Some(s) => n.payload().is_empty() || n.payload() == s,
                        None => true,
                    };
                    if ours {
                        return Ok(if n.channel() == CONTROL_CHANNEL {
                            Heard::Control
                        } else {
                            Heard::Requests
                        });
                    }
                }
                None => {
                    // The connection dropped; the next call reconnects and listens again.
                    // Anything sent meanwhile was missed, so the worker looks now.
                    tracing::warn!("LISTEN connection lost; reconnecting");
                    return Ok(Heard::Anything);
                }
            }
        }
    }
}

/// Behind a transaction pooler: what this process does to the same tables (inserts, cancels,
/// pauses), at once; anything else is found by polling.
struct LocalListener {
    local: Arc<local_wake::Waiter>,
}

#[async_trait::async_trait]
impl Listener for LocalListener {
    async fn wait(&mut self) -> Result<Heard> {
        tokio::select! {
            _ = self.local.requests.notified() => Ok(Heard::Requests),
            _ = self.local.control.notified() => Ok(Heard::Control),
        }
    }
}

/// See [`Store::listener`](crate::store::Store::listener). No `LISTEN` behind a transaction
/// pooler: it belongs to a server session, which the pooler hands to other clients between our
/// transactions (we would hear nothing, and the next client would get our notifications).
/// Only what this process does wakes the worker there.
pub(super) async fn listener(store: &PgStore) -> Result<Option<Box<dyn Listener>>> {
    if let Some(key) = &store.local {
        let local = local_wake::waiter(key.clone());
        return Ok(Some(Box::new(LocalListener { local })));
    }
    let schema = notification_schema(store).await?;
    let mut listener = PgListener::connect_with(&store.pool).await?;
    listener.listen_all([CHANNEL, CONTROL_CHANNEL]).await?;
    Ok(Some(Box::new(InsertListener { listener, schema })))
}
