//! How a command fails: a usage error (exit 2) or a failure (exit 1), printed as one line of
//! text, or with `--json` as a JSON object on stdout.

use serde_json::json;

/// A failed command: a usage error (exit 2) or a runtime failure (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad input: an unknown name, malformed JSON, a bad duration or cron, bad configuration.
    #[error("{0}")]
    Usage(String),
    /// Something failed at run time (the database, a job).
    #[error("{0}")]
    Failure(String),
    /// A failure whose report is printed already (a `--json` report that lists what failed):
    /// exit 1, print nothing more.
    #[error("failed (reported above)")]
    Reported,
}

impl CliError {
    /// 2 for usage errors, 1 for failures.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Failure(_) | CliError::Reported => 1,
        }
    }

    /// Prints the error: `error: …` on stderr, or with `json` `{"error": {"kind", "message",
    /// "exit_code"}}` on stdout, where a script reading the command's JSON finds it.
    pub fn print(&self, json: bool) {
        let kind = match self {
            CliError::Usage(_) => "usage",
            CliError::Failure(_) => "failure",
            CliError::Reported => return,
        };
        if json {
            let v = json!({"error": {"kind": kind, "message": self.to_string(), "exit_code": self.exit_code()}});
            println!("{v:#}");
        } else {
            eprintln!("error: {self}");
        }
    }
}

impl From<crate::Error> for CliError {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::InvalidInput { .. }
            | crate::Error::UnknownJob(_)
            | crate::Error::Params(_)
            | crate::Error::Schedule { .. }
            | crate::Error::UnsupportedUrl(_) => CliError::Usage(e.to_string()),
            other => CliError::Failure(other.to_string()),
        }
    }
}

pub(crate) fn usage(msg: impl Into<String>) -> CliError {
    CliError::Usage(msg.into())
}

pub(crate) fn failure(msg: impl Into<String>) -> CliError {
    CliError::Failure(msg.into())
}
