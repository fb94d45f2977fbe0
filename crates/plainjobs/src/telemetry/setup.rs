//! [`Telemetry`]: exporters built from the standard `OTEL_*` environment variables (OTLP over
//! HTTP) and, when asked, a Prometheus registry to scrape. With no variable set it builds
//! nothing: no provider, no thread, nothing exported.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::registry::LookupSpan;

use super::metrics::Metrics;
use super::names::SCOPE;

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// An `OTEL_*` variable asks for something this build does not do.
    #[error("{var}={value:?} is not supported: {supported}")]
    Unsupported {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is.
        supported: &'static str,
    },
    /// The OTLP exporter could not be built (a malformed endpoint, say).
    #[error("cannot build the OTLP exporter: {0}")]
    Otlp(#[from] opentelemetry_otlp::ExporterBuildError),
    /// The Prometheus reader could not be built.
    #[error("cannot build the Prometheus exporter: {0}")]
    Prometheus(#[from] opentelemetry_sdk::error::OTelSdkError),
    /// The scrape endpoint's address could not be bound.
    #[error("cannot serve metrics on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
}

/// What the environment asks of one signal (traces or metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    Off,
    Otlp,
}

/// Reads `OTEL_SDK_DISABLED`, `OTEL_{TRACES,METRICS}_EXPORTER` and the OTLP endpoint variables
/// for one signal: OTLP when the exporter is `otlp`, or unset with an endpoint given.
fn wanted(exporter_var: &'static str, endpoint_var: &str) -> Result<Wanted, TelemetryError> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return Ok(Wanted::Off);
    }
    let endpoint = var("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() || var(endpoint_var).is_some();
    match var(exporter_var).as_deref().map(str::trim) {
        None => Ok(if endpoint { Wanted::Otlp } else { Wanted::Off }),
        Some("none") => Ok(Wanted::Off),
        Some("otlp") => Ok(Wanted::Otlp),
        Some(other) => Err(TelemetryError::Unsupported {
            var: exporter_var,
            value: other.to_string(),
            supported: "otlp or none (for Prometheus, serve a scrape endpoint instead)",
        }),
    }
}

/// Only OTLP over HTTP with protobuf is built in (port 4318 by default).
fn check_protocol() -> Result<(), TelemetryError> {
    for var in [
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    ] {
        if let Ok(value) = std::env::var(var) {
            let value = value.trim();
            if !value.is_empty() && value != "http/protobuf" {
                return Err(TelemetryError::Unsupported {
                    var,
                    value: value.to_string(),
                    supported: "http/protobuf",
                });
            }
        }
    }
    Ok(())
}

/// The resource: `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` as the SDK reads them,
/// with `service.name` `plainjobs` when neither names a service.
fn resource() -> Resource {
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.trim().is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name="));
    let builder = Resource::builder();
    if named {
        builder.build()
    } else {
        builder.with_service_name("plainjobs").build()
    }
}

/// Exporters and providers for the `plainjobs` command or an application: OTLP from the
/// environment, a Prometheus registry on request. Keep it for the process's life and call
/// [`shutdown`](Telemetry::shutdown) at the end, which exports what is buffered.
///
/// # Example
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use tracing_subscriber::layer::SubscriberExt;
/// use tracing_subscriber::util::SubscriberInitExt;
///
/// // OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 and OTEL_SERVICE_NAME=billing-worker
/// let telemetry = plainjobs::telemetry::Telemetry::from_env()?.with_prometheus()?;
/// tracing_subscriber::registry()
///     .with(telemetry.tracing_layer())
///     .with(tracing_subscriber::fmt::layer())
///     .init();
/// let mut jobs = plainjobs::Jobs::connect("postgres://app@127.0.0.1/app").await?;
/// if let Some(metrics) = telemetry.metrics() {
///     jobs = jobs.with_metrics(metrics);
/// }
/// let addr = "127.0.0.1:9464".parse()?;
/// let _scrape = telemetry.serve_prometheus(addr).await?; // GET /metrics
/// // … run workers, enqueue …
/// telemetry.shutdown();
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
    meters: Option<SdkMeterProvider>,
    otlp_metrics: bool,
    prometheus: Option<prometheus::Registry>,
}

impl Telemetry {
    /// Nothing: no traces, no metrics (what [`from_env`](Telemetry::from_env) gives with no
    /// variable set).
    pub fn none() -> Telemetry {
        Telemetry::default()
    }

