//! What the database's catalog says about our tables, in the current schema: the objects the
//! convergence compares with what is expected. Nothing here trusts a history table.

use std::collections::{HashMap, HashSet};

use sqlx::Row;

use super::expected::TABLES;
use crate::store::postgres::PgExec;
use crate::Result;

/// A column as the catalog shows it.
pub(crate) struct ActualColumn {
    pub ty: String,
    pub not_null: bool,
    pub default: Option<String>,
}

/// An index or a constraint: its table, its definition (`pg_get_indexdef` /
/// `pg_get_constraintdef`), and whether its index is valid.
pub(crate) struct ActualObject {
    pub table: String,
    pub definition: String,
    pub valid: bool,
}

/// The notify trigger: its function, the function's source, and whether it fires as expected
/// (AFTER INSERT FOR EACH STATEMENT, enabled).
pub(crate) struct ActualTrigger {
    pub function: String,
    pub source: String,
    pub as_expected: bool,
}

pub(crate) struct Catalog {
    pub tables: HashSet<String>,
    pub columns: HashMap<(String, String), ActualColumn>,
    pub indexes: HashMap<String, ActualObject>,
    pub constraints: HashMap<String, ActualObject>,
    pub trigger: Option<ActualTrigger>,
    /// `plainjobs_paused_queues()` exists.
    pub paused_function: bool,
    /// plain.jobs' migration is recorded as applied in `plainmigrations`.
    pub plain_migration_recorded: bool,
    /// Storage parameters (`key=value`) by table.
    pub reloptions: HashMap<String, Vec<String>>,
    /// The schema version recorded by plainjobs: the comment on our function, else (before
    /// version 6) the newest row of the old history table.
    pub version: Option<i64>,
}

/// `AFTER INSERT … FOR EACH STATEMENT`: `tgtype` 4 (INSERT, statement level, after).
const AFTER_INSERT_PER_STATEMENT: i16 = 4;

pub(crate) async fn read(conn: &mut PgExec<'_>) -> Result<Catalog> {
    let tables: Vec<String> = TABLES.iter().map(|t| t.to_string()).collect();
    let (present, reloptions) = read_tables(conn, &tables).await?;
    Ok(Catalog {
        tables: present,
        columns: read_columns(conn, &tables).await?,
        indexes: read_indexes(conn, &tables).await?,
        constraints: read_constraints(conn, &tables).await?,
        trigger: read_trigger(conn).await?,
        paused_function: read_paused_function(conn).await?,
        plain_migration_recorded: read_plain_record(conn).await?,
        reloptions,
        version: read_version(conn).await?,
    })
}

type Tables = (HashSet<String>, HashMap<String, Vec<String>>);

async fn read_tables(conn: &mut PgExec<'_>, tables: &[String]) -> Result<Tables> {
    let rows = sqlx::query(
        "SELECT relname::text, reloptions FROM pg_class
         WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r' AND relname = ANY($1)",
    )
    .bind(tables)
    .fetch_all(&mut *conn)
    .await?;
    let mut present = HashSet::new();
    let mut options = HashMap::new();
    for row in rows {
        let name: String = row.try_get(0)?;
        let opts: Option<Vec<String>> = row.try_get(1)?;
        present.insert(name.clone());
        options.insert(name, opts.unwrap_or_default());
    }
    Ok((present, options))
}

async fn read_columns(
    conn: &mut PgExec<'_>,
    tables: &[String],
) -> Result<HashMap<(String, String), ActualColumn>> {
    let rows = sqlx::query(
        "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                pg_get_expr(d.adbin, d.adrelid)
         FROM pg_attribute a
         JOIN pg_class c ON c.oid = a.attrelid
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
           AND c.relname = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped",
    )
    .bind(tables)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = HashMap::new();
    for row in rows {
        let column = ActualColumn {
            ty: row.try_get(2)?,
            not_null: row.try_get(3)?,
            default: row.try_get(4)?,
        };
        out.insert((row.try_get(0)?, row.try_get(1)?), column);
    }
    Ok(out)
}

async fn read_indexes(
    conn: &mut PgExec<'_>,
    tables: &[String],
) -> Result<HashMap<String, ActualObject>> {
    let rows = sqlx::query(
        "SELECT ic.relname::text, c.relname::text, pg_get_indexdef(i.indexrelid), i.indisvalid
         FROM pg_index i
         JOIN pg_class ic ON ic.oid = i.indexrelid
         JOIN pg_class c ON c.oid = i.indrelid
         WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY($1)",
    )
    .bind(tables)
    .fetch_all(&mut *conn)
    .await?;
    objects(rows)
}

