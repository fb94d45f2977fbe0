//! [`JobError`]: a job's own failure, with its causes and an optional backtrace.

use std::backtrace::{Backtrace, BacktraceStatus};
use std::fmt;

/// A job's failure: any error, with its causes and (when `RUST_BACKTRACE` or
/// `RUST_LIB_BACKTRACE` is set) a backtrace. `?` converts any `std::error::Error` into it.
///
/// An error made from a message ([`JobError::msg`]) has no backtrace: it is a failure the job
/// describes itself (a command's exit status, a refused request), where the stack of the code
/// that noticed it tells the reader nothing.
pub struct JobError {
    inner: Box<dyn std::error::Error + Send + Sync + 'static>,
    backtrace: Backtrace,
    type_name: &'static str,
}

#[derive(Debug)]
struct Message(String);
impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Message {}

impl JobError {
    /// An error from a message (no backtrace).
    pub fn msg(message: impl fmt::Display) -> JobError {
        JobError {
            inner: Box::new(Message(message.to_string())),
            backtrace: Backtrace::disabled(),
            type_name: "plainjobs::JobError",
        }
    }

    /// The underlying error.
    pub fn inner(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.inner
    }

    /// The Rust type of the error it was made from (`std::io::error::Error`), or
    /// `plainjobs::JobError` for one made from a message: telemetry's `error.type`.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// The message and its causes, one per line (what logs show).
    pub fn chain(&self) -> String {
        crate::error::error_chain(&*self.inner)
    }

    /// The text stored in the result's `error` column: message, causes, backtrace.
    pub fn report(&self) -> String {
        let mut out = crate::error::error_chain(&*self.inner);
        if self.backtrace.status() == BacktraceStatus::Captured {
            out.push_str("\n\nBacktrace:\n");
            out.push_str(&self.backtrace.to_string());
        }
        out
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for JobError {
    fn from(err: E) -> Self {
        JobError {
            inner: Box::new(err),
            backtrace: Backtrace::capture(),
            type_name: std::any::type_name::<E>(),
        }
    }
}

impl fmt::Debug for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.report())
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}