    /// OTLP over HTTP/protobuf as the standard variables ask: traces when
    /// `OTEL_TRACES_EXPORTER=otlp`, or when it is unset and `OTEL_EXPORTER_OTLP_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is; metrics likewise (`OTEL_METRICS_EXPORTER`,
    /// `…_METRICS_ENDPOINT`); nothing with `OTEL_SDK_DISABLED=true`. The SDK reads the rest:
    /// `OTEL_SERVICE_NAME` (default here `plainjobs`), `OTEL_RESOURCE_ATTRIBUTES`,
    /// `OTEL_TRACES_SAMPLER`/`_ARG`, `OTEL_METRIC_EXPORT_INTERVAL`, `OTEL_EXPORTER_OTLP_HEADERS`,
    /// `…_TIMEOUT`.
    ///
    /// # Errors
    /// [`TelemetryError::Unsupported`] for another exporter or protocol (gRPC is not built in),
    /// [`TelemetryError::Otlp`] for an exporter that cannot be built.
    pub fn from_env() -> Result<Telemetry, TelemetryError> {
        let traces = wanted("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")?;
        let metrics = wanted(
            "OTEL_METRICS_EXPORTER",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        )?;
        if traces == Wanted::Off && metrics == Wanted::Off {
            return Ok(Telemetry::none());
        }
        check_protocol()?;
        let resource = resource();
        let mut telemetry = Telemetry::none();
        if traces == Wanted::Otlp {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .build()?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(resource.clone())
                .build();
            telemetry.traces = Some(provider);
        }
        if metrics == Wanted::Otlp {
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .build()?;
            let provider = SdkMeterProvider::builder()
                .with_periodic_exporter(exporter)
                .with_resource(resource)
                .build();
            telemetry.meters = Some(provider);
            telemetry.otlp_metrics = true;
        }
        Ok(telemetry)
    }

    /// Adds a Prometheus registry that the metrics fill, to serve with
    /// [`serve_prometheus`](Telemetry::serve_prometheus) or your own handler (beside OTLP
    /// metrics when those are on: both read the same instruments).
    ///
    /// # Errors
    /// [`TelemetryError::Prometheus`] when the reader cannot be built.
    pub fn with_prometheus(mut self) -> Result<Telemetry, TelemetryError> {
        let registry = prometheus::Registry::new();
        let reader = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .build()?;
        let mut builder = SdkMeterProvider::builder().with_reader(reader);
        if self.otlp_metrics {
            // One provider with both readers: rebuild it with the OTLP exporter again.
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .build()?;
            builder = builder.with_periodic_exporter(exporter);
            if let Some(old) = self.meters.take() {
                let _ = old.shutdown();
            }
        }
        self.meters = Some(builder.with_resource(resource()).build());
        self.prometheus = Some(registry);
        Ok(self)
    }

    /// True when nothing is exported.
    pub fn is_empty(&self) -> bool {
        self.traces.is_none() && self.meters.is_none()
    }

    /// The layer that makes plainjobs' `tracing` spans (and the application's) OpenTelemetry
    /// spans, or `None` when traces are off (`Option<Layer>` is a layer that does nothing).
    pub fn tracing_layer<S>(&self) -> Option<OpenTelemetryLayer<S, SdkTracer>>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        let tracer = self.traces.as_ref()?.tracer(SCOPE);
        // No `code.*` location of the layer's own: it would name plainjobs' span macros where
        // plain.jobs' attributes name the enqueue's caller.
        Some(
            tracing_opentelemetry::layer()
                .with_location(false)
                .with_tracer(tracer),
        )
    }

    /// The tracer provider, when traces are on.
    pub fn tracer_provider(&self) -> Option<&SdkTracerProvider> {
        self.traces.as_ref()
    }

    /// The meter provider, when metrics are on (OTLP or Prometheus).
    pub fn meter_provider(&self) -> Option<&SdkMeterProvider> {
        self.meters.as_ref()
    }

    /// plain.jobs' instruments on the meter provider, for
    /// [`Jobs::with_metrics`](crate::Jobs::with_metrics); `None` when metrics are off.
    pub fn metrics(&self) -> Option<Metrics> {
        self.meters.as_ref().map(Metrics::new)
    }

    /// The Prometheus registry, after [`with_prometheus`](Telemetry::with_prometheus).
    pub fn prometheus_registry(&self) -> Option<&prometheus::Registry> {
        self.prometheus.as_ref()
    }

    /// Exports what is buffered and stops the exporters' threads.
    pub fn shutdown(&self) {
        if let Some(traces) = &self.traces {
            let _ = traces.force_flush();
            let _ = traces.shutdown();
        }
        if let Some(meters) = &self.meters {
            let _ = meters.force_flush();
            let _ = meters.shutdown();
        }
    }
}
