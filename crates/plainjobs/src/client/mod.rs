//! The client side: what an application does with a [`Jobs`](crate::Jobs) handle — enqueue one
//! job or many (on their own connection or in the caller's transaction), read the tables, and
//! the operator's transitions (retry, clear, purge). Workers use the same code for the requests
//! they make (retries, deferrals, schedules).

mod admit;
mod again;
mod browse;
pub(crate) mod bulk;
mod chain;
mod control;
mod enqueue;
pub(crate) mod follow_up;
mod inspect;
mod on_commit;
mod operator;
pub(crate) mod request;
mod single;
mod traced;
mod transaction;

pub(crate) use admit::enqueue_on;
pub use bulk::EnqueueMany;
pub use chain::{Attempt, Chain};
pub use control::Cancelled;
pub use enqueue::Enqueue;
pub use inspect::Found;
pub use request::MAX_NAME_LEN;
pub use transaction::TransactionConn;

#[cfg(test)]
mod tests;
