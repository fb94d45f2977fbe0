//! The actions: retry or delete results, cancel jobs (waiting or running), run requests now,
//! pause and resume a queue. Each is a POST from
//! a form of the dashboard with its CSRF token, refused in read-only mode or when the browser
//! says the request comes from another site; it answers with a redirect back to the page it
//! came from, saying what it did.

use axum::extract::{Path, State};
use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use axum_csrf::CsrfToken;
use uuid::Uuid;

use super::error::DashboardError;
use super::web::{App, Base};

/// What a form sends: its token, the uuids or the queue it acts on, and the page to go back to.
struct Submitted {
    token: String,
    uuids: Vec<Uuid>,
    queue: String,
    back: String,
}

impl Submitted {
    fn read(fields: Vec<(String, String)>) -> Result<Submitted, DashboardError> {
        let mut submitted = Submitted {
            token: String::new(),
            uuids: Vec::new(),
            queue: String::new(),
            back: String::new(),
        };
        for (name, value) in fields {
            match name.as_str() {
                "authenticity_token" => submitted.token = value,
                "uuid" => {
                    submitted
                        .uuids
                        .push(Uuid::parse_str(value.trim()).map_err(|_| {
                            DashboardError::BadRequest(format!("{value:?} is not a uuid"))
                        })?)
                }
                "queue" => submitted.queue = value,
                "back" => submitted.back = value,
                _ => {}
            }
        }
        Ok(submitted)
    }
}

/// `POST /actions/{action}`.
pub(crate) async fn act(
    State(app): State<App>,
    base: Base,
    token: CsrfToken,
    headers: HeaderMap,
    Path(action): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, DashboardError> {
    if app.read_only {
        return Err(DashboardError::ReadOnly);
    }
    if !same_site(&headers) {
        return Err(DashboardError::Csrf);
    }
    let submitted = Submitted::read(fields)?;
    token
        .verify(&submitted.token)
        .map_err(|_| DashboardError::Csrf)?;
    let uuids = &submitted.uuids;
    let done = match action.as_str() {
        "retry" => {
            let mut retried = 0;
            for uuid in uuids {
                if app
                    .jobs
                    .retry_result(*uuid, &app.registry, true)
                    .await?
                    .is_some()
                {
                    retried += 1;
                }
            }
            said(retried, uuids.len(), "retried")
        }
        "delete-results" => said(
            app.jobs.delete_results(uuids).await?,
            uuids.len(),
            "deleted",
        ),
        "cancel" => {
            let cancelled = app.jobs.cancel_many(uuids, "the dashboard").await?;
            said(
                cancelled.requests + cancelled.processes,
                uuids.len(),
                "cancelled",
            )
        }
        "pause" | "resume" if submitted.queue.trim().is_empty() => {
            return Err(DashboardError::BadRequest(
                "no queue given: pause and resume act on one queue".into(),
            ))
        }
        "pause" => {
            let paused = app
                .jobs
                .pause_queue(&submitted.queue, "the dashboard")
                .await?;
            queue_said(&submitted.queue, paused, "paused")
        }
        "resume" => {
            let resumed = app.jobs.resume_queue(&submitted.queue).await?;
            queue_said(&submitted.queue, resumed, "resumed")
        }
        "run-now" => said(
            app.jobs.run_now(uuids).await?,
            uuids.len(),
            "made ready to run now",
        ),
        _ => return Err(DashboardError::NotFound),
    };
    app.lists.clear();
    let back = safe_back(&submitted.back);
    let sep = if back.contains('?') { '&' } else { '?' };
    let notice = serde_urlencoded::to_string([("done", done)]).unwrap_or_default();
    let page = if back.is_empty() {
        base.home()
    } else {
        format!("{}/{back}", base.0)
    };
    let location = format!("{page}{sep}{notice}");
    Ok((
        StatusCode::SEE_OTHER,
        [(axum::http::header::LOCATION, location)],
    )
        .into_response())
}

/// `3 of 4 retried`.
fn said(n: impl TryInto<usize>, of: usize, what: &str) -> String {
    let n = n.try_into().unwrap_or(0);
    if n == of {
        format!("{n} {what}")
    } else {
        format!("{n} of {of} {what} (the others had moved on)")
    }
}

/// What a pause or resume did: "queue emails paused", or that it already was.
fn queue_said(queue: &str, changed: bool, what: &str) -> String {
    if changed {
        format!("queue {queue} {what}")
    } else {
        format!("queue {queue} was already {what}")
    }
}

/// Where to go back to: a page of this dashboard, given relative to it; anything else (another
/// site, a scheme, a protocol-relative path) is the overview.
fn safe_back(back: &str) -> String {
    let page = back.split(['?', '/']).next().unwrap_or("");
    let known = [
        "requests",
        "processes",
        "results",
        "workers",
        "jobs",
        "schedules",
        "",
    ];
    let clean = back
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_=&%+./?".contains(c));
    if known.contains(&page) && clean && !back.contains("//") && !back.contains("..") {
        back.to_string()
    } else {
        String::new()
    }
}

/// Whether the browser says the request comes from this site: `Sec-Fetch-Site` when it sends
/// one, else `Origin` against `Host`. Requests without either (curl, old browsers) rely on the
/// CSRF token alone.
fn same_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    let (Some(origin), Some(host)) = (
        headers.get(ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(HOST).and_then(|v| v.to_str().ok()),
    ) else {
        return true;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority == host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn only_pages_of_the_dashboard_are_gone_back_to() {
        assert_eq!(
            safe_back("results?status=ERRORED"),
            "results?status=ERRORED"
        );
        assert_eq!(safe_back("jobs/0190-ab"), "jobs/0190-ab");
        assert_eq!(safe_back("//evil.example/x"), "");
        assert_eq!(safe_back("https://evil.example"), "");
        assert_eq!(safe_back("results/../../x"), "");
        assert_eq!(safe_back("elsewhere"), "");
    }

    #[test]
    fn requests_from_another_site_are_refused() {
        let mut h = HeaderMap::new();
        assert!(same_site(&h));
        h.insert(HOST, HeaderValue::from_static("127.0.0.1:8080"));
        h.insert(ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(same_site(&h));
        h.insert(ORIGIN, HeaderValue::from_static("http://evil.example"));
        assert!(!same_site(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_site(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(same_site(&h));
    }
}
