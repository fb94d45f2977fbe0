//! OpenTelemetry (feature `otel`) with the SDK's in-memory exporters, on both backends: span
//! names, kinds, attributes, links and errors, and metric points, for each path a job takes.
#![cfg(feature = "otel")]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::*;
use opentelemetry::trace::{SpanKind, Status, TracerProvider as _};
use opentelemetry::Value;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use plainjobs::telemetry::{parse_context, Metrics};
use plainjobs::{JobStatus, Worker};
use tracing_subscriber::layer::SubscriberExt;

const T: Duration = Duration::from_secs(20);

/// The test binary's one subscriber, exporting every span to one in-memory exporter. (A
/// subscriber per test, set as the thread's default, loses spans now and then: `tracing`
/// caches each callsite's interest across all dispatchers.) Each test reads the spans made on
/// its own thread: the tests run on a current-thread runtime, so every task of a test runs
/// there, and the layer records the thread's name.
fn span_exporter() -> &'static InMemorySpanExporter {
    static SPANS: OnceLock<InMemorySpanExporter> = OnceLock::new();
    SPANS.get_or_init(|| {
        let spans = InMemorySpanExporter::default();
        let tracer = SdkTracerProvider::builder()
            .with_simple_exporter(spans.clone())
            .build();
        // As `Telemetry::tracing_layer` makes it: no source location of its own, which would
        // name plainjobs' span macro where plain.jobs' `code.*` attributes name the caller.
        let layer = tracing_opentelemetry::layer()
            .with_location(false)
            .with_tracer(tracer.tracer("test"));
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .expect("the only subscriber");
        spans
    })
}

/// This test's spans and its own meter provider with an in-memory exporter.
struct Otel {
    thread: String,
    metrics: InMemoryMetricExporter,
    meters: SdkMeterProvider,
}

fn otel() -> Otel {
    span_exporter();
    let metrics = InMemoryMetricExporter::default();
    let meters = SdkMeterProvider::builder()
        .with_periodic_exporter(metrics.clone())
        .build();
    Otel {
        thread: std::thread::current()
            .name()
            .unwrap_or_default()
            .to_string(),
        metrics,
        meters,
    }
}

/// One metric point: the instrument, its attributes as text, and its value (a histogram's
/// count).
#[derive(Debug, Clone)]
struct Point {
    name: String,
    attrs: BTreeMap<String, String>,
    value: f64,
}

impl Otel {
    fn spans(&self) -> Vec<SpanData> {
        let all = span_exporter().get_finished_spans().expect("spans");
        all.into_iter()
            .filter(|s| text(s, "thread.name") == self.thread)
            .collect()
    }

    /// The spans named `name` once there are `n` of them (or after [`T`]). A span ends when
    /// its last handle is dropped, and sqlx's SQLite worker thread drops the handles it holds
    /// (the span current when a statement was sent) a moment after the statement's reply.
    async fn wait_named(&self, name: &str, n: usize) -> Vec<SpanData> {
        wait_until(T, || async { self.named(name).len() >= n }).await;
        // And a moment more, to see one too many.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.named(name)
    }

    fn named(&self, name: &str) -> Vec<SpanData> {
        self.spans()
            .into_iter()
            .filter(|s| s.name == name)
            .collect()
    }

