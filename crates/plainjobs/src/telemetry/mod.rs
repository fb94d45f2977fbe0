//! OpenTelemetry (feature `otel`): plain.jobs' spans and metrics, from Rust.
//!
//! - **Spans.** plainjobs' `tracing` spans become OpenTelemetry spans when the subscriber has
//!   `tracing-opentelemetry`'s layer ([`Telemetry::tracing_layer`], or your own): `send
//!   {queue}` (PRODUCER) around every enqueue — single, bulk, in your transaction — whose
//!   context the row stores in plain.jobs' text form (`0x` + hex) when it is sampled; `process
//!   {queue}` (CONSUMER) around every run, linked to the context the row stores (plain.jobs'
//!   rows and ours alike); a one-off `claim job` or `worker heartbeat` span for a worker
//!   failure that no job owns. Names and attributes are plain.jobs' ([`names`]).
//! - **Metrics.** Give a [`Jobs`](crate::Jobs) handle [`Metrics`] with
//!   [`Jobs::with_metrics`](crate::Jobs::with_metrics): `messaging.client.sent.messages` (on
//!   commit), `messaging.client.consumed.messages` (by `plain.jobs.outcome`),
//!   `messaging.client.operation.duration`, `plain.jobs.queue.wait.duration`, and the gauges
//!   `plain.jobs.queue.depth`, `….scheduled`, `….oldest.age`, `plain.jobs.running`,
//!   `plain.jobs.workers`.
//! - **Export.** [`Telemetry::from_env`] builds OTLP exporters from the standard `OTEL_*`
//!   variables (none set: nothing); [`Telemetry::with_prometheus`] and
//!   [`Telemetry::serve_prometheus`] serve a scrape endpoint.
//!
//! Without the layer and without metrics, the instrumentation computes nothing: every helper
//! first asks whether the span is wanted at all, and no instrument is touched.

pub(crate) mod hooks;
mod tracing_spans;

#[cfg(feature = "otel")]
mod context;
#[cfg(feature = "otel")]
pub(crate) mod gauges;
#[cfg(feature = "otel")]
mod metrics;
#[cfg(feature = "otel")]
pub mod names;
#[cfg(not(feature = "otel"))]
#[allow(dead_code)]
mod names;
#[cfg(not(feature = "otel"))]
mod off;
#[cfg(feature = "otel")]
pub(crate) mod pending;
#[cfg(feature = "otel")]
mod scrape;
#[cfg(feature = "otel")]
mod setup;
#[cfg(feature = "otel")]
mod spans;

#[cfg(feature = "otel")]
pub use context::{format_context, parse_context};
#[cfg(feature = "otel")]
pub use metrics::Metrics;
#[cfg(feature = "otel")]
pub use scrape::{prometheus_router, MetricsServer};
#[cfg(feature = "otel")]
pub use setup::{Telemetry, TelemetryError};
