//! The web dashboard (feature `admin`): the job tables as an operator wants to see them —
//! queues, throughput and failures at a glance, every request, process, result and worker,
//! one job's whole chain of attempts, the cron schedules — with retry, delete and run-now.
//!
//! It is an axum [`Router`](axum::Router) to nest in an application's own server, or served
//! alone by `plainjobs admin` ([`serve`]). Pages are rendered on the server from templates
//! checked at compile time; a few lines of JavaScript (embedded, like every asset) refresh the
//! overview and the lists in place. It needs no internet access.
//!
//! # Example
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use plainjobs::admin::{Auth, Dashboard};
//!
//! let jobs = plainjobs::Jobs::connect("postgres://app@127.0.0.1/app").await?;
//! let dashboard = Dashboard::new(jobs)
//!     .schedules(&[("cmd:pg_dump app > /backups/app.sql".into(), "0 3 * * *".into())])
//!     .auth(Auth::token(std::env::var("JOBS_DASHBOARD_TOKEN")?)?);
//! let app = axum::Router::new().nest("/admin/jobs", dashboard.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! # Security
//! - [`serve`] binds 127.0.0.1 unless told otherwise, and refuses any other address without
//!   [`Auth`] (a token, or a user name and password). A nested router is the application's:
//!   give it [`Dashboard::auth`] or put it behind the application's own sign-in.
//! - Every action is a POST carrying a CSRF token bound to a cookie (`axum_csrf`), and is
//!   refused when the browser says it comes from another site.
//! - Everything that comes from a job (names, parameters, error text, keys) is escaped by the
//!   templates; a Content-Security-Policy allows no inline script at all.
//! - [`Dashboard::read_only`] hides every action and refuses them.
//! - Neither the database URL nor any secret is ever shown; database errors are logged, and
//!   pages say only that the database did not answer.
//!
//! # Cost to the workers
//! The overview is one shared snapshot refreshed every few seconds while someone watches (see
//! `live.rs`): depths from the request and process tables, workers, and only the results
//! written since the last refresh, by primary key. Lists are read by keyset on indexes that
//! exist, and cached for one refresh interval, so a hundred browsers watching one list cost
//! one query per interval.

mod actions;
mod assets;
mod auth;
mod cache;
mod chart;
mod error;
mod format;
mod live;
mod pages;
mod serve;
#[cfg(test)]
mod tests;
mod trend;
mod web;

use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;

pub use auth::{Auth, EmptySecret};
pub use error::DashboardError;
pub use serve::{serve, ServeError, DEFAULT_BIND};

use crate::registry::Registry;
use crate::schedule::Schedule;
use crate::settings::Settings;
use crate::Jobs;

/// A dashboard on a [`Jobs`] handle: configure it, then take its [`Router`](axum::Router).
///
/// # Example
/// ```no_run
/// # fn demo(jobs: plainjobs::Jobs) {
/// let router = plainjobs::admin::Dashboard::new(jobs).read_only(true).router();
/// # }
/// ```
#[derive(Clone)]
pub struct Dashboard {
    jobs: Jobs,
    registry: Registry,
    schedules: Vec<(String, String)>,
    timezone: chrono_tz::Tz,
    auth: Option<Auth>,
    read_only: bool,
    refresh: Duration,
    heartbeat_timeout: Duration,
    trend_window: Duration,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard")
            .field("schedules", &self.schedules)
            .field("auth", &self.auth)
            .field("read_only", &self.read_only)
            .field("refresh", &self.refresh)
            .finish_non_exhaustive()
    }
}

/// A [`Dashboard`] with the defaults, as a router: `plainjobs::admin::router(jobs)`.
pub fn router(jobs: Jobs) -> Router {
    Dashboard::new(jobs).router()
}

impl Dashboard {
    /// A dashboard with the defaults: no schedules, refreshed every 2 s, workers stale after
    /// 300 s without a heartbeat, results charted over 24 hours, no sign-in.
    pub fn new(jobs: Jobs) -> Dashboard {
        Dashboard {
            jobs,
            registry: Registry::new(),
            schedules: Vec::new(),
            timezone: chrono_tz::UTC,
            auth: None,
            read_only: false,
            refresh: Duration::from_secs(2),
            heartbeat_timeout: Duration::from_secs(300),
            trend_window: Duration::from_secs(24 * 3600),
        }
    }

