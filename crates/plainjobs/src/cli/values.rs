//! Parsers of flag values, for clap: each refuses bad input with a message that says what is
//! accepted (clap adds the flag and exits 2).

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Args;

use crate::settings::parse_duration;

/// A duration: `90s`, `500ms`, `5m`, `1h30m`, `7d`.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    parse_duration(text).map_err(|e| e.to_string())
}

/// A whole number of at least 1.
pub(crate) fn at_least_one(text: &str) -> Result<usize, String> {
    match text.trim().parse::<i128>() {
        Ok(n) if n >= 1 => usize::try_from(n).map_err(|_| format!("{n} is too large")),
        Ok(n) => Err(format!(
            "{n} is less than 1: give a whole number of at least 1"
        )),
        Err(_) => Err(format!("{text:?} is not a whole number")),
    }
}

/// A queue name: not empty.
pub(crate) fn queue_name(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("a queue name cannot be empty (the default queue is \"default\")".into());
    }
    Ok(text.to_string())
}

/// A point in time: a duration ago (`2h` is two hours before now), or an RFC 3339 time
/// (`2026-11-30T08:00:00Z`), or a day (`2026-11-30`, midnight UTC).
pub(crate) fn point_in_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(ago) = parse_duration(text) {
        let ago = chrono::Duration::from_std(ago).map_err(|e| e.to_string())?;
        return Ok(Utc::now() - ago);
    }
    if let Some(t) = crate::params::plain_datetime::parse(text) {
        return Ok(t);
    }
    if let Ok(day) = chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
        if let Some(midnight) = day.and_hms_opt(0, 0, 0) {
            return Ok(midnight.and_utc());
        }
    }
    Err(format!(
        "{text:?} is not a time: give a duration ago (2h, 1d) or a time (2026-11-30T08:00:00Z, 2026-11-30)"
    ))
}

/// `--since` and `--until`: a time range.
#[derive(Debug, Clone, Default, Args)]
pub struct TimeRange {
    /// Only at or after this time: a duration ago (2h, 1d) or a time (2026-11-30T08:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = point_in_time)]
    pub since: Option<DateTime<Utc>>,
    /// Only before this time: a duration ago (30m) or a time (2026-11-30).
    #[arg(long, value_name = "TIME", value_parser = point_in_time)]
    pub until: Option<DateTime<Utc>>,
}

impl TimeRange {
    /// Whether a bound is given.
    pub(crate) fn is_set(&self) -> bool {
        self.since.is_some() || self.until.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_names() {
        assert_eq!(at_least_one("3"), Ok(3));
        assert!(at_least_one("0").unwrap_err().contains("at least 1"));
        assert!(at_least_one("-1").unwrap_err().contains("at least 1"));
        assert!(at_least_one("many").is_err());
        assert!(queue_name("").is_err());
        assert!(queue_name("  ").is_err());
        assert_eq!(queue_name("emails").as_deref(), Ok("emails"));
    }

    #[test]
    fn points_in_time() {
        let two_hours_ago = point_in_time("2h").unwrap();
        let off = Utc::now() - two_hours_ago - chrono::TimeDelta::hours(2);
        assert!(off.abs() < chrono::TimeDelta::seconds(5), "{off}");
        let t = point_in_time("2026-11-30T08:00:00Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-30T08:00:00+00:00");
        let day = point_in_time("2026-11-30").unwrap();
        assert_eq!(day.to_rfc3339(), "2026-11-30T00:00:00+00:00");
        assert!(point_in_time("yesterday").unwrap_err().contains("2h"));
    }
}
