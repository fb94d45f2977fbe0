//! What every page shares: the dashboard's state, the page chrome (where the dashboard is
//! mounted, the CSRF token, read-only mode), rendering, and the security headers.

use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::extract::{FromRef, FromRequestParts, OriginalUri};
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Response};
use axum_csrf::{CsrfConfig, CsrfToken, SameSite};
use tower_http::set_header::SetResponseHeaderLayer;

use super::cache::ListCache;
use super::error::DashboardError;
use super::live::Live;
use super::{Dashboard, ScheduleEntry};
use crate::registry::Registry;
use crate::Jobs;

/// The state of one dashboard, shared by its handlers.
#[derive(Clone)]
pub(crate) struct App(pub Arc<Inner>);

pub(crate) struct Inner {
    pub jobs: Jobs,
    pub registry: Registry,
    pub schedules: Vec<ScheduleEntry>,
    pub timezone: chrono_tz::Tz,
    pub read_only: bool,
    pub heartbeat_timeout: Duration,
    pub live: Arc<Live>,
    pub lists: ListCache,
    pub csrf: CsrfConfig,
}

impl App {
    pub(crate) fn new(d: Dashboard) -> App {
        let csrf = CsrfConfig::default()
            .with_cookie_name("plainjobs_csrf")
            .with_cookie_same_site(SameSite::Strict)
            .with_http_only(true);
        let schedules = d
            .schedules
            .iter()
            .map(|(target, cron)| ScheduleEntry::parse(target, cron))
            .collect();
        App(Arc::new(Inner {
            live: Live::new(d.jobs.clone(), d.refresh, d.trend_window),
            lists: ListCache::new(d.refresh),
            jobs: d.jobs,
            registry: d.registry,
            schedules,
            timezone: d.timezone,
            read_only: d.read_only,
            heartbeat_timeout: d.heartbeat_timeout,
            csrf,
        }))
    }
}

impl std::ops::Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl FromRef<App> for CsrfConfig {
    fn from_ref(app: &App) -> CsrfConfig {
        app.csrf.clone()
    }
}

/// Where the dashboard is mounted (`""` at the root, `/admin/jobs` when nested there): the
/// prefix of every link it writes.
#[derive(Debug, Clone)]
pub(crate) struct Base(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Base {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Base, Self::Rejection> {
        let inner = parts.uri.path().to_string();
        let full = parts
            .extensions
            .get::<OriginalUri>()
            .map(|o| o.0.path().to_string())
            .unwrap_or_else(|| inner.clone());
        let base = full
            .strip_suffix(inner.as_str())
            .unwrap_or_else(|| full.trim_end_matches('/'));
        Ok(Base(base.trim_end_matches('/').to_string()))
    }
}

impl Base {
    /// The overview's address.
    pub(crate) fn home(&self) -> String {
        if self.0.is_empty() {
            "/".to_string()
        } else {
            self.0.clone()
        }
    }
}

/// What the layout needs on every page.
#[derive(Debug, Clone)]
pub(crate) struct Chrome {
    pub base: String,
    /// The overview's address: the base itself (`/` at the root), since a router nested at
    /// `/admin` answers `/admin` but not `/admin/`.
    pub home: String,
    /// The CSRF token for forms.
    pub csrf: String,
    pub read_only: bool,
    /// The nav entry of this page.
    pub active: &'static str,
    /// How often live parts refresh, in milliseconds.
    pub refresh_ms: u128,
    pub backend: &'static str,
}

impl Chrome {
    pub(crate) fn new(
        app: &App,
        base: Base,
        token: &CsrfToken,
        active: &'static str,
    ) -> Result<Chrome, DashboardError> {
        Ok(Chrome {
            home: base.home(),
            base: base.0,
            csrf: token
                .authenticity_token()
                .map_err(|_| DashboardError::Csrf)?,
            read_only: app.read_only,
            active,
            refresh_ms: app.live.interval().as_millis(),
            backend: match app.jobs.backend() {
                crate::Backend::Postgres => "PostgreSQL",
                crate::Backend::Sqlite => "SQLite",
            },
        })
    }
}

/// A rendered template as a response, with the CSRF cookie set.
pub(crate) fn render(token: CsrfToken, page: &impl Template) -> Result<Response, DashboardError> {
    let html = page.render().map_err(DashboardError::Template)?;
    Ok((token, Html(html)).into_response())
}

/// A rendered fragment (a live update): no cookie, never cached by the browser.
pub(crate) fn fragment(page: &impl Template) -> Result<Response, DashboardError> {
    let html = page.render().map_err(DashboardError::Template)?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response())
}

/// Headers on every response: no inline script or style may run (so an escaped-but-clever
/// payload cannot either), no framing, no sniffing, no referrer to other sites.
pub(crate) fn with_security_headers(router: axum::Router) -> axum::Router {
    let headers: [(HeaderName, &'static str); 4] = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
    ];
    headers.into_iter().fold(router, |router, (name, value)| {
        router.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ))
    })
}
