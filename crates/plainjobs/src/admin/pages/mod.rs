//! The pages: one module each, with its query, its view and its templates' structs.

pub(crate) mod job;
pub(crate) mod overview;
pub(crate) mod processes;
pub(crate) mod requests;
pub(crate) mod results;
pub(crate) mod schedules;
pub(crate) mod workers;

use serde::Deserialize;

use super::error::DashboardError;
use crate::store::{Cursor, Page};

/// Any path the dashboard does not have.
pub(crate) async fn not_found() -> DashboardError {
    DashboardError::NotFound
}

/// The keyset of a list's query string: `?next=ID` or `?prev=ID`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub(crate) struct Keyset {
    pub next: Option<i64>,
    pub prev: Option<i64>,
}

impl Keyset {
    pub(crate) fn cursor(self) -> Cursor {
        match (self.next, self.prev) {
            (Some(id), _) => Cursor::Next(id),
            (None, Some(id)) => Cursor::Prev(id),
            (None, None) => Cursor::First,
        }
    }
}

/// A list's filters as query-string pairs (the empty ones left out).
pub(crate) fn query_string(pairs: &[(&str, Option<&str>)]) -> String {
    let set: Vec<(&str, &str)> = pairs
        .iter()
        .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (*k, v)))
        .collect();
    serde_urlencoded::to_string(set).unwrap_or_default()
}

/// Links to the pages around a page: `{path}?{filters}&next=ID`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pager {
    pub next: Option<String>,
    pub prev: Option<String>,
    /// This page, for the live refresh and for actions to come back to.
    pub this: String,
}

impl Pager {
    pub(crate) fn new<T>(path: &str, filters: &str, page: &Page<T>, keyset: Keyset) -> Pager {
        let with = |cursor: Option<Cursor>| {
            let (key, id) = match cursor? {
                Cursor::Next(id) => ("next", id),
                Cursor::Prev(id) => ("prev", id),
                Cursor::First => return None,
            };
            let sep = if filters.is_empty() { "" } else { "&" };
            Some(format!("{path}?{filters}{sep}{key}={id}"))
        };
        let this = match keyset.cursor() {
            Cursor::First if filters.is_empty() => path.to_string(),
            Cursor::First => format!("{path}?{filters}"),
            cursor => with(Some(cursor)).unwrap_or_else(|| path.to_string()),
        };
        Pager {
            next: with(page.next),
            prev: with(page.prev),
            this,
        }
    }
}

/// Empty text is no filter.
pub(crate) fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// `?q=` of the search box.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct FindQuery {
    q: Option<String>,
}

/// `GET /find`: a uuid opens that job's page (whichever of its rows it names); anything else
/// lists the results of the job name.
pub(crate) async fn find(
    base: super::web::Base,
    axum::extract::Query(q): axum::extract::Query<FindQuery>,
) -> axum::response::Redirect {
    let text = given(&q.q).unwrap_or("");
    let to = match uuid::Uuid::parse_str(text) {
        Ok(uuid) => format!("{}/jobs/{uuid}", base.0),
        Err(_) if text.is_empty() => base.home(),
        Err(_) => format!(
            "{}/results?{}",
            base.0,
            query_string(&[("job", Some(text))])
        ),
    };
    axum::response::Redirect::to(&to)
}
