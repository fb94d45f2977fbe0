//! Statements written once for both backends, and what each backend needs to run them.
//!
//! A [`Statement`] is written in PostgreSQL's notation. For SQLite, a small codec renders it:
//! `$n` becomes `?n`, and `= ANY($n)` over a list becomes `IN (SELECT value FROM
//! json_each(?n))`. Values are given as [`Arg`]s and bound the way each backend stores them:
//! uuids natively or as text, times natively or as integer microseconds, and "now" as
//! PostgreSQL's own `now()` (never bound, so that the database's clock decides) or SQLite's
//! host clock. Shared statements must not contain a `$` followed by a digit anywhere but in a
//! placeholder.

use std::borrow::Cow;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::rows::DecodeRow;
use crate::Result;

/// A duration in whole microseconds, as both backends bind one (saturating: durations that
/// long are "never").
pub(crate) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// A value for one placeholder of a [`Statement`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    Int(i64),
    Bool(bool),
    Text(Option<&'a str>),
    Uuid(Option<Uuid>),
    /// A list, for `= ANY($n)`.
    Uuids(&'a [Uuid]),
    /// A list of texts, for `= ANY($n)`.
    Texts(&'a [String]),
    /// The database's "now": `now()` on PostgreSQL, the host's clock on SQLite.
    Now,
    /// "now" minus this long, as a time (`now() - interval` on PostgreSQL).
    Ago(Duration),
    /// A time (NULL for None).
    Time(Option<DateTime<Utc>>),
}

/// A statement and its arguments, `$1` being the first.
#[derive(Debug)]
pub(crate) struct Statement<'a> {
    sql: Cow<'a, str>,
    args: Vec<Arg<'a>>,
}

/// Which notation to render a [`Statement`] in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Postgres,
    Sqlite,
}