    /// As configured: the schedules, their time zone and the heartbeat timeout of `settings`,
    /// and the sign-in and read-only mode of its `admin_*` keys.
    ///
    /// # Errors
    /// [`EmptySecret`] when a configured token or password is empty.
    pub fn from_settings(jobs: Jobs, settings: &Settings) -> Result<Dashboard, EmptySecret> {
        let auth = match (
            &settings.admin_token,
            &settings.admin_username,
            &settings.admin_password,
        ) {
            (Some(token), _, _) => Some(Auth::token(token.expose())?),
            (None, Some(user), Some(password)) => {
                Some(Auth::basic(user.as_str(), password.expose())?)
            }
            (None, None, Some(password)) => Some(Auth::basic("admin", password.expose())?),
            _ => None,
        };
        let mut dashboard = Dashboard::new(jobs)
            .schedules(&settings.schedules)
            .timezone(settings.timezone)
            .heartbeat_timeout(settings.heartbeat_timeout)
            .read_only(settings.admin_read_only);
        dashboard.auth = auth;
        Ok(dashboard)
    }

    /// The job types, for retries with their own backoff and uniqueness (unknown names are
    /// retried as they are).
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = registry;
        self
    }

    /// The cron schedules to show: `(job name or "cmd:<command>", cron)` pairs, as in
    /// `plainjobs.toml`.
    pub fn schedules(mut self, schedules: &[(String, String)]) -> Self {
        self.schedules = schedules.to_vec();
        self
    }

    /// The time zone the schedules are evaluated in (UTC by default).
    pub fn timezone(mut self, timezone: chrono_tz::Tz) -> Self {
        self.timezone = timezone;
        self
    }

    /// Requires this sign-in on every request.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Shows everything and changes nothing: no action buttons, and actions are refused.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// How often the overview is refreshed while someone watches, and how long lists are
    /// cached (at least 500 ms).
    pub fn refresh_every(mut self, interval: Duration) -> Self {
        self.refresh = interval.max(Duration::from_millis(500));
        self
    }

    /// Workers whose last heartbeat is older than this are shown as stale.
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.heartbeat_timeout = timeout;
        self
    }

    /// Whether a sign-in is required.
    pub fn has_auth(&self) -> bool {
        self.auth.is_some()
    }

    /// The router: pages, their live updates, actions and assets, all relative to wherever it
    /// is nested.
    pub fn router(self) -> Router {
        let auth = self.auth.clone();
        let state = web::App::new(self);
        let router = Router::new()
            .route("/", get(pages::overview::page))
            .route("/live/overview", get(pages::overview::live))
            .route("/requests", get(pages::requests::page))
            .route("/processes", get(pages::processes::page))
            .route("/results", get(pages::results::page))
            .route("/workers", get(pages::workers::page))
            .route("/jobs/{uuid}", get(pages::job::page))
            .route("/schedules", get(pages::schedules::page))
            .route("/find", get(pages::find))
            .route("/actions/{action}", post(actions::act))
            .route("/assets/{file}", get(assets::serve))
            .fallback(pages::not_found)
            .with_state(state);
        let router = web::with_security_headers(router);
        match auth {
            Some(auth) => router.layer(axum::middleware::from_fn_with_state(auth, auth::require)),
            None => router,
        }
    }
}

/// A configured schedule, parsed.
#[derive(Debug, Clone)]
pub(crate) struct ScheduleEntry {
    pub target: String,
    pub cron: String,
    pub schedule: Result<Schedule, String>,
}

impl ScheduleEntry {
    fn parse(target: &str, cron: &str) -> ScheduleEntry {
        ScheduleEntry {
            target: target.to_string(),
            cron: cron.to_string(),
            schedule: Schedule::parse(cron).map_err(|e| e.to_string()),
        }
    }
}
