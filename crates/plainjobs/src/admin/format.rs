//! How times, ages and durations read on the dashboard.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// A time in UTC, to the second: `2026-03-01 12:00:03`.
pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A time, or a dash.
pub(crate) fn opt_time(t: Option<DateTime<Utc>>) -> String {
    t.map(time).unwrap_or_else(|| "—".into())
}

/// A span of seconds in its two largest units: `45s`, `3m 4s`, `2h 5m`, `3d 4h`.
pub(crate) fn span(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

/// How long ago `t` was, at `now`: `3m 4s ago`, or `in 5s` for a time to come.
pub(crate) fn ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - t).num_seconds();
    if seconds < 0 {
        format!("in {}", span(-seconds))
    } else {
        format!("{} ago", span(seconds))
    }
}

/// A run's length: `850 ms`, `12.4 s`, `3m 4s`; a dash without both ends.
pub(crate) fn duration(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> String {
    let (Some(start), Some(end)) = (start, end) else {
        return "—".into();
    };
    let ms = (end - start).num_milliseconds().max(0);
    match ms {
        0..1000 => format!("{ms} ms"),
        1000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => span(ms / 1000),
    }
}

/// A count with thousands separated: `1,234,567`.
pub(crate) fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Parameters as indented JSON (escaped by the template like any text).
pub(crate) fn json(v: Option<&Value>) -> String {
    match v {
        Some(v) => serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()),
        None => "null".into(),
    }
}

/// The first line of an error text, at most `max` characters.
pub(crate) fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut out: String = line.chars().take(max).collect();
    if line.chars().count() > max {
        out.push('…');
    }
    out
}

/// The last eight hex digits of a uuid, for tables: the random end (the start of a version 7
/// uuid is its time, the same for jobs made together).
pub(crate) fn short(uuid: &uuid::Uuid) -> String {
    let hex = uuid.simple().to_string();
    hex[hex.len() - 8..].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn spans_read_in_their_two_largest_units() {
        assert_eq!(span(45), "45s");
        assert_eq!(span(184), "3m 4s");
        assert_eq!(span(7500), "2h 5m");
        assert_eq!(span(273_600), "3d 4h");
        let now = Utc::now();
        assert_eq!(ago(now - TimeDelta::seconds(5), now), "5s ago");
        assert_eq!(ago(now + TimeDelta::seconds(5), now), "in 5s");
    }

    #[test]
    fn durations_counts_and_lines() {
        let t = Utc::now();
        assert_eq!(
            duration(Some(t), Some(t + TimeDelta::milliseconds(850))),
            "850 ms"
        );
        assert_eq!(
            duration(Some(t), Some(t + TimeDelta::milliseconds(12_400))),
            "12.4 s"
        );
        assert_eq!(duration(Some(t), None), "—");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(-1000), "-1,000");
        assert_eq!(count(12), "12");
        assert_eq!(first_line("\n  boom\nmore", 10), "  boom");
        assert_eq!(first_line("abcdef", 3), "abc…");
    }
}
