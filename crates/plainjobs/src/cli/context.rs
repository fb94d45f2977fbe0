//! What every command starts from: the settings in effect, whether to print JSON, and a
//! connection to the job tables — one that never creates an empty database for a command
//! that only reads or acts on jobs that exist.

use crate::cli::error::{failure, usage, CliError};
use crate::cli::GlobalArgs;
use crate::settings::Settings;
use crate::telemetry::hooks::Metrics;
use crate::{redact_url, ConnectOptions, Jobs};

/// The settings and output mode of one command.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Defaults, file, environment and flags, merged.
    pub settings: Settings,
    /// Print JSON instead of text.
    pub json: bool,
    /// What every handle this context opens records on (feature `otel`).
    pub(crate) metrics: Option<Metrics>,
}

impl Ctx {
    /// Loads the settings named by the global options.
    ///
    /// # Errors
    /// [`CliError::Usage`] naming the bad key, variable or file.
    pub fn load(global: &GlobalArgs) -> Result<Ctx, CliError> {
        Ok(Ctx {
            settings: load_settings(global)?,
            json: global.json,
            metrics: None,
        })
    }

    /// The database URL in effect, its password replaced by `***`.
    pub fn database(&self) -> String {
        redact_url(self.settings.database_url_or_default())
    }

    /// Connects to job tables that exist. A SQLite file that does not exist is not created, and
    /// missing tables are reported with what to do (`plainjobs migrate`) rather than as SQL.
    ///
    /// # Errors
    /// [`CliError`] saying which database and what is missing.
    pub async fn jobs(&self) -> Result<Jobs, CliError> {
        let jobs = self.open(false).await?;
        let schema = jobs.check_schema().await?;
        if !schema.tables {
            return Err(failure(format!(
                "the job tables do not exist in {}: run `plainjobs migrate` (or check the database URL, set by {})",
                self.database(),
                self.settings.origin("database_url")
            )));
        }
        Ok(jobs)
    }

    /// Connects, creating a SQLite file that does not exist (for `migrate` and `worker`).
    ///
    /// # Errors
    /// [`CliError`] when the database cannot be reached or the URL is not one.
    pub async fn jobs_creating(&self) -> Result<Jobs, CliError> {
        self.open(true).await
    }

    /// Connects without creating a SQLite file and without looking for the tables.
    pub(crate) async fn jobs_as_they_are(&self) -> Result<Jobs, CliError> {
        self.open(false).await
    }

    async fn open(&self, create_if_missing: bool) -> Result<Jobs, CliError> {
        let url = self.settings.database_url_or_default();
        check_scheme(url, self.settings.origin("database_url"))?;
        let options = ConnectOptions {
            create_if_missing,
            ..ConnectOptions::default()
        };
        match Jobs::connect_with(url, options).await {
            Ok(jobs) => Ok(jobs.recording(self.metrics.clone())),
            Err(crate::Error::NoDatabase(db)) => Err(failure(format!(
                "no database at {db}: the file does not exist. Run `plainjobs migrate` to create it, or point --database-url at an existing one (now set by {})",
                self.settings.origin("database_url")
            ))),
            Err(e) => Err(e.into()),
        }
    }
}

/// A URL without a scheme is most likely a file path meant for SQLite: say how to write it.
fn check_scheme(url: &str, origin: &str) -> Result<(), CliError> {
    if url.contains("://") || url.starts_with("sqlite:") {
        return Ok(());
    }
    Err(usage(format!(
        "database URL {:?} (set by {origin}) has no scheme: write sqlite://{url} for a SQLite file, or postgres://USER:PASSWORD@HOST/DATABASE for PostgreSQL",
        redact_url(url)
    )))
}

/// Loads settings: file, environment, then the global flags.
///
/// # Errors
/// [`CliError::Usage`] naming the bad key.
pub fn load_settings(global: &GlobalArgs) -> Result<Settings, CliError> {
    let mut settings =
        Settings::load(global.config.as_deref()).map_err(|e| usage(e.to_string()))?;
    if let Some(url) = &global.database_url {
        settings
            .set_from("database_url", url, "--database-url")
            .map_err(|e| usage(e.to_string()))?;
    }
    Ok(settings)
}

/// Connects to the configured database, or to the embedded default
/// ([`DEFAULT_DATABASE_URL`](crate::settings::DEFAULT_DATABASE_URL), a SQLite file in the working
/// directory) when none is configured, creating a SQLite file that does not exist.
///
/// # Errors
/// A failure when the database cannot be reached, a usage error for an unsupported URL.
pub async fn connect(settings: &Settings) -> Result<Jobs, CliError> {
    let ctx = Ctx {
        settings: settings.clone(),
        json: false,
        metrics: None,
    };
    ctx.jobs_creating().await
}
