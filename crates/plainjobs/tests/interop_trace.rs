//! One trace across languages, against the real plain.jobs (the interop suite's venv, with the
//! OpenTelemetry SDK): the context one side's enqueue stores in the request row is the one the
//! other side's `process {queue}` span links to, both ways, compared id for id.
//!
//! - Python to Rust: plain.jobs' `run_in_worker`, inside a span of the caller's, opens its
//!   `send {queue}` PRODUCER span and stores that span's context; a plainjobs worker runs the job
//!   and its `process {queue}` span (the SDK's in-memory exporter, as in tests/otel.rs) links to
//!   the Python send span's trace id and span id, as the Python SDK exported them.
//! - Rust to Python: our enqueue inside a span stores our sampled `send` span's context;
//!   plain.jobs' worker runs the job, and the CONSUMER span its own `JobProcess.run()` opens in
//!   the job process (exported by the SDK's ConsoleSpanExporter to a file: interop/app/otel.py)
//!   links to our send span's trace id and span id.
//! - Unsampled: our enqueue in an unsampled trace stores no context, and plain.jobs' process
//!   span links to nothing.
//!
//! PostgreSQL only (plain.jobs is). Without a Python that plain.jobs supports the suite fails,
//! saying so: it never skips.
#![cfg(feature = "otel")]

mod common;
mod interop_support;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use common::*;
use interop_support::*;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId, TraceState,
    TracerProvider as _,
};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use plainjobs::{JobStatus, Worker};
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

const T: Duration = Duration::from_secs(60);

/// The variable that turns the Python side's span export on (interop/app/otel.py).
const SPANS_DIR_VARIABLE: &str = "TEST_PLAIN_SPANS_DIR";

// ---------------------------------------------------------------------------------------------
// The Rust side's spans.

/// The test binary's one subscriber, exporting every span to one in-memory exporter, as in
/// tests/otel.rs (a subscriber per test, set as the thread's default, loses spans now and then:
/// `tracing` caches each callsite's interest across all dispatchers). Each test reads the spans
/// made on its own thread: a current-thread runtime runs all of a test's tasks there, and the
/// layer records the thread's name.
fn span_exporter() -> &'static InMemorySpanExporter {
    static SPANS: OnceLock<InMemorySpanExporter> = OnceLock::new();
    SPANS.get_or_init(|| {
        let spans = InMemorySpanExporter::default();
        let tracer = SdkTracerProvider::builder()
            .with_simple_exporter(spans.clone())
            .build();
        let layer = tracing_opentelemetry::layer()
            .with_location(false)
            .with_tracer(tracer.tracer("test"));
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .expect("the only subscriber");
        spans
    })
}

struct RustSpans {
    thread: String,
}

/// Call first in a test: the global subscriber must be ours before anything logs.
fn rust_spans() -> RustSpans {
    span_exporter();
    RustSpans {
        thread: std::thread::current()
            .name()
            .unwrap_or_default()
            .to_string(),
    }
}

impl RustSpans {
    fn named(&self, name: &str) -> Vec<SpanData> {
        let all = span_exporter().get_finished_spans().expect("spans");
        all.into_iter()
            .filter(|s| text(s, "thread.name") == self.thread && s.name == name)
            .collect()
    }

    /// The one span named `name` whose attribute `key` is `value`, once it has ended.
    async fn one(&self, name: &str, key: &str, value: &str) -> SpanData {
        let find = || {
            self.named(name)
                .into_iter()
                .filter(|s| text(s, key) == value)
                .collect::<Vec<_>>()
        };
        wait_until(T, || async { !find().is_empty() }).await;
        let found = find();
        assert_eq!(
            found.len(),
            1,
            "one `{name}` span with {key}={value}; the test's `{name}` spans: {:#?}",
            self.named(name)
        );
        found.into_iter().next().expect("one")
    }
}

fn text(span: &SpanData, key: &str) -> String {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
        .unwrap_or_default()
}

/// A span context in plain.jobs' text: what its rows store and what the Python SDK exports.
fn plain_text(trace_id: impl std::fmt::Display, span_id: impl std::fmt::Display) -> Context {
    Context {
        trace_id: format!("0x{trace_id}"),
        span_id: format!("0x{span_id}"),
    }
}

fn own(span: &SpanData) -> Context {
    plain_text(span.span_context.trace_id(), span.span_context.span_id())
}

// ---------------------------------------------------------------------------------------------
// The Python side's spans.

/// A trace context as text (`0x` + hex), as plain.jobs stores it and the Python SDK's
/// `to_json` writes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct Context {
    trace_id: String,
    span_id: String,
}

/// One line of a Python span file: the SDK's `ReadableSpan.to_json`.
#[derive(Debug, Clone, Deserialize)]
struct PySpan {
    name: String,
    kind: String,
    context: Context,
    parent_id: Option<String>,
    #[serde(default)]
    attributes: serde_json::Map<String, Value>,
    #[serde(default)]
    links: Vec<PyLink>,
}

#[derive(Debug, Clone, Deserialize)]
struct PyLink {
    context: Context,
}

impl PySpan {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(Value::as_str)
    }
}

