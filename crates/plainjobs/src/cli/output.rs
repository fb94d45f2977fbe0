//! Text output: aligned tables, times with their zone and how long ago, durations for people,
//! a job named by what it does; and JSON.

use chrono::{DateTime, Utc};
use comfy_table::presets::NOTHING;
use comfy_table::{CellAlignment, Table};
use serde_json::Value;

use crate::cli::error::{failure, CliError};
use crate::schedule::{ScheduledCommand, ShellCommand};
use crate::settings::approximate_duration;
use crate::Job;

/// Prints `v` as indented JSON.
pub(crate) fn print_json(v: &impl serde::Serialize) -> Result<(), CliError> {
    println!("{}", to_json(v)?);
    Ok(())
}

pub(crate) fn to_json(v: &impl serde::Serialize) -> Result<String, CliError> {
    serde_json::to_string_pretty(v).map_err(|e| failure(e.to_string()))
}

/// A table with a header, columns separated by two spaces, no borders; the columns named in
/// `right` (numbers) aligned right.
pub(crate) fn table(header: &[&str], right: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(NOTHING).set_header(header.iter().copied());
    for (i, name) in header.iter().enumerate() {
        if let Some(column) = t.column_mut(i) {
            column.set_padding((0, 2));
            if right.contains(name) {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
    }
    t
}

/// The table as lines without trailing blanks.
pub(crate) fn render(t: &Table) -> String {
    t.lines()
        .map(|l| l.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `2026-11-30 02:33:06 UTC`.
pub(crate) fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `5m ago`, `in 2h`, `just now`.
pub(crate) fn ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let delta = now - t;
    let past = delta >= chrono::TimeDelta::zero();
    let span = delta.abs().to_std().unwrap_or_default();
    if span < std::time::Duration::from_secs(1) {
        return "just now".into();
    }
    // Whole seconds, rounded: a start 2 days out, seen a moment later, is "in 2d".
    let seconds = span.as_secs_f64().round() as u64;
    let text = if seconds < 60 {
        format!("{seconds}s")
    } else {
        approximate_duration(std::time::Duration::from_secs(seconds))
    };
    if past {
        format!("{text} ago")
    } else {
        format!("in {text}")
    }
}

/// `2026-11-30 02:33:06 UTC (5m ago)`, or `-`.
pub(crate) fn when_ago(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    t.map_or_else(|| "-".into(), |t| format!("{} ({})", when(t), ago(t, now)))
}

/// How long from `from` to `to`, or `-`.
pub(crate) fn took(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> String {
    match (from, to) {
        (Some(a), Some(b)) => approximate_duration((b - a).to_std().unwrap_or_default()),
        _ => "-".into(),
    }
}

/// The first line of `text`, at most `max` characters (ending in `…` when cut), with
/// `(+N lines)` when more lines follow.
pub(crate) fn clip(text: &str, max: usize) -> String {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().unwrap_or("").trim();
    let more = lines.count();
    let mut out: String = first.chars().take(max).collect();
    if first.chars().count() > max {
        out.pop();
        out.push('…');
    }
    if more > 0 {
        out.push_str(&format!(" (+{more} lines)"));
    }
    out
}

/// What a job is, for a person: a shell command as `$ command`, else its job name.
pub(crate) fn job_label(job_class: &str, parameters: Option<&Value>) -> String {
    let command = match job_class {
        ScheduledCommand::NAME => parameters
            .and_then(|p| p.get("args"))
            .and_then(|a| a.get(0))
            .and_then(Value::as_str),
        ShellCommand::NAME => parameters
            .and_then(|p| p.get("kwargs"))
            .and_then(|k| k.get("command"))
            .and_then(Value::as_str),
        _ => None,
    };
    command.map_or_else(|| job_class.to_string(), |c| format!("$ {c}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn clip_keeps_one_line_and_says_what_is_left() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("exactly10!", 10), "exactly10!");
        assert_eq!(clip("a long line of text", 10), "a long li…");
        assert_eq!(clip("first\nsecond\nthird", 20), "first (+2 lines)");
        assert_eq!(clip("", 5), "");
    }

    #[test]
    fn relative_times() {
        let now = Utc::now();
        assert_eq!(ago(now, now), "just now");
        assert_eq!(
            ago(now - chrono::TimeDelta::milliseconds(3200), now),
            "3s ago"
        );
        assert_eq!(ago(now - chrono::TimeDelta::seconds(300), now), "5m ago");
        assert_eq!(ago(now + chrono::TimeDelta::seconds(7200), now), "in 2h");
    }

    #[test]
    fn shell_jobs_are_shown_by_their_command() {
        let params = json!({"args": ["echo hi"], "kwargs": {}});
        assert_eq!(
            job_label(ScheduledCommand::NAME, Some(&params)),
            "$ echo hi"
        );
        assert_eq!(job_label("app.Report", Some(&params)), "app.Report");
    }

    #[test]
    fn tables_align_without_trailing_blanks() {
        let mut t = table(&["NAME", "N"], &["N"]);
        t.add_row(["a", "1"]);
        t.add_row(["bbb", "22"]);
        assert_eq!(render(&t), "NAME   N\na      1\nbbb   22");
    }
}
