//! [`PgExec`]: the executor every statement of the PostgreSQL store runs on, which sends it as
//! the [`Pooler`] in front of the server needs.
//!
//! With [`Pooler::Session`] it hands each query to the connection untouched: sqlx prepares it
//! once per connection, as a statement named `sqlx_s_N`, and reuses it.
//!
//! With [`Pooler::Transaction`] neither holds. A named statement lives on one server session,
//! and the pooler gives the next transaction whichever session is free: the statement is
//! missing there, or the name belongs to another client's statement (which then runs with our
//! parameters). And sqlx sends a statement in two exchanges, each ending in a Sync — Parse and
//! Describe, then Bind and Execute — so outside a transaction even an unnamed statement may be
//! parsed on one session and executed on another, where the unnamed statement is someone
//! else's. So each query is sent unnamed (`persistent = false`: never cached either), and
//! one that is not already in a transaction gets one of its own: `BEGIN`, the statement,
//! `COMMIT`, which keeps the session for both exchanges and commits exactly what autocommit
//! would have. A query without arguments goes by the simple protocol in one exchange as it
//! is (so `VACUUM`, which refuses a transaction block, still runs).
//!
//! One thing stays named whatever the executor does: sqlx's own look-up of a type it does not
//! know by OID (an enum, a domain), which it prepares and caches itself. The store binds and
//! reads only built-in types, so it never makes one.

use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArguments, PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Connection, Describe, Either, Execute, Executor, PgConnection, Postgres};

use super::Pooler;

/// A connection of the store with the way its statements must be sent: what
/// `sqlx::query(…).fetch_one(&mut *exec)` runs on. Borrowed from a [`PgConn`](super::PgConn)
/// (`exec()`).
#[derive(Debug)]
pub(crate) struct PgExec<'c> {
    pub(super) conn: &'c mut PgConnection,
    pub(super) pooler: Pooler,
}

impl<'c> PgExec<'c> {
    pub(crate) fn new(conn: &'c mut PgConnection, pooler: Pooler) -> PgExec<'c> {
        PgExec { conn, pooler }
    }
}

/// A query with its arguments taken out, sent unnamed.
struct Unnamed<'q> {
    sql: &'q str,
    arguments: Option<PgArguments>,
}

impl<'q> Execute<'q, Postgres> for Unnamed<'q> {
    fn sql(&self) -> &'q str {
        self.sql
    }

    // The store never prepares a statement object ahead (`Executor::prepare`): a query's own
    // statement, if any, is not carried over and is described again.
    fn statement(&self) -> Option<&PgStatement<'q>> {
        None
    }

    fn take_arguments(&mut self) -> Result<Option<PgArguments>, BoxDynError> {
        Ok(self.arguments.take())
    }

    fn persistent(&self) -> bool {
        false
    }
}

/// How a query must be sent behind a transaction pooler.
enum Route<'q> {
    /// As it is: the simple protocol (one exchange), or already in a transaction.
    Direct(Unnamed<'q>),
    /// In a transaction of its own.
    Alone(Unnamed<'q>),
}

/// Takes the query apart for a transaction pooler (an argument that failed to encode is the
/// query's error, as sqlx reports it).
fn route<'q, E: Execute<'q, Postgres>>(
    conn: &PgConnection,
    mut query: E,
) -> Result<Route<'q>, sqlx::Error> {
    let sql = query.sql();
    let arguments = query.take_arguments().map_err(sqlx::Error::Encode)?;
    let simple = arguments.is_none();
    let unnamed = Unnamed { sql, arguments };
    Ok(if simple || conn.is_in_transaction() {
        Route::Direct(unnamed)
    } else {
        Route::Alone(unnamed)
    })
}

type Step = Either<PgQueryResult, PgRow>;

/// Runs `query` in a transaction of its own: committed when it succeeded, rolled back (at
/// once, so the pooler's session is freed) when it failed.
async fn alone(conn: &mut PgConnection, query: Unnamed<'_>) -> Result<Vec<Step>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    match (&mut *tx)
        .fetch_many(query)
        .try_collect::<Vec<Step>>()
        .await
    {
        Ok(steps) => {
            tx.commit().await?;
            Ok(steps)
        }
        Err(e) => {
            // The statement's error is what counts; a rollback that fails leaves sqlx's own
            // rollback queued for the connection's next use.
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

impl<'a, 'c: 'a> Executor<'a> for &'a mut PgExec<'c> {
    type Database = Postgres;

    fn fetch_many<'e, 'q, E>(self, query: E) -> BoxStream<'e, Result<Step, sqlx::Error>>
    where
        'a: 'e,
        'q: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        let conn: &'a mut PgConnection = self.conn;
        if self.pooler == Pooler::Session {
            return conn.fetch_many(query);
        }
        match route(conn, query) {
            Ok(Route::Direct(query)) => conn.fetch_many(query),
            Ok(Route::Alone(query)) => stream::once(alone(conn, query))
                .map_ok(|steps| stream::iter(steps.into_iter().map(Ok)))
                .try_flatten()
                .boxed(),
            Err(e) => stream::once(async move { Err(e) }).boxed(),
        }
    }

    fn fetch_optional<'e, 'q, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        'a: 'e,
        'q: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        let conn: &'a mut PgConnection = self.conn;
        if self.pooler == Pooler::Session {
            return conn.fetch_optional(query);
        }
        match route(conn, query) {
            Ok(Route::Direct(query)) => conn.fetch_optional(query),
            Ok(Route::Alone(query)) => Box::pin(async move {
                let steps = alone(conn, query).await?;
                Ok(steps.into_iter().find_map(|step| step.right()))
            }),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    // The store never prepares or describes ahead; these are here because the trait has them,
    // and always name their statement (sqlx gives no other way).
    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement<'q>, sqlx::Error>>
    where
        'a: 'e,
    {
        self.conn.prepare_with(sql, parameters)
    }

    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> BoxFuture<'e, Result<Describe<Postgres>, sqlx::Error>>
    where
        'a: 'e,
    {
        self.conn.describe(sql)
    }
}