/// The directory the Python processes write their span files to (one per process). Removed at
/// the end of a test that passed; kept, for a look, after a failure.
struct SpansDir {
    path: PathBuf,
}

impl SpansDir {
    fn new(test: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "plainjobs-interop-trace-{}-{test}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("spans directory");
        Self { path }
    }

    /// Every span the Python processes have exported so far.
    fn spans(&self) -> Vec<PySpan> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.path).expect("spans directory") {
            let path = entry.expect("entry").path();
            let body = std::fs::read_to_string(&path).expect("span file");
            // A line still being written has no newline yet: only whole lines count.
            let whole = body.rfind('\n').map_or("", |end| &body[..end]);
            for line in whole.lines().filter(|l| !l.trim().is_empty()) {
                let span: PySpan = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("{}: {e}: {line}", path.display()));
                out.push(span);
            }
        }
        out
    }

    /// The one Python span named `name` whose attribute `key` is `value`, once exported.
    async fn one(&self, name: &str, key: &str, value: &str) -> PySpan {
        let find = || {
            self.spans()
                .into_iter()
                .filter(|s| s.name == name && s.attr(key) == Some(value))
                .collect::<Vec<_>>()
        };
        wait_until(T, || async { !find().is_empty() }).await;
        let found = find();
        assert_eq!(
            found.len(),
            1,
            "one Python `{name}` span with {key}={value} in {}; its spans: {:#?}",
            self.path.display(),
            self.spans()
                .iter()
                .map(|s| (&s.name, &s.context, &s.links))
                .collect::<Vec<_>>()
        );
        found.into_iter().next().expect("one")
    }

    fn named(&self, name: &str) -> Vec<PySpan> {
        self.spans()
            .into_iter()
            .filter(|s| s.name == name)
            .collect()
    }
}

impl Drop for SpansDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn path_text(path: &Path) -> String {
    path.to_str().expect("a UTF-8 temp dir").to_string()
}

/// The trace context the request row stores, read from the table (not from either side's
/// report of it).
async fn stored_context(db: &TestDb, request_uuid: uuid::Uuid) -> Context {
    let (trace_id, span_id): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT trace_id, span_id FROM plainjobs_jobrequest WHERE uuid = $1")
            .bind(request_uuid)
            .fetch_one(pool(db))
            .await
            .expect("the request row");
    Context {
        trace_id: trace_id.expect("a stored trace_id"),
        span_id: span_id.expect("a stored span_id"),
    }
}

// ---------------------------------------------------------------------------------------------
// The scenarios.

/// plain.jobs enqueues inside a request's span; a plainjobs worker runs the job, and its
/// `process default` span links to plain.jobs' `send default` span: its trace id and span id.
#[tokio::test]
async fn a_python_enqueue_is_linked_from_the_rust_process_span() {
    let rust = rust_spans();
    let (db, plain) = shared_db().await;
    let dir = SpansDir::new("python_to_rust");
    let plain = plain.with_env(SPANS_DIR_VARIABLE, path_text(&dir.path));

    let enqueued = plain
        .enqueue(
            "app.jobs.RecordJob",
            json!({"kwargs": {"label": "traced-from-python"}}),
            &["--span", "python request"],
        )
        .await;
    let uuid_text = enqueued["uuid"].as_str().expect("uuid").to_string();
    let request_uuid: uuid::Uuid = uuid_text.parse().expect("a uuid");

    // What the Python SDK exported: the request's span, and plain.jobs' send span inside it.
    let request = dir.named("python request");
    assert_eq!(request.len(), 1, "{request:#?}");
    let request = &request[0];
    let send = dir
        .one("send default", "messaging.message.id", &uuid_text)
        .await;
    assert_eq!(send.kind, "SpanKind.PRODUCER");
    assert_eq!(send.context.trace_id, request.context.trace_id);
    assert_eq!(
        send.parent_id.as_deref(),
        Some(request.context.span_id.as_str())
    );
    // plain.jobs stored its send span's context (not the request's) in the row, in its text.
    assert_eq!(stored_context(&db, request_uuid).await, send.context);
    assert_ne!(send.context.span_id, request.context.span_id);

    let w = Worker::new(db.jobs.clone())
        .register::<RecordJob>()
        .config(fast_config())
        .spawn();
    let ran = wait_until(T, || async {
        db.results()
            .await
            .iter()
            .any(|r| r.job_request_uuid == request_uuid)
    })
    .await;
    w.stop().await.expect("stop");
    assert!(ran, "the Rust worker ran the job plain.jobs enqueued");
    let runs = plain.runs("traced-from-python").await;
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["side"], "rust");
    let results = db.results().await;
    assert_eq!(results.len(), 1, "{results:#?}");
    assert_eq!(results[0].status, JobStatus::Successful);

    let process = rust
        .one(
            "process default",
            "plain.jobs.job_request.uuid",
            &request_uuid.to_string(),
        )
        .await;
    assert_eq!(process.span_kind, SpanKind::Consumer);
    let links: Vec<_> = process.links.iter().collect();
    assert_eq!(links.len(), 1, "one link, to the enqueue: {links:#?}");
    let linked = plain_text(
        links[0].span_context.trace_id(),
        links[0].span_context.span_id(),
    );
    assert_eq!(
        linked, send.context,
        "the Rust process span links to plain.jobs' send span"
    );
    // A link, as plain.jobs makes it, not a parent: the run is a trace of its own.
    assert_eq!(process.parent_span_id, SpanId::INVALID);
    assert_ne!(own(&process).trace_id, send.context.trace_id);
}

