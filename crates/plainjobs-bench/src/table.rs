//! `table FILE…`: one Markdown table per question from the JSON rows the other subcommands
//! printed, each row of one cluster beside the same row of the others.

use std::path::PathBuf;

use anyhow::Context;
use serde_json::Value;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// JSON-lines files (other lines are skipped).
    pub files: Vec<PathBuf>,
}

type Render = fn(&Value) -> String;

struct Column {
    header: &'static str,
    render: Render,
}

macro_rules! col {
    ($h:expr, $f:expr) => {
        Column {
            header: $h,
            render: $f,
        }
    };
}

pub fn main(args: Args) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for f in &args.files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        rows.extend(
            text.lines()
                .filter(|l| l.starts_with('{'))
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|v| v["question"].is_string()),
        );
    }
    print!("{}", render_all(&rows));
    Ok(())
}

pub fn render_all(rows: &[Value]) -> String {
    let mut out = String::new();
    let is = |q: &'static str| move |r: &&Value| r["question"] == q;
    let limits: Vec<&Value> = rows.iter().filter(is("limits")).collect();
    let (checks, details): (Vec<&Value>, Vec<&Value>) = limits
        .into_iter()
        .partition(|r| r["row"].as_str().is_some_and(|s| s.starts_with("check:")));
    let sections: [(&str, Vec<&Value>, Vec<Column>); 6] = [
        (
            "Limits: each figure beside its limit, same run, same cluster",
            checks,
            check_columns(),
        ),
        ("Limits: the measurements", details, detail_columns()),
        (
            "Drain",
            rows.iter().filter(is("drain")).collect(),
            detail_columns(),
        ),
        (
            "Many workers",
            rows.iter().filter(is("many-workers")).collect(),
            many_columns(),
        ),
        (
            "Latency under load",
            rows.iter().filter(is("load")).collect(),
            load_columns(),
        ),
        (
            "Work shapes",
            rows.iter().filter(is("shapes")).collect(),
            shape_columns(),
        ),
    ];
    for (title, rows, columns) in sections {
        if rows.is_empty() {
            continue;
        }
        out.push_str(&format!("\n### {title}\n\n"));
        out.push_str(&table(&side_by_side(rows), &columns));
    }
    out
}

/// Rows in the order their labels first appear, each label's clusters together.
fn side_by_side(rows: Vec<&Value>) -> Vec<&Value> {
    let mut labels: Vec<&str> = Vec::new();
    for r in &rows {
        let l = r["row"].as_str().unwrap_or_default();
        if !labels.contains(&l) {
            labels.push(l);
        }
    }
    let mut out = Vec::with_capacity(rows.len());
    for l in labels {
        out.extend(
            rows.iter()
                .filter(|r| r["row"].as_str().unwrap_or_default() == l),
        );
    }
    out
}

fn table(rows: &[&Value], columns: &[Column]) -> String {
    let mut s = String::new();
    let headers: Vec<&str> = columns.iter().map(|c| c.header).collect();
    s.push_str(&format!("| cluster | row | {} |\n", headers.join(" | ")));
    s.push_str(&format!("|---|---|{}\n", "---:|".repeat(columns.len())));
    for r in rows {
        let cells: Vec<String> = columns.iter().map(|c| (c.render)(r)).collect();
        s.push_str(&format!(
            "| {} | {} | {} |\n",
            text(&r["cluster"]),
            text(&r["row"]),
            cells.join(" | ")
        ));
    }
    s
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".into(),
        other => other.to_string(),
    }
}

/// A number with thousands separators (integers) or `decimals` places.
fn num(v: &Value, decimals: usize) -> String {
    let Some(x) = v.as_f64() else {
        return "—".into();
    };
    if decimals > 0 {
        return format!("{x:.decimals$}");
    }
    let n = x.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut grouped = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    if n < 0 {
        format!("-{grouped}")
    } else {
        grouped
    }
}

/// The first of `keys` the row has, as a whole number.
fn first(r: &Value, keys: &[&str]) -> String {
    keys.iter()
        .map(|k| &r[*k])
        .find(|v| v.is_number())
        .map_or("—".into(), |v| num(v, 0))
}

fn cpu(r: &Value) -> String {
    match (
        r["worker_cpu_us_per_job"].as_f64(),
        r["server_cpu_us_per_job"].as_f64(),
    ) {
        (Some(w), Some(s)) => format!("{:.1} ({w:.1} + {s:.1})", w + s),
        (Some(w), None) => format!("{w:.1} (worker)"),
        _ => "—".into(),
    }
}

fn waits(r: &Value) -> String {
    match (r["lock_waits"].as_f64(), r["lwlock_waits"].as_f64()) {
        (Some(l), Some(lw)) => format!("{l:.3} / {lw:.3}"),
        _ => "—".into(),
    }
}

fn check_columns() -> Vec<Column> {
    vec![
        col!("measured", |r| num(&r["measured"], 2)),
        col!("limit", |r| num(&r["limit"], 2)),
        col!("ratio", |r| num(&r["ratio"], 3)),
        col!("target", |r| text(&r["target"])),
        col!("met", |r| match r["met"].as_bool() {
            Some(true) => "yes".into(),
            Some(false) => "**no**".into(),
            None => "—".into(),
        }),
    ]
}

