//! How SQLite runs the code written once for both backends — rows decoded through
//! [`DecodeRow`], [`Statement`]s rendered and bound as SQLite stores values — and the helpers
//! its own statements share: times as integer microseconds, lists as JSON text for
//! `json_each`, multi-row `VALUES`.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, SqliteConnection, Transaction};
use uuid::Uuid;

use crate::store::rows::{decode_error, DecodeRow};
use crate::store::sql::{micros, Arg, Dialect, SqlConn, Statement};

/// Rows per multi-row INSERT (SQLite binds at most 32,766 values per statement).
pub(super) const CHUNK: usize = 500;

pub(super) fn now_us() -> i64 {
    Utc::now().timestamp_micros()
}

pub(super) fn us(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// A time stored as integer microseconds since the Unix epoch.
fn time_from_micros(column: &str, v: i64) -> sqlx::Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(v)
        .ok_or_else(|| decode_error(column, format!("{v} is not a time")))
}

pub(super) fn uuid_from_text(column: &str, v: &str) -> sqlx::Result<Uuid> {
    Uuid::parse_str(v).map_err(|e| decode_error(column, format!("{v:?}: {e}")))
}

impl DecodeRow for SqliteRow {
    fn int64(&self, column: &str) -> sqlx::Result<i64> {
        self.try_get(column)
    }
    fn opt_int64(&self, column: &str) -> sqlx::Result<Option<i64>> {
        self.try_get(column)
    }
    fn int32(&self, column: &str) -> sqlx::Result<i32> {
        self.try_get(column)
    }
    fn int16(&self, column: &str) -> sqlx::Result<i16> {
        let v: i64 = self.try_get(column)?;
        i16::try_from(v).map_err(|_| decode_error(column, format!("{v} is out of range")))
    }
    fn text(&self, column: &str) -> sqlx::Result<String> {
        self.try_get(column)
    }
    fn opt_text(&self, column: &str) -> sqlx::Result<Option<String>> {
        self.try_get(column)
    }
    fn time(&self, column: &str) -> sqlx::Result<DateTime<Utc>> {
        time_from_micros(column, self.try_get(column)?)
    }
    fn opt_time(&self, column: &str) -> sqlx::Result<Option<DateTime<Utc>>> {
        let v: Option<i64> = self.try_get(column)?;
        v.map(|v| time_from_micros(column, v)).transpose()
    }
    fn uuid(&self, column: &str) -> sqlx::Result<Uuid> {
        uuid_from_text(column, &self.try_get::<String, _>(column)?)
    }
    fn opt_uuid(&self, column: &str) -> sqlx::Result<Option<Uuid>> {
        let v: Option<String> = self.try_get(column)?;
        v.map(|v| uuid_from_text(column, &v)).transpose()
    }
    fn json(&self, column: &str) -> sqlx::Result<Option<Value>> {
        let v: Option<String> = self.try_get(column)?;
        v.map(|v| serde_json::from_str(&v).map_err(|e| decode_error(column, e.to_string())))
            .transpose()
    }
}

/// A shared statement with its arguments bound as SQLite stores them.
fn bind<'q>(sql: &'q str, statement: &'q Statement<'_>) -> SqliteQuery<'q> {
    let now = now_us();
    statement
        .args()
        .iter()
        .fold(sqlx::query(sql), |query, arg| match *arg {
            Arg::Int(v) => query.bind(v),
            Arg::Bool(v) => query.bind(v),
            Arg::Text(v) => query.bind(v),
            Arg::Uuid(v) => query.bind(v.map(|u| u.to_string())),
            Arg::Uuids(v) => query.bind(uuid_list(v)),
            Arg::Texts(v) => query.bind(text_list(v.iter().cloned())),
            Arg::Now => query.bind(now),
            Arg::Ago(d) => query.bind(now.saturating_sub(micros(d))),
            Arg::Time(t) => query.bind(t.map(us)),
        })
}

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

#[async_trait::async_trait]
impl SqlConn for SqliteConnection {
    type Row = SqliteRow;

    async fn rows(&mut self, statement: &Statement<'_>) -> sqlx::Result<Vec<SqliteRow>> {
        let sql = statement.sql(Dialect::Sqlite);
        bind(&sql, statement).fetch_all(self).await
    }

    async fn row(&mut self, statement: &Statement<'_>) -> sqlx::Result<Option<SqliteRow>> {
        let sql = statement.sql(Dialect::Sqlite);
        bind(&sql, statement).fetch_optional(self).await
    }

    async fn run(&mut self, statement: &Statement<'_>) -> sqlx::Result<u64> {
        let sql = statement.sql(Dialect::Sqlite);
        Ok(bind(&sql, statement).execute(self).await?.rows_affected())
    }
}

/// A pooled connection or a transaction runs statements on its connection.
macro_rules! on_its_connection {
    ($($holder:ty),*) => {$(
        #[async_trait::async_trait]
        impl SqlConn for $holder {
            type Row = SqliteRow;

            async fn rows(&mut self, statement: &Statement<'_>) -> sqlx::Result<Vec<SqliteRow>> {
                (**self).rows(statement).await
            }

            async fn row(&mut self, statement: &Statement<'_>) -> sqlx::Result<Option<SqliteRow>> {
                (**self).row(statement).await
            }

            async fn run(&mut self, statement: &Statement<'_>) -> sqlx::Result<u64> {
                (**self).run(statement).await
            }
        }
    )*};
}
on_its_connection!(PoolConnection<Sqlite>, Transaction<'static, Sqlite>);

pub(super) fn placeholders(rows: usize, cols: usize) -> String {
    let one = format!("({})", vec!["?"; cols].join(", "));
    vec![one; rows].join(", ")
}

pub(super) fn params_text(v: &Option<Value>) -> Option<String> {
    v.as_ref().map(Value::to_string)
}

/// A uuid list as the JSON text `json_each` reads.
pub(super) fn uuid_list(uuids: &[Uuid]) -> String {
    text_list(uuids.iter().map(Uuid::to_string))
}

/// Strings as the JSON array text `json_each` reads.
pub(super) fn text_list(items: impl IntoIterator<Item = String>) -> String {
    Value::Array(items.into_iter().map(Value::String).collect()).to_string()
}