    /// The last export's points (the exporter's temporality is cumulative).
    fn points(&self) -> Vec<Point> {
        self.meters.force_flush().expect("flush");
        let exports = self.metrics.get_finished_metrics().expect("metrics");
        let Some(last) = exports.last() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for scope in last.scope_metrics() {
            for metric in scope.metrics() {
                let name = metric.name().to_string();
                let mut push = |attrs: Vec<(String, String)>, value: f64| {
                    out.push(Point {
                        name: name.clone(),
                        attrs: attrs.into_iter().collect(),
                        value,
                    })
                };
                let text =
                    |kv: &opentelemetry::KeyValue| (kv.key.to_string(), kv.value.to_string());
                match metric.data() {
                    AggregatedMetrics::U64(MetricData::Sum(s)) => {
                        for p in s.data_points() {
                            push(p.attributes().map(text).collect(), p.value() as f64);
                        }
                    }
                    AggregatedMetrics::U64(MetricData::Gauge(g)) => {
                        for p in g.data_points() {
                            push(p.attributes().map(text).collect(), p.value() as f64);
                        }
                    }
                    AggregatedMetrics::F64(MetricData::Gauge(g)) => {
                        for p in g.data_points() {
                            push(p.attributes().map(text).collect(), p.value());
                        }
                    }
                    AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                        for p in h.data_points() {
                            push(p.attributes().map(text).collect(), p.count() as f64);
                        }
                    }
                    other => panic!("unexpected data for {name}: {other:?}"),
                }
            }
        }
        out
    }

    /// The sum of `name`'s points whose attributes include `with`.
    fn total(&self, name: &str, with: &[(&str, &str)]) -> f64 {
        self.points()
            .iter()
            .filter(|p| p.name == name)
            .filter(|p| {
                with.iter()
                    .all(|(k, v)| p.attrs.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|p| p.value)
            .sum()
    }
}

fn attr(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

fn text(span: &SpanData, key: &str) -> String {
    attr(span, key).map(|v| v.to_string()).unwrap_or_default()
}

fn measured(db: &TestDb, otel: &Otel) -> plainjobs::Jobs {
    db.jobs
        .clone()
        .with_metrics(Metrics::new(&otel.meters).refresh_every(Duration::from_millis(100)))
}

fn worker(jobs: plainjobs::Jobs, rec: &Arc<Recorder>) -> Worker {
    Worker::new(jobs)
        .register::<Probe>()
        .state(rec.clone())
        .config(fast_config())
        .concurrency(4)
}

async fn wait_results(db: &TestDb, n: usize) -> Vec<plainjobs::JobResult> {
    let ok = wait_until(T, || async { db.results().await.len() >= n }).await;
    let results = db.results().await;
    assert!(ok, "expected {n} results, got {results:#?}");
    results
}

/// Success, an error and a panic: a send span per enqueue whose context the row stores, a
/// process span per run linked to it, the failures marked, and the metric points.
async fn runs_are_spans_linked_to_their_enqueue_and_counted(backend: Backend) {
    // First: the global subscriber must be ours, not the test databases' log lines.
    let otel = otel();
    let db = test_db_for(backend).await;
    let jobs = measured(&db, &otel);
    let rec = Recorder::new();
    let mut requests = Vec::new();
    for (id, action) in [
        ("ok", Action::Succeed),
        ("err", Action::Fail),
        ("boom", Action::Panic),
    ] {
        let req = jobs.enqueue(Probe::new(id, action)).await.unwrap().unwrap();
        requests.push(req);
    }
    let mut sends = otel.wait_named("send default", 3).await;
    sends.sort_by_key(|s| s.start_time);
    assert_eq!(sends.len(), 3, "{:#?}", otel.spans());
    for (send, req) in sends.iter().zip(&requests) {
        assert_eq!(send.span_kind, SpanKind::Producer);
        assert_eq!(text(send, "messaging.system"), "plain.jobs");
        assert_eq!(text(send, "messaging.operation.type"), "send");
        assert_eq!(text(send, "messaging.operation.name"), "send");
        assert_eq!(text(send, "messaging.destination.name"), "default");
        assert_eq!(text(send, "messaging.message.id"), req.uuid.to_string());
        assert_eq!(
            text(send, "code.function.name"),
            "tests.Probe.run_in_worker"
        );
        let file = text(send, "code.file.path");
        assert!(file.ends_with("otel.rs"), "{file:?} {:?}", send.attributes);
        assert!(attr(send, "code.line.number").is_some());
        // The row stores the send span's own context, in plain.jobs' text.
        let (t, s) = (req.trace_id.clone().unwrap(), req.span_id.clone().unwrap());
        assert_eq!(t, format!("0x{}", send.span_context.trace_id()));
        assert_eq!(s, format!("0x{}", send.span_context.span_id()));
    }

    let w = worker(jobs.clone(), &rec).spawn();
    wait_results(&db, 3).await;
    w.stop().await.unwrap();

    let processes = otel.wait_named("process default", 3).await;
    assert_eq!(processes.len(), 3, "{:#?}", otel.spans());
    for req in &requests {
        let p = processes
            .iter()
            .find(|p| text(p, "plain.jobs.job_request.uuid") == req.uuid.to_string())
            .expect("a process span per job");
        assert_eq!(p.span_kind, SpanKind::Consumer);
        assert_eq!(text(p, "messaging.operation.type"), "process");
        assert_eq!(text(p, "messaging.operation.name"), "process");
        assert_eq!(text(p, "messaging.consumer.group.name"), "default");
        assert_eq!(text(p, "code.function.name"), "tests.Probe.run");
        assert_eq!(text(p, "plain.jobs.retry_attempt"), "0");
        let links: Vec<_> = p.links.iter().collect();
        assert_eq!(links.len(), 1, "linked to the enqueue");
        let stored = parse_context(
            req.trace_id.as_deref().unwrap(),
            req.span_id.as_deref().unwrap(),
        )
        .unwrap();
        assert_eq!(links[0].span_context.trace_id(), stored.trace_id());
        assert_eq!(links[0].span_context.span_id(), stored.span_id());
    }
    let by_id = |id: &str| {
        let uuid = requests
            .iter()
            .find(|r| r.parameters.as_ref().unwrap()["kwargs"]["id"] == id)
            .unwrap()
            .uuid
            .to_string();
        processes
            .iter()
            .find(|p| text(p, "plain.jobs.job_request.uuid") == uuid)
            .unwrap()
            .clone()
    };
    let ok = by_id("ok");
    assert!(attr(&ok, "error.type").is_none());
    assert!(!matches!(ok.status, Status::Error { .. }));
    let err = by_id("err");
    assert!(
        text(&err, "error.type").ends_with("Outer"),
        "{}",
        text(&err, "error.type")
    );
    assert!(matches!(err.status, Status::Error { .. }));
    assert!(err.events.iter().any(|e| e.name == "exception"));
    let boom = by_id("boom");
    assert_eq!(text(&boom, "error.type"), "panic");
    assert!(matches!(boom.status, Status::Error { .. }));

    let sent = [
        ("messaging.destination.name", "default"),
        ("messaging.operation.type", "send"),
    ];
    assert_eq!(otel.total("messaging.client.sent.messages", &sent), 3.0);
    let outcome = |o| {
        otel.total(
            "messaging.client.consumed.messages",
            &[("plain.jobs.outcome", o)],
        )
    };
    assert_eq!(outcome("successful"), 1.0);
    assert_eq!(outcome("errored"), 2.0);
    assert_eq!(
        otel.total(
            "messaging.client.consumed.messages",
            &[("plain.jobs.outcome", "errored"), ("error.type", "panic")]
        ),
        1.0
    );
    let process = [
        ("messaging.operation.type", "process"),
        ("code.function.name", "tests.Probe.run"),
    ];
    assert_eq!(
        otel.total("messaging.client.operation.duration", &process),
        3.0
    );
    assert_eq!(otel.total("plain.jobs.queue.wait.duration", &process), 3.0);
}

/// A deferral is counted as such; one whose re-enqueue `should_enqueue` refuses carries
/// `plain.jobs.defer.skipped`.
async fn deferrals_and_refused_deferrals(backend: Backend) {
    // First: the global subscriber must be ours, not the test databases' log lines.
    let otel = otel();
    let db = test_db_for(backend).await;
    let jobs = measured(&db, &otel);
    let rec = Recorder::new();
    let defer = Action::Defer {
        secs: 3600,
        increment_retries: false,
    };
    jobs.enqueue(Probe::new("free", defer.clone()))
        .await
        .unwrap()
        .unwrap();
    jobs.enqueue(Probe::new("blocked", defer).key("k"))
        .await
        .unwrap()
        .unwrap();
    // A pending request with the same key makes the deferral's re-enqueue refused.
    db.insert_raw_request(
        "tests.Probe",
        r#"{"args": [], "kwargs": {"id": "blocker", "action": "Succeed"}}"#,
        "k",
        Some(db.ago_sql(-3600)),
    )
    .await;
    let w = worker(jobs.clone(), &rec).spawn();
    wait_results(&db, 2).await;
    w.stop().await.unwrap();
    let processes = otel.wait_named("process default", 2).await;
    assert_eq!(processes.len(), 2);
    let skipped: Vec<_> = processes
        .iter()
        .filter(|p| attr(p, "plain.jobs.defer.skipped").is_some())
        .collect();
    assert_eq!(skipped.len(), 1, "{processes:#?}");
    assert_eq!(
        otel.total(
            "messaging.client.consumed.messages",
            &[("plain.jobs.outcome", "deferred")]
        ),
        2.0
    );
    // The re-enqueue that was made is a send of its own, under the run's span.
    let follow_ups: Vec<_> = otel
        .wait_named("send default", 4)
        .await
        .into_iter()
        .filter(|s| s.parent_span_id != opentelemetry::trace::SpanId::INVALID)
        .collect();
    assert_eq!(follow_ups.len(), 2, "both deferrals tried to re-enqueue");
    assert_eq!(
        otel.total(
            "messaging.client.sent.messages",
            &[("messaging.operation.type", "send")]
        ),
        3.0,
        "two enqueues and one re-enqueue"
    );
}

/// A duplicate refused by its key: the span says skipped, nothing is counted.
async fn a_skipped_enqueue_is_marked_and_not_counted(backend: Backend) {
    // First: the global subscriber must be ours, not the test databases' log lines.
    let otel = otel();
    let db = test_db_for(backend).await;
    let jobs = measured(&db, &otel);
    assert!(jobs
        .enqueue(Probe::new("a", Action::Succeed).key("k"))
        .await
        .unwrap()
        .is_some());
    assert!(jobs
        .enqueue(Probe::new("b", Action::Succeed).key("k"))
        .await
        .unwrap()
        .is_none());
    let mut sends = otel.wait_named("send default", 2).await;
    sends.sort_by_key(|s| s.start_time);
    assert_eq!(sends.len(), 2);
    assert!(attr(&sends[0], "job.enqueue.skipped").is_none());
    assert_eq!(
        attr(&sends[1], "job.enqueue.skipped"),
        Some(Value::Bool(true))
    );
    assert_eq!(otel.total("messaging.client.sent.messages", &[]), 1.0);
}

/// A bulk enqueue is one send span whose context every row stores, counted once per job.
async fn a_bulk_enqueue_is_one_span_and_counted_per_job(backend: Backend) {
    // First: the global subscriber must be ours, not the test databases' log lines.
    let otel = otel();
    let db = test_db_for(backend).await;
    let jobs = measured(&db, &otel);
    let made = jobs
        .enqueue_many((0..5).map(|i| Probe::new(format!("b{i}"), Action::Succeed)))
        .queue("bulk")
        .await
        .unwrap();
    assert_eq!(made.len(), 5);
    let sends = otel.wait_named("send bulk", 1).await;
    assert_eq!(sends.len(), 1);
    assert_eq!(text(&sends[0], "messaging.batch.message_count"), "5");
    let trace = format!("0x{}", sends[0].span_context.trace_id());
    assert!(made
        .iter()
        .all(|r| r.trace_id.as_deref() == Some(trace.as_str())));
    assert_eq!(
        otel.total(
            "messaging.client.sent.messages",
            &[("messaging.destination.name", "bulk")]
        ),
        5.0
    );
}

/// In the caller's transaction: counted once it commits, never when it rolls back.
async fn sends_in_a_transaction_count_on_commit_only(backend: Backend) {
    // First: the global subscriber must be ours, not the test databases' log lines.
    let otel = otel();
    let db = test_db_for(backend).await;
    let jobs = measured(&db, &otel);
    let enqueue_in_tx = |commit: bool, id: &'static str| {
        let jobs = jobs.clone();
        async move {
            match jobs.backend() {
                Backend::Postgres => {
                    let mut tx = jobs.pg_pool().unwrap().begin().await.unwrap();
                    jobs.enqueue(Probe::new(id, Action::Succeed))
                        .in_transaction(&mut tx)
                        .await
                        .unwrap();
                    jobs.enqueue_many([Probe::new(format!("{id}-m"), Action::Succeed)])
                        .in_transaction(&mut tx)
                        .await
                        .unwrap();
                    if commit {
                        tx.commit().await.unwrap()
                    } else {
                        tx.rollback().await.unwrap()
                    }
                }
                Backend::Sqlite => {
                    let mut tx = jobs
                        .sqlite_pool()
                        .unwrap()
                        .begin_with("BEGIN IMMEDIATE")
                        .await
                        .unwrap();
                    jobs.enqueue(Probe::new(id, Action::Succeed))
                        .in_transaction(&mut tx)
                        .await
                        .unwrap();
                    jobs.enqueue_many([Probe::new(format!("{id}-m"), Action::Succeed)])
                        .in_transaction(&mut tx)
                        .await
                        .unwrap();
                    if commit {
                        tx.commit().await.unwrap()
                    } else {
                        tx.rollback().await.unwrap()
                    }
                }
            }
        }
    };
    enqueue_in_tx(false, "rolled-back").await;
    enqueue_in_tx(true, "committed").await;
    assert_eq!(
        otel.wait_named("send default", 4).await.len(),
        4,
        "a span for each, committed or not"
    );
    let counted = wait_until(T, || async {
        otel.total("messaging.client.sent.messages", &[]) >= 2.0
    })
    .await;
    assert!(counted, "the committed ones are counted");
    // Well past the look-ups: the rolled-back ones never are.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(otel.total("messaging.client.sent.messages", &[]), 2.0);
}

/// LOST by a rescue and CANCELLED by an operator: counted by outcome, with no span.
async fn lost_and_cancelled_are_counted_without_spans(backend: Backend) {
    // First: the global subscriber must be ours, not the test databases' log lines.
    let otel = otel();
    let db = test_db_for(backend).await;
    let jobs = measured(&db, &otel);
    let rec = Recorder::new();
    let hour_ago = db.ago_sql(3600);
    db.exec(&format!(
        "INSERT INTO plainjobs_jobprocess (uuid, created_at, started_at, job_request_uuid, requested_at, job_class, parameters, priority, source, queue, retries, retry_attempt, concurrency_key, worker_id)
         VALUES ({}, {hour_ago}, {hour_ago}, {}, {hour_ago}, 'tests.Probe', '{{\"args\": [], \"kwargs\": {{\"id\": \"unowned\", \"action\": \"Succeed\"}}}}', 0, '', 'default', 0, 0, '', '{}')",
        db.uuid_sql(),
        db.uuid_sql(),
        uuid::Uuid::new_v4()
    ))
    .await;
    let later = jobs
        .enqueue(Probe::new("later", Action::Succeed))
        .delay(Duration::from_secs(3600))
        .await
        .unwrap()
        .unwrap();
    jobs.cancel(later.uuid, "tests").await.unwrap();
    let w = worker(jobs.clone(), &rec).spawn();
    let lost = wait_until(T, || async {
        db.results()
            .await
            .iter()
            .any(|r| r.status == JobStatus::Lost)
    })
    .await;
    w.stop().await.unwrap();
    assert!(lost);
    let outcome = |o| {
        otel.total(
            "messaging.client.consumed.messages",
            &[("plain.jobs.outcome", o)],
        )
    };
    assert_eq!(outcome("lost"), 1.0);
    assert_eq!(outcome("cancelled"), 1.0);
    assert!(
        otel.named("process default").is_empty(),
        "{:#?}",
        otel.spans()
    );
}

/// The gauges: depth and scheduled per queue, workers by state; read by the worker.
async fn the_gauges_read_the_queue(backend: Backend) {
    // First: the global subscriber must be ours, not the test databases' log lines.
    let otel = otel();
    let db = test_db_for(backend).await;
    let jobs = measured(&db, &otel);
    let rec = Recorder::new();
    for i in 0..3 {
        jobs.enqueue(Probe::new(format!("g{i}"), Action::Succeed))
            .queue("idle")
            .await
            .unwrap();
    }
    jobs.enqueue(Probe::new("s", Action::Succeed))
        .queue("idle")
        .delay(Duration::from_secs(3600))
        .await
        .unwrap();
    // A worker on another queue reads the gauges of its own queue only: serve "idle" too but
    // paused, so nothing is claimed from it.
    jobs.pause_queue("idle", "tests").await.unwrap();
    let w = Worker::new(jobs.clone())
        .register::<Probe>()
        .state(rec.clone())
        .config(fast_config())
        .queues(["idle"])
        .spawn();
    let seen = wait_until(T, || async {
        otel.total(
            "plain.jobs.queue.depth",
            &[("messaging.destination.name", "idle")],
        ) == 3.0
    })
    .await;
    assert!(seen, "{:#?}", otel.points());
    assert_eq!(
        otel.total(
            "plain.jobs.queue.scheduled",
            &[("messaging.destination.name", "idle")]
        ),
        1.0
    );
    assert_eq!(
        otel.total(
            "plain.jobs.running",
            &[("messaging.destination.name", "idle")]
        ),
        0.0
    );
    assert!(
        otel.total(
            "plain.jobs.queue.oldest.age",
            &[("messaging.destination.name", "idle")]
        ) >= 0.0
    );
    assert_eq!(
        otel.total(
            "plain.jobs.workers",
            &[("plain.jobs.worker.state", "active")]
        ),
        1.0
    );
    w.stop().await.unwrap();
    // The gauge readings made no span; an idle worker exports none.
    assert!(
        otel.spans().iter().all(|s| s.name.starts_with("send ")),
        "{:#?}",
        otel.spans()
    );
}

conformance!(
    runs_are_spans_linked_to_their_enqueue_and_counted,
    deferrals_and_refused_deferrals,
    a_skipped_enqueue_is_marked_and_not_counted,
    a_bulk_enqueue_is_one_span_and_counted_per_job,
    sends_in_a_transaction_count_on_commit_only,
    lost_and_cancelled_are_counted_without_spans,
    the_gauges_read_the_queue,
);
