//! What the job path calls, in both builds: with the `otel` feature the real spans and
//! instruments, without it the no-ops of `off.rs`.

pub(crate) use super::tracing_spans::{process_span, send_span};

#[cfg(feature = "otel")]
pub(crate) use super::{
    metrics::Metrics,
    spans::{describe_process, describe_send, error_span, flag, record_error, sampled_context},
};

#[cfg(not(feature = "otel"))]
pub(crate) use super::off::{
    describe_process, describe_send, error_span, flag, record_error, sampled_context, Metrics,
};

pub(crate) use super::names::{
    CLAIM_ERROR_SPAN, DEFER_SKIPPED, ENQUEUE_SKIPPED, HEARTBEAT_ERROR_SPAN,
};
