//! What the commands export (feature `otel`): the telemetry the binary built from the
//! `OTEL_*` variables, given to every command's [`Jobs`] handle, and the worker's Prometheus
//! scrape endpoint (`--metrics-addr`).

#[cfg(feature = "otel")]
use crate::cli::error::failure;
use crate::cli::error::CliError;
use crate::telemetry::hooks::Metrics;

/// The binary's telemetry (nothing without the feature).
#[cfg(feature = "otel")]
pub(crate) type Observe = crate::telemetry::Telemetry;
#[cfg(not(feature = "otel"))]
#[derive(Debug, Default)]
pub(crate) struct Observe;

/// The telemetry's metrics, when there are any.
#[cfg(feature = "otel")]
pub(crate) fn metrics_of(observe: &Observe) -> Option<Metrics> {
    observe.metrics()
}

#[cfg(not(feature = "otel"))]
pub(crate) fn metrics_of(_: &Observe) -> Option<Metrics> {
    None
}

/// A running scrape endpoint (dropped: stopped).
#[cfg(feature = "otel")]
pub(crate) type Scrape = Option<crate::telemetry::MetricsServer>;
#[cfg(not(feature = "otel"))]
pub(crate) type Scrape = ();

/// Without the feature there is nothing to serve.
#[cfg(not(feature = "otel"))]
pub(crate) async fn serve_metrics(
    observe: Observe,
    _: Option<()>,
) -> Result<(Observe, Scrape), CliError> {
    Ok((observe, ()))
}

/// Adds a Prometheus registry to `observe` and serves it on `addr`, when given.
#[cfg(feature = "otel")]
pub(crate) async fn serve_metrics(
    observe: Observe,
    addr: Option<std::net::SocketAddr>,
) -> Result<(Observe, Scrape), CliError> {
    let Some(addr) = addr else {
        return Ok((observe, None));
    };
    let observe = observe
        .with_prometheus()
        .map_err(|e| failure(e.to_string()))?;
    let server = observe
        .serve_prometheus(addr)
        .await
        .map_err(|e| failure(e.to_string()))?;
    tracing::info!(addr = %server.local_addr(), "serving Prometheus metrics at /metrics");
    Ok((observe, Some(server)))
}

/// Flushes what is buffered (spans of the last jobs) before the process exits.
#[cfg(feature = "otel")]
pub(crate) fn finish(observe: &Observe) {
    observe.shutdown();
}

#[cfg(not(feature = "otel"))]
pub(crate) fn finish(_: &Observe) {}
