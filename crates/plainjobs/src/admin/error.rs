//! What goes wrong in a request, and what the browser is told: never a database URL, a
//! password or an error's inner text — those go to the log.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// A request the dashboard could not serve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DashboardError {
    /// The database failed (the details are logged, not shown).
    #[error("database error: {0}")]
    Database(std::sync::Arc<crate::Error>),
    /// The overview has no snapshot yet: its first refresh failed or is late.
    #[error("no snapshot of the queues yet")]
    Unavailable,
    /// A page failed to render.
    #[error("template error: {0}")]
    Template(askama::Error),
    /// No such page or job.
    #[error("not found")]
    NotFound,
    /// An action in read-only mode.
    #[error("the dashboard is read-only")]
    ReadOnly,
    /// An action without a valid CSRF token, or from another site.
    #[error("the form has expired or comes from another site")]
    Csrf,
    /// Malformed input.
    #[error("bad request: {0}")]
    BadRequest(String),
}

impl From<crate::Error> for DashboardError {
    fn from(e: crate::Error) -> Self {
        DashboardError::Database(std::sync::Arc::new(e))
    }
}

impl IntoResponse for DashboardError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            DashboardError::Database(e) => {
                tracing::warn!(error = %e, "dashboard: database error");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The database did not answer. Details are in the server's log.".to_string(),
                )
            }
            DashboardError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "The database did not answer. Details are in the server's log.".to_string(),
            ),
            DashboardError::Template(e) => {
                tracing::error!(error = %e, "dashboard: template error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The page could not be shown. Details are in the server's log.".to_string(),
                )
            }
            DashboardError::NotFound => (
                StatusCode::NOT_FOUND,
                "Nothing here: no such page or job.".to_string(),
            ),
            DashboardError::ReadOnly => (
                StatusCode::FORBIDDEN,
                "This dashboard is read-only.".to_string(),
            ),
            DashboardError::Csrf => (
                StatusCode::FORBIDDEN,
                "The form has expired or comes from another site: reload the page and try again."
                    .to_string(),
            ),
            DashboardError::BadRequest(why) => (StatusCode::BAD_REQUEST, why.clone()),
        };
        let body = format!(
            "<!doctype html><meta charset=utf-8><title>plainjobs</title><p>{}</p>",
            escape(&message)
        );
        (status, Html(body)).into_response()
    }
}

/// The five characters HTML needs escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
