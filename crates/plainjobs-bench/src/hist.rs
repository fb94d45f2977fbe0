//! Latency percentiles from samples in nanoseconds, through an HDR histogram (3 significant
//! digits: a p99.9 of 1.234 ms is exact to a microsecond).

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// The samples' count and percentiles, in milliseconds, as row fields named `{prefix}_p50_ms`
/// etc. (all null when there are none).
pub fn summary(prefix: &str, samples_ns: &[u64]) -> Value {
    let mut row = json!({ format!("{prefix}_n"): samples_ns.len() });
    let hist = histogram(samples_ns);
    for (name, q) in [("p50", 0.50), ("p99", 0.99), ("p999", 0.999)] {
        row[format!("{prefix}_{name}_ms")] =
            json!(hist.as_ref().map(|h| ms(h.value_at_quantile(q))));
    }
    row[format!("{prefix}_max_ms")] = json!(hist.as_ref().map(|h| ms(h.max())));
    row
}

fn histogram(samples_ns: &[u64]) -> Option<Histogram<u64>> {
    if samples_ns.is_empty() {
        return None;
    }
    // 1 µs to an hour; anything longer is recorded as an hour.
    let mut h = Histogram::<u64>::new_with_bounds(1_000, 3_600_000_000_000, 3).ok()?;
    for &ns in samples_ns {
        h.saturating_record(ns.max(1_000));
    }
    Some(h)
}

fn ms(ns: u64) -> f64 {
    (ns as f64 / 1e3).round() / 1e3
}

/// Merges several rows' fields into one.
pub fn merge(into: &mut Value, from: Value) {
    if let (Some(a), Value::Object(b)) = (into.as_object_mut(), from) {
        a.extend(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_known_samples() {
        let samples: Vec<u64> = (1..=1000).map(|i| i * 1_000_000).collect();
        let row = summary("lat", &samples);
        assert_eq!(row["lat_n"], 1000);
        let p50 = row["lat_p50_ms"].as_f64().unwrap_or_default();
        let p99 = row["lat_p99_ms"].as_f64().unwrap_or_default();
        assert!((499.0..=501.0).contains(&p50), "{p50}");
        assert!((989.0..=991.0).contains(&p99), "{p99}");
        assert!(summary("lat", &[])["lat_p50_ms"].is_null());
    }
}
