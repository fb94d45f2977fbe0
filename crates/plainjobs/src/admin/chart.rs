//! The overview's charts as plain SVG geometry, computed here and drawn by the template: a
//! stacked bar per time bucket for the results by status, and a sparkline per queue.

use chrono::DateTime;

use super::format;
use super::trend::{Tally, STATUSES};

/// Chart height in SVG units; each bar is 10 units wide (8 drawn).
const HEIGHT: f64 = 100.0;

/// A stacked bar chart of results by status.
#[derive(Debug, Clone)]
pub(crate) struct BarChart {
    pub width: usize,
    pub bars: Vec<Bar>,
    /// The largest bar's total, for the axis.
    pub max: String,
    /// Labels under the chart: first, middle, last bucket.
    pub labels: [String; 3],
    pub empty: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Bar {
    pub x: usize,
    pub segments: Vec<Segment>,
    /// The hover text of the whole bar.
    pub title: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub class: &'static str,
    pub y: String,
    pub height: String,
}

/// Bars for `buckets` of `(start, tally)`, start in Unix seconds.
pub(crate) fn bars(buckets: &[(i64, Tally)], bucket_minutes: i64) -> BarChart {
    let max = buckets.iter().map(|(_, t)| t.total()).max().unwrap_or(0);
    let scale = if max > 0 { HEIGHT / max as f64 } else { 0.0 };
    let bars = buckets
        .iter()
        .enumerate()
        .map(|(i, (start, tally))| {
            let mut top = HEIGHT;
            let mut segments = Vec::new();
            for (k, (_, class)) in STATUSES.iter().enumerate() {
                let n = tally.by_status[k];
                if n == 0 {
                    continue;
                }
                let h = (n as f64 * scale).max(0.8);
                top -= h;
                segments.push(Segment {
                    class,
                    y: format!("{top:.2}"),
                    height: format!("{h:.2}"),
                });
            }
            Bar {
                x: i * 10,
                segments,
                title: bar_title(*start, bucket_minutes, tally),
            }
        })
        .collect();
    let label = |i: usize| {
        buckets
            .get(i)
            .map(|(start, _)| clock(*start, bucket_minutes))
            .unwrap_or_default()
    };
    let n = buckets.len();
    BarChart {
        width: n * 10,
        bars,
        max: format::count(max),
        labels: [label(0), label(n / 2), label(n.saturating_sub(1))],
        empty: max == 0,
    }
}

/// `12:03` (or `Mar 1 12:00` for buckets of a day's scale).
fn clock(start: i64, bucket_minutes: i64) -> String {
    let Some(t) = DateTime::from_timestamp(start, 0) else {
        return String::new();
    };
    if bucket_minutes >= 15 {
        t.format("%b %-d %H:%M").to_string()
    } else {
        t.format("%H:%M").to_string()
    }
}

fn bar_title(start: i64, bucket_minutes: i64, tally: &Tally) -> String {
    let mut parts = vec![format!(
        "{} UTC, {} min: {} results",
        clock(start, bucket_minutes),
        bucket_minutes,
        format::count(tally.total())
    )];
    for (k, (status, _)) in STATUSES.iter().enumerate() {
        if tally.by_status[k] > 0 {
            parts.push(format!(
                "{} {}",
                format::count(tally.by_status[k]),
                status.to_lowercase()
            ));
        }
    }
    parts.join(" · ")
}

/// A sparkline's `points` for totals over time, in a 60×16 box.
pub(crate) fn sparkline(totals: &[i64]) -> String {
    let max = totals.iter().copied().max().unwrap_or(0).max(1) as f64;
    let step = if totals.len() > 1 {
        60.0 / (totals.len() - 1) as f64
    } else {
        0.0
    };
    totals
        .iter()
        .enumerate()
        .map(|(i, n)| {
            format!(
                "{:.1},{:.1}",
                i as f64 * step,
                15.0 - *n as f64 / max * 14.0
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_stack_statuses_and_scale_to_the_largest() {
        let a = Tally {
            by_status: [6, 0, 0, 0, 2],
            ..Default::default()
        };
        let b = Tally::default();
        let chart = bars(&[(0, a), (60, b)], 1);
        assert_eq!(chart.width, 20);
        assert_eq!(chart.max, "8");
        assert_eq!(chart.bars[0].segments.len(), 2);
        assert_eq!(chart.bars[0].segments[0].class, "successful");
        assert_eq!(chart.bars[0].segments[0].height, "75.00");
        assert_eq!(chart.bars[0].segments[1].y, "0.00");
        assert!(chart.bars[1].segments.is_empty());
        assert!(chart.bars[0].title.contains("2 errored"));
        assert_eq!(chart.labels[0], "00:00");
        assert!(!chart.empty);
        assert_eq!(sparkline(&[0, 2]), "0.0,15.0 60.0,1.0");
    }
}