async fn read_constraints(
    conn: &mut PgExec<'_>,
    tables: &[String],
) -> Result<HashMap<String, ActualObject>> {
    let rows = sqlx::query(
        "SELECT con.conname::text, c.relname::text, pg_get_constraintdef(con.oid),
                COALESCE((SELECT indisvalid FROM pg_index WHERE indexrelid = con.conindid), true)
         FROM pg_constraint con
         JOIN pg_class c ON c.oid = con.conrelid
         WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY($1)",
    )
    .bind(tables)
    .fetch_all(&mut *conn)
    .await?;
    objects(rows)
}

fn objects(rows: Vec<sqlx::postgres::PgRow>) -> Result<HashMap<String, ActualObject>> {
    let mut out = HashMap::new();
    for row in rows {
        let object = ActualObject {
            table: row.try_get(1)?,
            definition: row.try_get(2)?,
            valid: row.try_get(3)?,
        };
        out.insert(row.try_get(0)?, object);
    }
    Ok(out)
}

async fn read_trigger(conn: &mut PgExec<'_>) -> Result<Option<ActualTrigger>> {
    let row = sqlx::query(
        "SELECT p.proname::text, p.prosrc, t.tgtype, t.tgenabled <> 'D'
         FROM pg_trigger t
         JOIN pg_class c ON c.oid = t.tgrelid
         JOIN pg_proc p ON p.oid = t.tgfoid
         WHERE c.relnamespace = current_schema()::regnamespace
           AND c.relname = 'plainjobs_jobrequest' AND t.tgname = 'plainjobs_jobrequest_notify'",
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let tgtype: i16 = row.try_get(2)?;
    let enabled: bool = row.try_get(3)?;
    Ok(Some(ActualTrigger {
        function: row.try_get(0)?,
        source: row.try_get(1)?,
        as_expected: enabled && tgtype == AFTER_INSERT_PER_STATEMENT,
    }))
}

async fn read_paused_function(conn: &mut PgExec<'_>) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'plainjobs_paused_queues'
                        AND pronamespace = current_schema()::regnamespace)",
    )
    .fetch_one(&mut *conn)
    .await?)
}

async fn read_plain_record(conn: &mut PgExec<'_>) -> Result<bool> {
    let has_table: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_class WHERE relname = 'plainmigrations' AND relkind = 'r'
                        AND relnamespace = current_schema()::regnamespace)",
    )
    .fetch_one(&mut *conn)
    .await?;
    if !has_table {
        return Ok(false);
    }
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM plainmigrations WHERE app = 'plainjobs' AND name = '0001_initial')",
    )
    .fetch_one(&mut *conn)
    .await?)
}

/// The schema version plainjobs recorded (None when it never migrated this schema).
pub(crate) async fn read_version(conn: &mut PgExec<'_>) -> Result<Option<i64>> {
    let comment: Option<String> = sqlx::query_scalar(
        "SELECT obj_description(p.oid, 'pg_proc') FROM pg_proc p
         WHERE p.proname = 'plainjobs_notify_jobrequest' AND p.pronamespace = current_schema()::regnamespace",
    )
    .fetch_optional(&mut *conn)
    .await?
    .flatten();
    if let Some(v) = comment.as_deref().and_then(parse_version_comment) {
        return Ok(Some(v));
    }
    let has_history: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_class WHERE relname = 'plainjobs_rs_migrations' AND relkind = 'r'
                        AND relnamespace = current_schema()::regnamespace)",
    )
    .fetch_one(&mut *conn)
    .await?;
    if !has_history {
        return Ok(None);
    }
    Ok(
        sqlx::query_scalar("SELECT max(version) FROM plainjobs_rs_migrations")
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// Reads `plainjobs schema N`.
fn parse_version_comment(comment: &str) -> Option<i64> {
    comment
        .strip_prefix("plainjobs schema ")?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_comments() {
        assert_eq!(super::parse_version_comment("plainjobs schema 6"), Some(6));
        assert_eq!(super::parse_version_comment("something else"), None);
        assert_eq!(super::parse_version_comment("plainjobs schema x"), None);
    }
}
