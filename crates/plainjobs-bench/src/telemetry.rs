//! Telemetry's cost: with the `otel` feature and `BENCH_TELEMETRY=on`, every handle records
//! plain.jobs' metrics (on a Prometheus reader, as `plainjobs worker --metrics-addr` does) and
//! spans are exported by OTLP when the `OTEL_*` variables name an endpoint. Otherwise handles
//! are returned as they are.

use plainjobs::Jobs;

#[cfg(feature = "otel")]
pub fn observed(jobs: Jobs) -> Jobs {
    use std::sync::OnceLock;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    static TELEMETRY: OnceLock<Option<plainjobs::telemetry::Telemetry>> = OnceLock::new();
    let telemetry = TELEMETRY.get_or_init(|| {
        if std::env::var("BENCH_TELEMETRY").as_deref() != Ok("on") {
            return None;
        }
        let telemetry = plainjobs::telemetry::Telemetry::from_env()
            .and_then(|t| t.with_prometheus())
            .expect("telemetry from the environment");
        let _ = tracing_subscriber::registry()
            .with(telemetry.tracing_layer())
            .try_init();
        eprintln!(
            "telemetry on: metrics (Prometheus reader){}",
            if telemetry.tracer_provider().is_some() {
                ", spans by OTLP"
            } else {
                ""
            }
        );
        Some(telemetry)
    });
    match telemetry.as_ref().and_then(|t| t.metrics()) {
        Some(metrics) => jobs.with_metrics(metrics),
        None => jobs,
    }
}

#[cfg(not(feature = "otel"))]
pub fn observed(jobs: Jobs) -> Jobs {
    jobs
}