/// plainjobs enqueues inside a span of the caller's (its `send default` span sampled); plain.jobs'
/// worker runs the job, and the `process default` span its JobProcess.run() opens links to our
/// send span: its trace id and span id.
#[tokio::test]
async fn a_rust_enqueue_is_linked_from_the_python_process_span() {
    let rust = rust_spans();
    let (db, plain) = shared_db().await;
    let dir = SpansDir::new("rust_to_python");
    let plain = plain.with_env(SPANS_DIR_VARIABLE, path_text(&dir.path));

    // As a request handler would: the enqueue inside a span of the caller's.
    let request = async {
        db.jobs
            .enqueue(RecordJob {
                label: "traced-from-rust".into(),
                fail_times: 0,
                sleep: 0.0,
            })
            .await
    }
    .instrument(tracing::info_span!("rust request"))
    .await
    .expect("enqueue")
    .expect("enqueued");

    let caller = rust.named("rust request");
    assert_eq!(caller.len(), 1, "{caller:#?}");
    let caller = &caller[0];
    let send = rust
        .one(
            "send default",
            "messaging.message.id",
            &request.uuid.to_string(),
        )
        .await;
    assert_eq!(send.span_kind, SpanKind::Producer);
    assert!(send.span_context.is_sampled());
    assert_eq!(send.parent_span_id, caller.span_context.span_id());
    assert_eq!(send.span_context.trace_id(), caller.span_context.trace_id());
    // We stored our send span's context (not the caller's) in the row, in plain.jobs' text.
    assert_eq!(stored_context(&db, request.uuid).await, own(&send));
    assert_ne!(own(&send).span_id, own(caller).span_id);

    plain.work_until_idle(&[]).await;
    let runs = plain.runs("traced-from-rust").await;
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["side"], "python");
    let results = db.results().await;
    assert_eq!(results.len(), 1, "{results:#?}");
    assert_eq!(results[0].status, JobStatus::Successful);
    assert_eq!(results[0].job_request_uuid, request.uuid);

    // plain.jobs' process span carries the process uuid as its message id.
    let process = dir
        .one(
            "process default",
            "messaging.message.id",
            &results[0].job_process_uuid.to_string(),
        )
        .await;
    assert_eq!(process.kind, "SpanKind.CONSUMER");
    assert_eq!(process.links.len(), 1, "{process:#?}");
    assert_eq!(
        process.links[0].context,
        own(&send),
        "plain.jobs' process span links to our send span"
    );
    // A link, not a parent: plain.jobs' run is a trace of its own.
    assert_eq!(process.parent_id, None);
    assert_ne!(process.context.trace_id, own(&send).trace_id);
}

/// An enqueue in an unsampled trace stores no context, as plain.jobs' own does (it stores one
/// only for a recording span): plain.jobs' worker then runs the job with a process span that
/// links to nothing.
#[tokio::test]
async fn an_unsampled_rust_enqueue_leaves_plain_jobs_nothing_to_link() {
    let _rust = rust_spans();
    let (db, plain) = shared_db().await;
    let dir = SpansDir::new("unsampled");
    let plain = plain.with_env(SPANS_DIR_VARIABLE, path_text(&dir.path));

    // The caller's trace came in unsampled (a remote parent without the sampled flag): the SDK's
    // default sampler (parent-based) records none of its spans, our send span included.
    let unsampled = SpanContext::new(
        TraceId::from(0x5eed_u128),
        SpanId::from(0x5eed_u64),
        TraceFlags::default(),
        true,
        TraceState::NONE,
    );
    let caller = tracing::info_span!("unsampled request");
    caller
        .set_parent(opentelemetry::Context::new().with_remote_span_context(unsampled))
        .expect("a parent for the caller's span");
    let request = async {
        db.jobs
            .enqueue(RecordJob {
                label: "unsampled".into(),
                fail_times: 0,
                sleep: 0.0,
            })
            .await
    }
    .instrument(caller)
    .await
    .expect("enqueue")
    .expect("enqueued");
    let (trace_id, span_id): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT trace_id, span_id FROM plainjobs_jobrequest WHERE uuid = $1")
            .bind(request.uuid)
            .fetch_one(pool(&db))
            .await
            .expect("the request row");
    assert_eq!((trace_id, span_id), (None, None), "no context stored");

    plain.work_until_idle(&[]).await;
    let results = db.results().await;
    assert_eq!(results.len(), 1, "{results:#?}");
    assert_eq!(results[0].status, JobStatus::Successful);
    let process = dir
        .one(
            "process default",
            "messaging.message.id",
            &results[0].job_process_uuid.to_string(),
        )
        .await;
    assert!(process.links.is_empty(), "{process:#?}");
}
