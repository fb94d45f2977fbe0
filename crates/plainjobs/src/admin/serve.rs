//! Serving the dashboard alone (`plainjobs admin`): on 127.0.0.1 by default; on any other
//! address only with a sign-in configured.

use std::future::Future;
use std::net::SocketAddr;

use super::Dashboard;

/// Where `plainjobs admin` listens unless told otherwise.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

/// Why the dashboard could not be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A non-loopback address without a sign-in.
    #[error(
        "refusing to serve the dashboard on {0} without a sign-in: set admin_token (or \
         admin_username and admin_password) in plainjobs.toml, or PLAINJOBS_ADMIN_TOKEN, or bind \
         127.0.0.1"
    )]
    AuthRequired(SocketAddr),
    /// The address could not be bound, or serving failed.
    #[error("cannot serve the dashboard on {addr}: {source}")]
    Io {
        /// The address.
        addr: SocketAddr,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}

/// Serves `dashboard` on `addr` until `shutdown` completes. Only a loopback address may go
/// without [`Dashboard::auth`].
///
/// # Example
/// ```no_run
/// # async fn demo(jobs: plainjobs::Jobs) -> Result<(), plainjobs::admin::ServeError> {
/// use plainjobs::admin::{serve, Dashboard};
/// let addr = plainjobs::admin::DEFAULT_BIND.parse().expect("an address");
/// serve(Dashboard::new(jobs), addr, async { let _ = tokio::signal::ctrl_c().await; }).await
/// # }
/// ```
///
/// # Errors
/// [`ServeError::AuthRequired`] before binding anything, [`ServeError::Io`] when the address
/// is taken or serving fails.
pub async fn serve(
    dashboard: Dashboard,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    if !addr.ip().is_loopback() && !dashboard.has_auth() {
        return Err(ServeError::AuthRequired(addr));
    }
    let io = |source| ServeError::Io { addr, source };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(io)?;
    let local = listener.local_addr().map_err(io)?;
    tracing::info!(address = %local, "dashboard listening");
    eprintln!("plainjobs dashboard: http://{local}/");
    axum::serve(listener, dashboard.router())
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(io)
}
