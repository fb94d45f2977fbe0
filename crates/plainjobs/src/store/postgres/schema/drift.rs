//! Where the catalog differs from the expected schema, and the statements that fix each
//! difference. Every fix is written so that a Plain deploy afterwards has nothing to change.

use super::catalog::{ActualObject, Catalog};
use super::expected::{
    version_comment, Column, Constraint, Index, COLUMNS, CREATE_TABLES, INDEXES, NOTIFY_BODY,
    NOTIFY_FUNCTION, NOTIFY_QUIET, NOTIFY_TRIGGER, OBSOLETE_INDEXES, OURS, PAUSED_FUNCTION,
    PLAIN_MIGRATION_RECORD, SCHEMA_VERSION, TABLES, UNIQUE,
};

/// One difference: what is wrong (for messages and reports), and the statements that fix it
/// (empty when only a person can: say what to do in `problem`).
#[derive(Debug, Clone)]
pub(crate) struct Drift {
    pub problem: String,
    pub fix: Vec<String>,
}

fn drift(problem: String, fix: Vec<String>) -> Drift {
    Drift { problem, fix }
}

/// Every difference, in the order the fixes must run.
pub(crate) fn differences(c: &Catalog) -> Vec<Drift> {
    let missing: Vec<&str> = TABLES
        .iter()
        .copied()
        .filter(|t| !c.tables.contains(*t))
        .collect();
    if !missing.is_empty() {
        // Everything else is judged once the tables exist.
        let problem = format!("tables missing: {}", missing.join(", "));
        return vec![drift(problem, vec![CREATE_TABLES.to_string()])];
    }
    let mut out = Vec::new();
    out.extend(obsolete(c));
    out.extend(COLUMNS.iter().filter_map(|col| column(c, col)));
    out.extend(INDEXES.iter().filter_map(|i| index(c, i)));
    out.extend(UNIQUE.iter().filter_map(|u| constraint(c, u)));
    out.extend(OURS.iter().filter_map(|o| constraint(c, o)));
    out.extend(trigger(c));
    out.extend(paused_function(c));
    out.extend(plain_record(c));
    out.extend(storage_parameters(c));
    out.extend(version(c));
    out
}

fn obsolete(c: &Catalog) -> Vec<Drift> {
    OBSOLETE_INDEXES
        .iter()
        .filter(|name| c.indexes.contains_key(**name))
        .map(|name| {
            drift(
                format!("index {name} (made by an earlier plainjobs) is left over"),
                vec![format!("DROP INDEX IF EXISTS {name}")],
            )
        })
        .collect()
}

fn column(c: &Catalog, col: &Column) -> Option<Drift> {
    let what = format!("column {}.{}", col.table, col.name);
    let alter = |change: String| {
        format!(
            "ALTER TABLE {} ALTER COLUMN {} {change}",
            col.table, col.name
        )
    };
    let Some(actual) = c
        .columns
        .get(&(col.table.to_string(), col.name.to_string()))
    else {
        let mut add = format!(
            "ALTER TABLE {} ADD COLUMN {} {}",
            col.table, col.name, col.ty
        );
        if let Some((_, sql)) = col.default {
            add.push_str(&format!(" DEFAULT {sql}"));
        }
        if col.not_null {
            add.push_str(" NOT NULL");
        }
        return Some(drift(format!("{what} is missing"), vec![add]));
    };
    let mut fix = Vec::new();
    let mut problems = Vec::new();
    if actual.ty != col.ty {
        if col.ty == "text" && actual.ty.starts_with("character varying") {
            // Binary-coercible: no rewrite of the table or its indexes.
            fix.push(alter("TYPE text".into()));
        }
        problems.push(format!("is {}, expected {}", actual.ty, col.ty));
    }
    match (col.default, actual.default.as_deref()) {
        (Some((shown, sql)), found) if found != Some(shown) => {
            fix.push(alter(format!("SET DEFAULT {sql}")));
            problems.push(format!(
                "default {}, expected {shown}",
                found.unwrap_or("none")
            ));
        }
        (None, Some(found)) => {
            fix.push(alter("DROP DEFAULT".into()));
            problems.push(format!("default {found}, expected none"));
        }
        _ => {}
    }
    if actual.not_null != col.not_null {
        fix.push(alter(
            if col.not_null {
                "SET NOT NULL"
            } else {
                "DROP NOT NULL"
            }
            .into(),
        ));
        problems.push(format!(
            "NOT NULL is {}, expected {}",
            actual.not_null, col.not_null
        ));
    }
    (!problems.is_empty()).then(|| drift(format!("{what}: {}", problems.join("; ")), fix))
}

