//! The Prometheus scrape endpoint: `GET /metrics` in Prometheus' text format, encoded by the
//! `prometheus` crate from the registry the SDK's Prometheus reader fills at each scrape.

use std::net::SocketAddr;

use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus::{Encoder, TextEncoder};

use super::setup::{Telemetry, TelemetryError};

/// An axum router serving `GET /metrics` from `registry`, to nest in an application's server.
pub fn prometheus_router(registry: prometheus::Registry) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let registry = registry.clone();
            async move { scrape(&registry) }
        }),
    )
}

fn scrape(registry: &prometheus::Registry) -> Response {
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    match encoder.encode(&registry.gather(), &mut body) {
        Ok(()) => ([(CONTENT_TYPE, encoder.format_type().to_string())], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// A running scrape endpoint; it stops when dropped.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsServer {
    /// The address it listens on (the port chosen, for `127.0.0.1:0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Telemetry {
    /// Serves `GET /metrics` on `addr` from this telemetry's Prometheus registry (made by
    /// [`with_prometheus`](Telemetry::with_prometheus), or now if there is none yet is an
    /// error: call it first), in a task of its own until the returned server is dropped.
    ///
    /// # Errors
    /// [`TelemetryError::Bind`] when the address cannot be bound;
    /// [`TelemetryError::Unsupported`] without a Prometheus registry.
    pub async fn serve_prometheus(
        &self,
        addr: SocketAddr,
    ) -> Result<MetricsServer, TelemetryError> {
        let Some(registry) = self.prometheus_registry() else {
            return Err(TelemetryError::Unsupported {
                var: "metrics address",
                value: addr.to_string(),
                supported: "call Telemetry::with_prometheus before serving a scrape endpoint",
            });
        };
        let bind = |source| TelemetryError::Bind { addr, source };
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(bind)?;
        let addr = listener.local_addr().map_err(bind)?;
        let app = prometheus_router(registry.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "the metrics endpoint stopped");
            }
        });
        Ok(MetricsServer { addr, task })
    }
}
