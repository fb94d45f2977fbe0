//! How PostgreSQL runs the code written once for both backends: rows decoded through
//! [`DecodeRow`], [`Statement`]s bound with their arguments as PostgreSQL takes them.

use std::ops::DerefMut;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, Row};
use uuid::Uuid;

use super::{PgConn, PgExec};
use crate::store::rows::DecodeRow;
use crate::store::sql::{micros, Arg, Dialect, SqlConn, Statement};

impl DecodeRow for PgRow {
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
        self.try_get(column)
    }
    fn text(&self, column: &str) -> sqlx::Result<String> {
        self.try_get(column)
    }
    fn opt_text(&self, column: &str) -> sqlx::Result<Option<String>> {
        self.try_get(column)
    }
    fn time(&self, column: &str) -> sqlx::Result<DateTime<Utc>> {
        self.try_get(column)
    }
    fn opt_time(&self, column: &str) -> sqlx::Result<Option<DateTime<Utc>>> {
        self.try_get(column)
    }
    fn uuid(&self, column: &str) -> sqlx::Result<Uuid> {
        self.try_get(column)
    }
    fn opt_uuid(&self, column: &str) -> sqlx::Result<Option<Uuid>> {
        self.try_get(column)
    }
    fn json(&self, column: &str) -> sqlx::Result<Option<Value>> {
        self.try_get(column)
    }
}

/// A shared statement with its arguments bound as PostgreSQL takes them (`Now` is not bound:
/// it was rendered as `now()`).
fn bind<'q>(sql: &'q str, statement: &'q Statement<'_>) -> PgQuery<'q> {
    statement
        .args()
        .iter()
        .fold(sqlx::query(sql), |query, arg| match *arg {
            Arg::Int(v) => query.bind(v),
            Arg::Bool(v) => query.bind(v),
            Arg::Text(v) => query.bind(v),
            Arg::Uuid(v) => query.bind(v),
            Arg::Uuids(v) => query.bind(v),
            Arg::Texts(v) => query.bind(v),
            Arg::Now => query,
            Arg::Ago(d) => query.bind(micros(d)),
            Arg::Time(t) => query.bind(t),
        })
}

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

#[async_trait::async_trait]
impl SqlConn for PgExec<'_> {
    type Row = PgRow;

    async fn rows(&mut self, statement: &Statement<'_>) -> sqlx::Result<Vec<PgRow>> {
        let sql = statement.sql(Dialect::Postgres);
        bind(&sql, statement).fetch_all(self).await
    }

    async fn row(&mut self, statement: &Statement<'_>) -> sqlx::Result<Option<PgRow>> {
        let sql = statement.sql(Dialect::Postgres);
        bind(&sql, statement).fetch_optional(self).await
    }

    async fn run(&mut self, statement: &Statement<'_>) -> sqlx::Result<u64> {
        let sql = statement.sql(Dialect::Postgres);
        Ok(bind(&sql, statement).execute(self).await?.rows_affected())
    }
}

#[async_trait::async_trait]
impl<C: DerefMut<Target = PgConnection> + Send> SqlConn for PgConn<C> {
    type Row = PgRow;

    async fn rows(&mut self, statement: &Statement<'_>) -> sqlx::Result<Vec<PgRow>> {
        self.exec().rows(statement).await
    }

    async fn row(&mut self, statement: &Statement<'_>) -> sqlx::Result<Option<PgRow>> {
        self.exec().row(statement).await
    }

    async fn run(&mut self, statement: &Statement<'_>) -> sqlx::Result<u64> {
        self.exec().run(statement).await
    }
}