fn index(c: &Catalog, i: &Index) -> Option<Drift> {
    let tail = format!("USING btree ({})", i.columns);
    let create = format!("CREATE INDEX {} ON {} ({})", i.name, i.table, i.columns);
    let recreate = vec![format!("DROP INDEX IF EXISTS {}", i.name), create.clone()];
    match c.indexes.get(i.name) {
        None => Some(drift(format!("index {} is missing", i.name), vec![create])),
        Some(actual) if !actual.valid => {
            Some(drift(format!("index {} is invalid", i.name), recreate))
        }
        Some(actual) if !actual.definition.ends_with(&tail) || actual.table != i.table => {
            let problem = format!(
                "index {} is `{}`, expected `{tail}`",
                i.name, actual.definition
            );
            Some(drift(problem, recreate))
        }
        Some(_) => None,
    }
}

fn constraint(c: &Catalog, k: &Constraint) -> Option<Drift> {
    let add = format!(
        "ALTER TABLE {} ADD CONSTRAINT {} {}",
        k.table, k.name, k.definition
    );
    let readd = vec![
        format!(
            "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}",
            k.table, k.name
        ),
        add.clone(),
    ];
    let problem = match c.constraints.get(k.name) {
        None => {
            return Some(drift(
                format!("constraint {} is missing", k.name),
                vec![add],
            ))
        }
        Some(ActualObject { valid: false, .. }) => {
            format!("constraint {}'s index is invalid", k.name)
        }
        Some(actual) if actual.definition != k.definition || actual.table != k.table => {
            format!("constraint {} is `{}`", k.name, actual.definition)
        }
        Some(_) => return None,
    };
    Some(drift(problem, readd))
}

fn trigger(c: &Catalog) -> Option<Drift> {
    let problem = match &c.trigger {
        None => "the insert notification trigger is missing".to_string(),
        Some(t) if t.function != "plainjobs_notify_jobrequest" || !t.as_expected => {
            format!(
                "the insert notification trigger calls {} or fires at the wrong time",
                t.function
            )
        }
        Some(t) if !t.source.contains(NOTIFY_BODY) => {
            "the insert notification sends an older payload".to_string()
        }
        Some(t) if !t.source.contains(NOTIFY_QUIET) => {
            "the insert notification is older than this plainjobs (it notifies inside every enqueue)"
                .to_string()
        }
        Some(_) => return None,
    };
    let mut fix = vec![NOTIFY_FUNCTION.to_string()];
    fix.extend(NOTIFY_TRIGGER.iter().map(|s| s.to_string()));
    Some(drift(problem, fix))
}

fn paused_function(c: &Catalog) -> Option<Drift> {
    (!c.paused_function).then(|| {
        drift(
            "the paused-queues function plainjobs_paused_queues() is missing".into(),
            vec![PAUSED_FUNCTION.to_string()],
        )
    })
}

fn plain_record(c: &Catalog) -> Option<Drift> {
    (!c.plain_migration_recorded).then(|| {
        drift(
            "plain.jobs' migration is not recorded in plainmigrations (a Plain deploy would try to create the tables again)".into(),
            PLAIN_MIGRATION_RECORD.iter().map(|s| s.to_string()).collect(),
        )
    })
}

/// plain.postgres resets every storage parameter its models do not declare: ours would be
/// undone at each deploy, so none are kept.
fn storage_parameters(c: &Catalog) -> Vec<Drift> {
    let mut out = Vec::new();
    for (table, options) in &c.reloptions {
        if options.is_empty() {
            continue;
        }
        let keys: Vec<&str> = options
            .iter()
            .map(|o| o.split('=').next().unwrap_or(o))
            .collect();
        out.push(drift(
            format!("{table} has storage parameters ({})", options.join(", ")),
            vec![format!("ALTER TABLE {table} RESET ({})", keys.join(", "))],
        ));
    }
    out.sort_by(|a, b| a.problem.cmp(&b.problem));
    out
}

fn version(c: &Catalog) -> Option<Drift> {
    (c.version != Some(SCHEMA_VERSION)).then(|| {
        let found = c.version.map_or("none".to_string(), |v| v.to_string());
        drift(
            format!("schema version {found}, expected {SCHEMA_VERSION}"),
            vec![
                version_comment(SCHEMA_VERSION),
                // The history of migrations 1–5, kept by versions before 6; plain calls it an
                // unknown table.
                "DROP TABLE IF EXISTS plainjobs_rs_migrations".into(),
            ],
        )
    })
}
