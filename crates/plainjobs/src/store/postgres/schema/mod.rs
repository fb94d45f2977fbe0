//! The PostgreSQL schema: plain.jobs' tables exactly as a Plain deploy makes them, plus ours in
//! forms that plain.postgres' convergence leaves alone — kept by reading the catalog and fixing
//! what differs, never by trusting a history table. A Plain deploy after `migrate` has nothing
//! to change, and a deploy that ran before it (or in between) takes nothing of ours away that
//! `migrate` does not notice and put back.

mod catalog;
mod drift;
mod expected;

use sqlx::Connection;

pub(crate) use catalog::read_version as recorded_version;
use drift::Drift;
use expected::PLAIN_SCHEMA_LOCK;
pub(crate) use expected::SCHEMA_VERSION;

use super::{PgExec, PgStore};
use crate::store::{Migrated, SchemaReport};
use crate::{Error, Result};

/// Passes of read-and-fix before giving up: the first creates missing tables, the second fixes
/// the rest, the third only confirms.
const PASSES: usize = 3;

/// Brings the current schema to the expected one, in one transaction per pass under plain's
/// schema lock (so a Plain deploy never interleaves with it).
pub(crate) async fn migrate(store: &PgStore) -> Result<Migrated> {
    let mut conn = store.pool.acquire().await?;
    let mut changes = Vec::new();
    for _ in 0..PASSES {
        let mut tx = conn.begin().await?;
        let mut exec = PgExec::new(&mut tx, store.pooler);
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PLAIN_SCHEMA_LOCK)
            .execute(&mut exec)
            .await?;
        let found = catalog::read(&mut exec).await?;
        refuse_newer(found.version)?;
        let differences = drift::differences(&found);
        if differences.is_empty() {
            tx.commit().await?;
            return Ok(Migrated {
                changes,
                version: SCHEMA_VERSION,
            });
        }
        unfixable(&differences)?;
        for d in &differences {
            apply(&mut exec, d).await?;
            tracing::info!(change = %d.problem, "migrate: fixed");
            changes.push(d.problem.clone());
        }
        tx.commit().await?;
    }
    Err(Error::SchemaUnfixable {
        problems: vec!["the schema still differs after fixing it; see the log".into()],
    })
}

/// What differs from the expected schema, without changing anything.
pub(crate) async fn check(store: &PgStore) -> Result<SchemaReport> {
    let found = catalog::read(&mut store.conn().await?.exec()).await?;
    let problems = drift::differences(&found)
        .into_iter()
        .map(|d| d.problem)
        .collect();
    let tables = expected::TABLES.iter().all(|t| found.tables.contains(*t));
    let claim_index = claim_index_ok(&found);
    Ok(SchemaReport::new(
        found.version,
        SCHEMA_VERSION,
        problems,
        claim_index,
        tables,
    ))
}

fn claim_index_ok(found: &catalog::Catalog) -> bool {
    found
        .constraints
        .get("plainjobs_jobrequest_claim_excl")
        .is_some_and(|c| c.valid)
}

fn refuse_newer(found: Option<i64>) -> Result<()> {
    match found {
        Some(v) if v > SCHEMA_VERSION => Err(Error::SchemaTooNew {
            found: v,
            known: SCHEMA_VERSION,
        }),
        _ => Ok(()),
    }
}

fn unfixable(differences: &[Drift]) -> Result<()> {
    let problems: Vec<String> = differences
        .iter()
        .filter(|d| d.fix.is_empty())
        .map(|d| d.problem.clone())
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::SchemaUnfixable { problems })
    }
}

async fn apply(conn: &mut PgExec<'_>, d: &Drift) -> Result<()> {
    for statement in &d.fix {
        // The simple query protocol: a fix may be several statements (the tables).
        sqlx::Executor::execute(&mut *conn, statement.as_str())
            .await
            .map_err(|source| Error::SchemaChange {
                change: d.problem.clone(),
                statement: statement.clone(),
                source,
            })?;
    }
    Ok(())
}