impl<'a> Statement<'a> {
    pub(crate) fn new(sql: impl Into<Cow<'a, str>>) -> Statement<'a> {
        Statement {
            sql: sql.into(),
            args: Vec::new(),
        }
    }

    /// Adds the value of the next placeholder.
    pub(crate) fn arg(mut self, arg: Arg<'a>) -> Statement<'a> {
        self.args.push(arg);
        self
    }

    /// The arguments, in placeholder order.
    pub(crate) fn args(&self) -> &[Arg<'a>] {
        &self.args
    }

    /// The SQL text for `dialect`. A statement without arguments is sent as written (the
    /// migrations' PL/pgSQL bodies hold `$$`); so is a PostgreSQL one that binds every argument.
    pub(crate) fn sql(&self, dialect: Dialect) -> Cow<'_, str> {
        let expands = |a: &Arg| matches!(a, Arg::Now | Arg::Ago(_));
        let verbatim = match dialect {
            Dialect::Postgres => !self.args.iter().any(expands),
            Dialect::Sqlite => self.args.is_empty(),
        };
        if verbatim {
            return Cow::Borrowed(&self.sql);
        }
        Cow::Owned(render(&self.sql, &self.args, dialect))
    }
}

/// Rewrites the placeholders of `sql` for `dialect` (see the module docs).
fn render(sql: &str, args: &[Arg], dialect: Dialect) -> String {
    // PostgreSQL binds every argument but `Now`: the others are renumbered past it.
    let mut bound_position = Vec::with_capacity(args.len());
    let mut next = 0;
    for a in args {
        if dialect == Dialect::Sqlite || !matches!(a, Arg::Now) {
            next += 1;
        }
        bound_position.push(next);
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        let digits = rest[at + 1..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len() - at - 1);
        let Ok(n @ 1..) = rest[at + 1..at + 1 + digits].parse::<usize>() else {
            out.push_str(&rest[..=at]);
            rest = &rest[at + 1..];
            continue;
        };
        let arg = args
            .get(n - 1)
            .unwrap_or_else(|| panic!("${n} has no argument in {sql:?}"));
        let k = bound_position[n - 1];
        let mut head = &rest[..at];
        let mut tail = &rest[at + 1 + digits..];
        let text = match (dialect, arg) {
            (Dialect::Postgres, Arg::Now) => "now()".to_string(),
            (Dialect::Postgres, Arg::Ago(_)) => {
                format!("(now() - ${k} * interval '1 microsecond')")
            }
            (Dialect::Postgres, _) => format!("${k}"),
            (Dialect::Sqlite, Arg::Uuids(_) | Arg::Texts(_)) => {
                // `x = ANY($n)` → `x IN (SELECT value FROM json_each(?n))`.
                let (Some(h), Some(t)) = (head.strip_suffix("= ANY("), tail.strip_prefix(')'))
                else {
                    panic!("a list argument is used as `= ANY(${n})` in {sql:?}");
                };
                (head, tail) = (h, t);
                format!("IN (SELECT value FROM json_each(?{k}))")
            }
            (Dialect::Sqlite, _) => format!("?{k}"),
        };
        out.push_str(head);
        out.push_str(&text);
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// A backend's connection, running [`Statement`]s.
#[async_trait::async_trait]
pub(crate) trait SqlConn: Send {
    /// The backend's row.
    type Row: DecodeRow;
    /// Every row the statement returns.
    async fn rows(&mut self, statement: &Statement<'_>) -> sqlx::Result<Vec<Self::Row>>;
    /// The first row the statement returns, if any.
    async fn row(&mut self, statement: &Statement<'_>) -> sqlx::Result<Option<Self::Row>>;
    /// Runs the statement; returns how many rows it changed.
    async fn run(&mut self, statement: &Statement<'_>) -> sqlx::Result<u64>;
}

/// A backend as the code written once for both sees it: connections and transactions that run
/// [`Statement`]s.
#[async_trait::async_trait]
pub(crate) trait SqlBackend: Send + Sync + 'static {
    /// A pooled connection in autocommit mode.
    type Pooled: SqlConn;
    /// A transaction that writes.
    type WriteTx: SqlConn;
    /// SQL for the minute of a row's `created_at`, as Unix seconds (a multiple of 60): how
    /// results are counted per minute.
    #[cfg_attr(not(feature = "admin"), allow(dead_code))] // the dashboard's alone
    const CREATED_MINUTE: &'static str;
    /// A pooled connection in autocommit mode.
    async fn pooled(&self) -> Result<Self::Pooled>;
    /// A transaction that writes: on SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`), so that it never fails to upgrade a read lock half-way.
    async fn begin_write(&self) -> Result<Self::WriteTx>;
    /// Commits a transaction of [`SqlBackend::begin_write`].
    async fn commit(tx: Self::WriteTx) -> Result<()>;
    /// What a `SELECT` ends with to lock the rows it reads until the transaction ends (empty
    /// on SQLite, whose write transaction already excludes every other writer).
    const LOCK_ROWS: &'static str;
    /// An expression for a new random uuid, one per row.
    const NEW_UUID: &'static str;
    /// The statement that tells workers, in a transaction that cancels what they hold or
    /// pauses a queue, to look at once (None where workers only poll).
    const CONTROL_NOTICE: Option<&'static str>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(s: &Statement) -> (String, String) {
        (
            s.sql(Dialect::Postgres).into_owned(),
            s.sql(Dialect::Sqlite).into_owned(),
        )
    }

    #[test]
    fn placeholders_become_numbered_question_marks_for_sqlite() {
        let s = Statement::new("SELECT * FROM t WHERE a = $1 AND (b = $2 OR $2 IS NULL) LIMIT $10")
            .arg(Arg::Int(1))
            .arg(Arg::Text(None));
        let s = (3..=10).fold(s, |s, i| s.arg(Arg::Int(i)));
        let (pg, lite) = both(&s);
        assert_eq!(
            pg,
            "SELECT * FROM t WHERE a = $1 AND (b = $2 OR $2 IS NULL) LIMIT $10"
        );
        assert_eq!(
            lite,
            "SELECT * FROM t WHERE a = ?1 AND (b = ?2 OR ?2 IS NULL) LIMIT ?10"
        );
    }

    #[test]
    fn now_is_postgres_own_clock_and_a_bound_value_for_sqlite() {
        let s = Statement::new("SELECT $1, x <= $2, y > $2, $3")
            .arg(Arg::Int(7))
            .arg(Arg::Now)
            .arg(Arg::Ago(Duration::from_secs(1)));
        let (pg, lite) = both(&s);
        assert_eq!(
            pg,
            "SELECT $1, x <= now(), y > now(), (now() - $2 * interval '1 microsecond')"
        );
        assert_eq!(lite, "SELECT ?1, x <= ?2, y > ?2, ?3");
    }

    #[test]
    fn a_list_is_any_for_postgres_and_json_each_for_sqlite() {
        let s = Statement::new("SELECT 1 WHERE uuid = ANY($1) OR id = $2")
            .arg(Arg::Uuids(&[]))
            .arg(Arg::Int(1));
        let (pg, lite) = both(&s);
        assert_eq!(pg, "SELECT 1 WHERE uuid = ANY($1) OR id = $2");
        assert_eq!(
            lite,
            "SELECT 1 WHERE uuid IN (SELECT value FROM json_each(?1)) OR id = ?2"
        );
    }

    #[test]
    fn text_without_arguments_is_sent_as_written() {
        let body = "CREATE FUNCTION f() RETURNS int AS $$ SELECT $1 $$";
        let (pg, lite) = both(&Statement::new(body));
        assert_eq!((pg.as_str(), lite.as_str()), (body, body));
    }
}
