//! The `send {queue}` span and the sent metric around one enqueue (or one bulk enqueue, or a
//! worker's follow-up): the row stores the span's context when it is sampled, and the metric
//! counts what committed.

use std::panic::Location;
use std::time::{Duration, Instant};

use tracing::Span;

use crate::model::JobRequest;
use crate::store::NewRequest;
use crate::telemetry::hooks as otel;
use crate::{Error, Jobs};

/// One send in progress.
pub(crate) struct Sending {
    span: Span,
    began: Instant,
}

impl Sending {
    /// Opens the span (a child of the caller's current span).
    pub(crate) fn start() -> Sending {
        Sending {
            span: otel::send_span(),
            began: Instant::now(),
        }
    }

    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.began.elapsed()
    }

    /// Names the span after `req`'s queue and job, and stores the span's context in `req`
    /// when the caller gave none and the span is sampled (`batch`: the number of jobs of a
    /// bulk enqueue, whose rows all store the one span's context).
    pub(crate) fn describe(
        &self,
        req: &mut NewRequest,
        caller: Option<&Location<'_>>,
        batch: Option<usize>,
    ) -> Option<(String, String)> {
        otel::describe_send(
            &self.span,
            &req.queue,
            &req.job_class,
            req.uuid,
            caller,
            batch,
        );
        let context = otel::sampled_context(&self.span);
        stamp(req, context.clone());
        context
    }

    /// As [`describe`](Sending::describe) for a worker's follow-up (a retry, a deferral), which
    /// plain.jobs enqueues inside the run's span: the new request links to this span when it
    /// is sampled (and so to the run), else keeps the context it copied from its origin.
    pub(crate) fn describe_follow_up(&self, req: &mut NewRequest) {
        otel::describe_send(&self.span, &req.queue, &req.job_class, req.uuid, None, None);
        if let Some((trace_id, span_id)) = otel::sampled_context(&self.span) {
            req.trace_id = Some(trace_id);
            req.span_id = Some(span_id);
        }
    }

    /// Records how a single enqueue ended: refused (`job.enqueue.skipped`, not counted),
    /// failed (the error on the span, counted with `error.type`), or made (counted when
    /// `committed`; an enqueue in the caller's transaction is counted once it commits).
    pub(crate) fn finish(
        &self,
        jobs: &Jobs,
        queue: &str,
        job_class: &str,
        outcome: std::result::Result<&Option<JobRequest>, &Error>,
        committed: bool,
    ) {
        let took = self.elapsed();
        match outcome {
            Ok(None) => otel::flag(&self.span, otel::ENQUEUE_SKIPPED),
            Ok(Some(_)) if committed => {
                if let Some(m) = jobs.metrics() {
                    m.sent(queue, job_class, None, took);
                }
            }
            Ok(Some(_)) => {}
            Err(e) => self.failed(jobs, queue, job_class, e),
        }
    }

    /// An enqueue refused before it had a queue (a value the schema cannot hold): the error
    /// on the span only.
    pub(crate) fn failed_early(&self, e: &Error) {
        otel::record_error(&self.span, e.kind_name(), &e.to_string());
    }

    /// A failed enqueue: the error on the span, and counted with its `error.type`.
    pub(crate) fn failed(&self, jobs: &Jobs, queue: &str, job_class: &str, e: &Error) {
        let error_type = e.kind_name();
        otel::record_error(&self.span, error_type, &e.to_string());
        if let Some(m) = jobs.metrics() {
            m.sent(queue, job_class, Some(error_type), self.elapsed());
        }
    }
}

/// Stores `context` in `req` unless it has one.
pub(crate) fn stamp(req: &mut NewRequest, context: Option<(String, String)>) {
    if req.trace_id.is_none() {
        if let Some((trace_id, span_id)) = context {
            req.trace_id = Some(trace_id);
            req.span_id = Some(span_id);
        }
    }
}