fn detail_columns() -> Vec<Column> {
    vec![
        col!("C", |r| num(&r["concurrency"], 0)),
        col!("jobs", |r| num(&r["jobs"], 0)),
        col!("jobs/s", |r| num(&r["jobs_per_s"], 0)),
        col!("enqueue/s", |r| num(&r["enqueue_per_s"], 0)),
        col!("p50 / p99 ms", |r| lat(r, "lat")
            .or_else(|| lat(r, "commit"))
            .unwrap_or("—".into())),
        col!("jobs/claim", |r| num(&r["jobs_per_claim"], 1)),
        col!("stmts/job", |r| num(&r["statements_per_job"], 3)),
        col!("WAL B/job", |r| num(&r["wal_bytes_per_job"], 0)),
        col!("CPU µs/job (worker + server)", cpu),
        col!("note", |r| {
            let mut notes = Vec::new();
            for key in ["bulk_per_s", "copy_per_s"] {
                if let Some(x) = r[key].as_f64() {
                    notes.push(format!("{key} {}", num(&Value::from(x), 0)));
                }
            }
            for key in ["system", "skipped", "error"] {
                if let Some(s) = r[key].as_str() {
                    notes.push(s.to_string());
                }
            }
            if r["ran_twice"].as_u64().is_some_and(|n| n > 0) {
                notes.push(format!("RAN TWICE: {}", r["ran_twice"]));
            }
            notes.join("; ")
        }),
    ]
}

fn lat(r: &Value, prefix: &str) -> Option<String> {
    let p50 = r[format!("{prefix}_p50_ms")].as_f64()?;
    let p99 = r[format!("{prefix}_p99_ms")].as_f64()?;
    Some(format!("{p50:.2} / {p99:.2}"))
}

fn many_columns() -> Vec<Column> {
    vec![
        col!("C", |r| num(&r["concurrency"], 0)),
        col!("jobs", |r| num(&r["jobs"], 0)),
        col!("drain s", |r| num(&r["drain_s"], 2)),
        col!("jobs/s", |r| num(&r["jobs_per_s"], 0)),
        col!("× K=1", |r| num(&r["vs_one_process"], 2)),
        col!("claims", |r| num(&r["claims"], 0)),
        col!("short", |r| num(&r["short_claims"], 0)),
        col!("empty", |r| num(&r["empty_claims"], 0)),
        col!("jobs/claim", |r| num(&r["jobs_per_claim"], 1)),
        col!("Lock / LWLock waits", waits),
        col!("waits > 1 s", |r| num(&r["long_lock_waits"], 0)),
        col!("stmts/job", |r| num(&r["statements_per_job"], 3)),
        col!("WAL B/job", |r| num(&r["wal_bytes_per_job"], 0)),
        col!("CPU µs/job (worker + server)", cpu),
        col!("ran twice", |r| num(&r["ran_twice"], 0)),
        col!("missing", |r| num(&r["missing"], 0)),
    ]
}

fn load_columns() -> Vec<Column> {
    vec![
        col!("offered/s", |r| num(&r["offered_per_s"], 0)),
        // The calibration drain's row has a drain rate instead.
        col!("achieved/s", |r| first(
            r,
            &["achieved_per_s", "jobs_per_s"]
        )),
        col!("p50 ms", |r| num(&r["lat_p50_ms"], 2)),
        col!("p99 ms", |r| num(&r["lat_p99_ms"], 2)),
        col!("p99.9 ms", |r| num(&r["lat_p999_ms"], 2)),
        col!("max ms", |r| num(&r["lat_max_ms"], 2)),
        col!("not started", |r| num(&r["not_started"], 0)),
        col!("arrival lag p99 ms", |r| num(&r["arrival_lag_p99_ms"], 2)),
        col!("local dispatched", |r| num(&r["local_dispatched"], 0)),
        col!("stmts/job", |r| num(&r["statements_per_job"], 3)),
        col!("CPU µs/job (worker + server)", cpu),
        col!("Lock / LWLock waits", waits),
    ]
}

fn shape_columns() -> Vec<Column> {
    vec![
        col!("C", |r| num(&r["concurrency"], 0)),
        // Drains have a drain rate, the open-loop mix the rate its producer achieved.
        col!("jobs/s", |r| first(r, &["jobs_per_s", "achieved_per_s"])),
        col!("of ideal", |r| num(&r["of_ideal"], 3)),
        col!("enqueue/s", |r| num(&r["enqueue_per_s"], 0)),
        col!("short p50 / p99 / p99.9 ms", |r| {
            match (lat(r, "lat"), r["lat_p999_ms"].as_f64()) {
                (Some(l), Some(p)) => format!("{l} / {p:.2}"),
                _ => "—".into(),
            }
        }),
        col!("long p50 ms", |r| num(&r["long_lat_p50_ms"], 2)),
        col!("stmts/job", |r| num(&r["statements_per_job"], 3)),
        col!("WAL B/job", |r| num(&r["wal_bytes_per_job"], 0)),
        col!("CPU µs/job (worker + server)", cpu),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(num(&Value::from(1234567.0), 0), "1,234,567");
        assert_eq!(num(&Value::from(12.0), 0), "12");
        assert_eq!(num(&Value::Null, 0), "—");
    }

    #[test]
    fn a_row_of_each_cluster_sits_together() {
        let rows: Vec<Value> = ["a", "b", "a"]
            .iter()
            .zip(["prod", "prod", "ci"])
            .map(|(row, c)| serde_json::json!({"question": "drain", "row": row, "cluster": c}))
            .collect();
        let refs: Vec<&Value> = rows.iter().collect();
        let ordered: Vec<String> = side_by_side(refs)
            .iter()
            .map(|r| {
                format!(
                    "{}/{}",
                    r["row"].as_str().unwrap_or(""),
                    r["cluster"].as_str().unwrap_or("")
                )
            })
            .collect();
        assert_eq!(ordered, ["a/prod", "a/ci", "b/prod"]);
    }
}
