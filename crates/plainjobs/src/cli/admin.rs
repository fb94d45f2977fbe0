//! `plainjobs admin`: the web dashboard alone, until Ctrl-C or SIGTERM.

use clap::Args;

use crate::cli::context::Ctx;
use crate::cli::error::{failure, usage, CliError};
use crate::registry::Registry;

/// `admin` options.
#[derive(Debug, Clone, Args)]
pub struct AdminArgs {
    /// Address to listen on, e.g. 127.0.0.1:8080 or 0.0.0.0:8080.
    #[arg(long, value_name = "ADDR", default_value = crate::admin::DEFAULT_BIND)]
    pub bind: String,
    /// Show everything, change nothing (also admin_read_only in plainjobs.toml).
    #[arg(long)]
    pub read_only: bool,
}

/// Serves the dashboard on `--bind` until Ctrl-C or SIGTERM.
pub(crate) async fn admin(ctx: &Ctx, a: AdminArgs, registry: Registry) -> Result<(), CliError> {
    let addr: std::net::SocketAddr = a.bind.parse().map_err(|_| {
        usage(format!(
            "--bind {:?} is not an address like 127.0.0.1:8080",
            a.bind
        ))
    })?;
    // Refused before connecting: a usage error needs no database.
    let s = &ctx.settings;
    let signs_in =
        s.admin_token.is_some() || (s.admin_username.is_some() && s.admin_password.is_some());
    if !addr.ip().is_loopback() && !signs_in {
        return Err(usage(
            crate::admin::ServeError::AuthRequired(addr).to_string(),
        ));
    }
    let jobs = ctx.jobs().await?;
    let dashboard = crate::admin::Dashboard::from_settings(jobs, &ctx.settings)
        .map_err(|e| usage(e.to_string()))?
        .registry(registry)
        .read_only(a.read_only || ctx.settings.admin_read_only);
    crate::admin::serve(dashboard, addr, stop_signal())
        .await
        .map_err(|e| match e {
            crate::admin::ServeError::AuthRequired(_) => usage(e.to_string()),
            other => failure(other.to_string()),
        })
}

/// Completes on Ctrl-C or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
