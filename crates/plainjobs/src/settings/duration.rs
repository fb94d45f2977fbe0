//! Durations in configuration and on the command line: `90s`, `500ms`, `5m`, `1h30m`, `7d`.
//!
//! A number needs a unit: `retention = 7` could mean seven seconds or seven days, and reading it
//! the wrong way deletes a week of results, so it is refused with a message that suggests the
//! units. Zero alone is allowed (it means "off" for the settings that can be off).

use std::time::Duration;

/// A text that is not a duration; the message says why and what is accepted.
///
/// # Example
/// ```
/// let e = plainjobs::settings::parse_duration("7").unwrap_err();
/// assert!(e.to_string().contains("7d"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(.0))]
pub struct DurationError(pub String);

fn describe(text: &str) -> String {
    let t = text.trim();
    if !t.is_empty() && t.parse::<f64>().is_ok() {
        return format!(
            "{text:?} has no unit: write {t}s, {t}m, {t}h or {t}d (units: ms, s, m, h, d, w; combined as in 1h30m)"
        );
    }
    format!("{text:?} is not a duration (use a number and a unit: 500ms, 90s, 5m, 1h30m, 7d)")
}

/// Parses a duration: a number with a unit (`ms`, `s`, `m`, `h`, `d`, `w`, and humantime's
/// long names such as `min` or `days`), several of them combined (`1h30m`, `1h 30m`), or one
/// decimal number with a unit (`1.5s`); `0` alone is zero.
///
/// # Errors
/// [`DurationError`], whose message says what is accepted (and, for a bare number, which
/// units were probably meant).
///
/// # Example
/// ```
/// use std::time::Duration;
/// use plainjobs::settings::parse_duration;
/// assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
/// assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
/// assert!(parse_duration("7").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    let bad = || DurationError(text.to_string());
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    if t.starts_with(|c: char| c.is_ascii_digit()) {
        if let Ok(d) = humantime::parse_duration(t) {
            return Ok(d);
        }
    }
    decimal(t).ok_or_else(bad)
}

/// `1.5s`, `0.25h`: one decimal number and one short unit (humantime takes whole numbers).
fn decimal(t: &str) -> Option<Duration> {
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (number, unit) = t.split_at(split);
    let n: f64 = number.parse().ok()?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}

const UNITS: [(&str, u128); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
];

/// Writes a duration exactly, in the largest units that fit, as [`parse_duration`] reads it
/// back: `7d`, `1h30m`, `1s500ms`, `0s`. Below a millisecond is dropped.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use plainjobs::settings::format_duration;
/// assert_eq!(format_duration(Duration::from_secs(604_800)), "7d");
/// assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
/// ```
pub fn format_duration(d: Duration) -> String {
    let mut left = d.as_millis();
    if left == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in UNITS {
        if left >= size {
            out.push_str(&format!("{}{unit}", left / size));
            left %= size;
        }
    }
    out
}

/// Writes a duration for reading, to about three significant figures: `7d`, `1h30m`, `42s`,
/// `1.2s`, `350ms`. Not exact (see [`format_duration`] for that).
///
/// # Example
/// ```
/// use std::time::Duration;
/// use plainjobs::settings::approximate_duration;
/// assert_eq!(approximate_duration(Duration::from_millis(1234)), "1.2s");
/// assert_eq!(approximate_duration(Duration::from_secs(5_432)), "1h30m");
/// ```
pub fn approximate_duration(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0..=999 => format!("{ms}ms"),
        1000..=9_999 => format!("{:.1}s", d.as_secs_f64()),
        10_000..=59_999 => format!("{}s", d.as_secs()),
        _ => {
            // The two largest units, rounded down: 1h30m, 2d3h, 5m12s.
            let mut left = ms;
            let mut parts = Vec::new();
            for (unit, size) in UNITS.iter().take(4) {
                if left >= *size || !parts.is_empty() {
                    let n = left / size;
                    left %= size;
                    if n > 0 {
                        parts.push(format!("{n}{unit}"));
                    } else {
                        parts.push(String::new());
                    }
                }
                if parts.len() == 2 {
                    break;
                }
            }
            parts.concat()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_combinations_and_decimals() {
        let cases = [
            ("0", 0),
            ("90s", 90_000),
            ("500ms", 500),
            ("5m", 300_000),
            ("2h", 7_200_000),
            ("7d", 604_800_000),
            ("1h30m", 5_400_000),
            ("1h 30m", 5_400_000),
            ("2min", 120_000),
            ("1.5s", 1500),
            (" 3s ", 3000),
        ];
        for (text, ms) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_numbers_without_units_and_nonsense() {
        for bad in ["", "7", "90", "m", "5x", "-1s", "1.2.3s", "five", "s5"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        let e = parse_duration("7").unwrap_err().to_string();
        assert!(
            e.contains("no unit") && e.contains("7d") && e.contains("7s"),
            "{e}"
        );
        let e = parse_duration("soon").unwrap_err().to_string();
        assert!(e.contains("soon") && e.contains("1h30m"), "{e}");
    }

    #[test]
    fn exact_format_reads_back() {
        for ms in [
            0u64,
            1,
            999,
            1000,
            1500,
            60_000,
            5_400_000,
            604_800_000,
            90_061_001,
        ] {
            let d = Duration::from_millis(ms);
            let text = format_duration(d);
            assert_eq!(parse_duration(&text), Ok(d), "{text}");
        }
        assert_eq!(format_duration(Duration::from_secs(604_800)), "7d");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
    }

    #[test]
    fn approximate_format() {
        let cases = [
            (0, "0ms"),
            (350, "350ms"),
            (1234, "1.2s"),
            (42_000, "42s"),
            (312_000, "5m12s"),
            (3_600_000, "1h"),
            (5_400_000, "1h30m"),
            (183_600_000, "2d3h"),
            (604_800_000, "7d"),
        ];
        for (ms, text) in cases {
            assert_eq!(
                approximate_duration(Duration::from_millis(ms)),
                text,
                "{ms}"
            );
        }
    }
}
