//! Configuration: defaults, then a `plainjobs.toml` file, then environment variables (then the
//! CLI's flags), each overriding the one before. [`REFERENCE`] lists every setting (key,
//! variable, default, meaning); docs/configuration.md explains them, and `plainjobs config`
//! shows the values in effect and where each came from.
//!
//! Durations are a number and a unit (`500ms`, `90s`, `5m`, `1h30m`, `7d`; see
//! [`parse_duration`]): a bare number other than 0 is refused, since `retention = 7` could be
//! seconds or days. Unknown keys and bad values are errors that name the key and where it was
//! set. An empty value (`PLAINJOBS_DATABASE_URL=`) counts as unset.

mod duration;
mod reference;

pub use duration::{approximate_duration, format_duration, parse_duration, DurationError};
pub use reference::{SettingInfo, REFERENCE};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The database used when none is configured: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://plainjobs.sqlite3";

/// A setting that could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// A key the file or environment names that plainjobs does not know.
    #[error("unknown setting {key} in {origin} (known: {known})")]
    UnknownKey {
        /// The key.
        key: String,
        /// Where it was found.
        origin: String,
        /// The known keys.
        known: String,
    },
    /// A value that does not parse.
    #[error("invalid value for {key} in {origin}: {problem}")]
    BadValue {
        /// The key.
        key: String,
        /// Where it was found.
        origin: String,
        /// What is wrong.
        problem: String,
    },
    /// The file could not be read or is not TOML.
    #[error("cannot read {path}: {problem}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        problem: String,
    },
}

/// The settings of a plainjobs deployment.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Settings {
    /// Where the jobs are stored.
    pub database_url: Option<String>,
    /// How long results are kept.
    pub retention: Duration,
    /// Heartbeat refresh interval.
    pub heartbeat_interval: Duration,
    /// Heartbeat age after which a worker is dead.
    pub heartbeat_timeout: Duration,
    /// Jobs run at once per worker.
    pub concurrency: usize,
    /// Jobs claimed ahead of a free slot.
    pub max_pending: usize,
    /// Stats log interval (None: off).
    pub stats_every: Option<Duration>,
    /// Time running jobs get after a shutdown request (None: unlimited).
    pub shutdown_timeout: Option<Duration>,
    /// Longest sleep between claims without a notification.
    pub poll_interval: Duration,
    /// Use LISTEN/NOTIFY.
    pub listen: bool,
    /// Queues a worker serves.
    pub queues: Vec<String>,
    /// Time zone of schedules.
    pub timezone: chrono_tz::Tz,
    /// `(job name or "cmd:<command>", cron)` pairs, like plain's JOBS_SCHEDULE.
    pub schedules: Vec<(String, String)>,
    /// Where each key's value came from (keys missing here are defaults).
    origins: BTreeMap<&'static str, String>,
    /// The file read by [`Settings::load`].
    file: Option<PathBuf>,
    /// The dashboard's sign-in token.
    pub admin_token: Option<Secret>,
    /// The dashboard's sign-in user name (with `admin_password`).
    pub admin_username: Option<String>,
    /// The dashboard's sign-in password.
    pub admin_password: Option<Secret>,
    /// The dashboard shows everything and changes nothing.
    pub admin_read_only: bool,
}

/// A secret setting (a token, a password): its `Debug` shows nothing of it.
///
/// # Example
/// ```
/// let secret = plainjobs::settings::Secret::new("hunter2");
/// assert_eq!(secret.expose(), "hunter2");
/// assert!(!format!("{secret:?}").contains("hunter2"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: None,
            retention: Duration::from_secs(7 * 24 * 3600),
            heartbeat_interval: Duration::from_secs(60),
            heartbeat_timeout: Duration::from_secs(300),
            concurrency: 10,
            max_pending: 200,
            stats_every: Some(Duration::from_secs(60)),
            shutdown_timeout: None,
            poll_interval: Duration::from_secs(1),
            listen: true,
            queues: vec!["default".to_string()],
            timezone: chrono_tz::UTC,
            schedules: Vec::new(),
            origins: BTreeMap::new(),
            file: None,
            admin_token: None,
            admin_username: None,
            admin_password: None,
            admin_read_only: false,
        }
    }
}

/// The file keys, in [`REFERENCE`]'s order.
fn keys() -> impl Iterator<Item = &'static str> {
    REFERENCE.iter().map(|s| s.key)
}

fn is_key(key: &str) -> bool {
    keys().any(|k| k == key)
}

fn bad(key: &str, origin: &str, problem: impl Into<String>) -> SettingsError {
    SettingsError::BadValue {
        key: key.to_string(),
        origin: origin.to_string(),
        problem: problem.into(),
    }
}

/// An on/off value as the environment writes it: 1/0, true/false, yes/no, on/off.
fn switch(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn optional(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

impl Settings {
    /// Defaults, then `file` (or `./plainjobs.toml` when it exists), then the environment.
    ///
    /// # Errors
    /// [`SettingsError`] naming the key or file at fault.
    pub fn load(file: Option<&Path>) -> Result<Settings, SettingsError> {
        let mut s = Settings::default();
        let default_file = Path::new("plainjobs.toml");
        let file = file.or_else(|| default_file.exists().then_some(default_file));
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| SettingsError::File {
                path: path.to_path_buf(),
                problem: e.to_string(),
            })?;
            s.apply_toml(&text, &path.display().to_string())?;
            s.file = Some(path.to_path_buf());
        }
        s.apply_env(std::env::vars())?;
        Ok(s)
    }

    /// The configuration file [`Settings::load`] read, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Applies the keys of a TOML document.
    ///
    /// # Errors
    /// [`SettingsError`] for an unknown key or a bad value.
    pub fn apply_toml(&mut self, text: &str, origin: &str) -> Result<(), SettingsError> {
        let table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| SettingsError::File {
                    path: origin.into(),
                    problem: e.to_string(),
                })?;
        self.apply_table(table, origin)
    }

    fn apply_table(&mut self, table: toml::Table, origin: &str) -> Result<(), SettingsError> {
        for (key, value) in table {
            // An empty text is unset (`database_url = ""` keeps the default).
            if value.as_str().is_some_and(|v| v.trim().is_empty()) && is_key(&key) {
                continue;
            }
            let as_text = match &value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => String::new(),
            };
            match key.as_str() {
                "queues" => {
                    let items = value
                        .as_array()
                        .ok_or_else(|| bad(&key, origin, "expected a list of queue names"))?;
                    self.queues = items
                        .iter()
                        .map(|v| {
                            v.as_str()
                                .map(str::to_string)
                                .ok_or_else(|| bad(&key, origin, "queue names are strings"))
                        })
                        .collect::<Result<_, _>>()?;
                }
                "schedule" => {
                    let items = value.as_array().ok_or_else(|| {
                        bad(
                            &key,
                            origin,
                            "expected a list of [\"job name or cmd:…\", \"cron\"] pairs",
                        )
                    })?;
                    for item in items {
                        let pair = item
                            .as_array()
                            .filter(|a| a.len() == 2)
                            .and_then(|a| Some((a[0].as_str()?, a[1].as_str()?)));
                        let (target, cron) = pair.ok_or_else(|| {
                            bad(
                                &key,
                                origin,
                                format!("{item:?} is not a [\"target\", \"cron\"] pair"),
                            )
                        })?;
                        self.schedules.push((target.to_string(), cron.to_string()));
                    }
                }
                "listen" => {
                    self.listen = value
                        .as_bool()
                        .ok_or_else(|| bad(&key, origin, "expected true or false"))?;
                }
                k if is_key(k) => self.set(k, &as_text, origin)?,
                other => {
                    return Err(SettingsError::UnknownKey {
                        key: other.to_string(),
                        origin: origin.to_string(),
                        known: keys().collect::<Vec<_>>().join(", "),
                    })
                }
            }
            self.note_origin(&key, origin);
        }
        Ok(())
    }

    /// Applies `PLAINJOBS_*` variables (and `DATABASE_URL` when `PLAINJOBS_DATABASE_URL` is
    /// absent or empty). An unknown `PLAINJOBS_*` variable is an error; an empty one counts as
    /// unset.
    ///
    /// # Errors
    /// [`SettingsError`] for an unknown variable or a bad value.
    pub fn apply_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), SettingsError> {
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        let has_own_url = vars
            .iter()
            .any(|(k, v)| k == "PLAINJOBS_DATABASE_URL" && !v.trim().is_empty());
        for (name, value) in &vars {
            if name == "DATABASE_URL" && !has_own_url && !value.trim().is_empty() {
                self.database_url = Some(value.clone());
                self.note_origin("database_url", "environment variable DATABASE_URL");
                continue;
            }
            let Some(key) = name.strip_prefix("PLAINJOBS_") else {
                continue;
            };
            let key = key.to_ascii_lowercase();
            if value.trim().is_empty() && is_key(&key) {
                continue;
            }
            let origin = format!("environment variable {name}");
            match key.as_str() {
                "queues" => {
                    self.queues = value
                        .split(',')
                        .map(|q| q.trim().to_string())
                        .filter(|q| !q.is_empty())
                        .collect();
                }
                "schedule" => {
                    for item in value.split(';').map(str::trim).filter(|i| !i.is_empty()) {
                        let (target, cron) = item.split_once('=').ok_or_else(|| {
                            bad(name, &origin, format!("{item:?} is not target=cron"))
                        })?;
                        self.schedules
                            .push((target.trim().to_string(), cron.trim().to_string()));
                    }
                }
                "listen" => {
                    self.listen = switch(value).ok_or_else(|| {
                        bad(name, &origin, format!("{value:?} is not true or false"))
                    })?
                }
                k if is_key(k) => self.set(k, value, &origin)?,
                _ => {
                    return Err(SettingsError::UnknownKey {
                        key: name.clone(),
                        origin: "the environment".into(),
                        known: REFERENCE
                            .iter()
                            .map(|s| s.env)
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
                }
            }
            self.note_origin(&key, &origin);
        }
        Ok(())
    }

    /// Sets one key from text, as a flag does, recording `origin` (such as `--database-url`).
    ///
    /// # Errors
    /// [`SettingsError`] for an unknown key or a bad value.
    ///
    /// # Example
    /// ```
    /// let mut s = plainjobs::settings::Settings::default();
    /// s.set_from("retention", "2d", "--retention").unwrap();
    /// assert_eq!(s.origin("retention"), "--retention");
    /// assert!(s.set_from("retention", "2", "--retention").is_err());
    /// ```
    pub fn set_from(&mut self, key: &str, value: &str, origin: &str) -> Result<(), SettingsError> {
        let mut table = toml::Table::new();
        table.insert(key.to_string(), toml::Value::String(value.to_string()));
        if key == "queues" {
            let list = value
                .split(',')
                .map(|q| toml::Value::String(q.trim().into()));
            table.insert(key.to_string(), toml::Value::Array(list.collect()));
        }
        if let (true, Some(on)) = (key == "listen", switch(value)) {
            // A value that is no switch stays text, which the listen key refuses.
            table.insert(key.to_string(), toml::Value::Boolean(on));
        }
        self.apply_table(table, origin)
    }

    /// Where the value of `key` came from: `"default"`, a file's path, `"environment variable
    /// NAME"` or a flag.
    pub fn origin(&self, key: &str) -> &str {
        self.origins.get(key).map_or("default", String::as_str)
    }

    fn note_origin(&mut self, key: &str, origin: &str) {
        if let Some(known) = keys().find(|k| *k == key) {
            self.origins.insert(known, origin.to_string());
        }
    }

    fn set(&mut self, key: &str, value: &str, origin: &str) -> Result<(), SettingsError> {
        let dur = || parse_duration(value).map_err(|p| bad(key, origin, p.to_string()));
        let count = || {
            value
                .trim()
                .parse::<usize>()
                .map_err(|_| bad(key, origin, format!("{value:?} is not a whole number")))
        };
        match key {
            "database_url" => self.database_url = Some(value.trim().to_string()),
            "retention" => self.retention = dur()?,
            "heartbeat_interval" => self.heartbeat_interval = dur()?,
            "heartbeat_timeout" => self.heartbeat_timeout = dur()?,
            "poll_interval" => self.poll_interval = dur()?,
            "stats_every" => self.stats_every = optional(dur()?),
            "shutdown_timeout" => self.shutdown_timeout = optional(dur()?),
            "concurrency" => {
                let n = count()?;
                if n == 0 {
                    return Err(bad(key, origin, "must be at least 1"));
                }
                self.concurrency = n;
            }
            "max_pending" => self.max_pending = count()?,
            "admin_token" => {
                self.admin_token = Some(Secret::new(value)).filter(|v| !v.0.is_empty())
            }
            "admin_username" => {
                self.admin_username = Some(value.to_string()).filter(|v| !v.is_empty())
            }
            "admin_password" => {
                self.admin_password = Some(Secret::new(value)).filter(|v| !v.0.is_empty())
            }
            "admin_read_only" => {
                self.admin_read_only = match value.trim().to_ascii_lowercase().as_str() {
                    "1" | "true" | "yes" | "on" => true,
                    "0" | "false" | "no" | "off" => false,
                    _ => return Err(bad(key, origin, format!("{value:?} is not true or false"))),
                }
            }
            "timezone" => {
                self.timezone = value.parse().map_err(|_| {
                    bad(
                        key,
                        origin,
                        format!("{value:?} is not an IANA time zone (like Europe/Berlin)"),
                    )
                })?
            }
            _ => return Err(bad(key, origin, "cannot be set from text")),
        }
        Ok(())
    }

    /// The configured database URL, or [`DEFAULT_DATABASE_URL`].
    pub fn database_url_or_default(&self) -> &str {
        self.database_url.as_deref().unwrap_or(DEFAULT_DATABASE_URL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_env() {
        let mut s = Settings::default();
        s.apply_toml(
            "database_url = \"postgres://a@b/c\"\nretention = \"2d\"\nconcurrency = 4\nqueues = [\"a\", \"b\"]\nstats_every = 0\nschedule = [[\"cmd:echo hi\", \"@daily\"]]\ntimezone = \"Europe/Berlin\"\nlisten = false",
            "plainjobs.toml",
        )
        .unwrap();
        assert_eq!(s.retention, Duration::from_secs(2 * 86400));
        assert_eq!(s.concurrency, 4);
        assert_eq!(s.queues, vec!["a", "b"]);
        assert_eq!(s.stats_every, None);
        assert_eq!(
            s.schedules,
            vec![("cmd:echo hi".to_string(), "@daily".to_string())]
        );
        assert_eq!(s.timezone, chrono_tz::Europe::Berlin);
        assert!(!s.listen);
        s.apply_env([
            (
                "DATABASE_URL".to_string(),
                "postgres://fallback".to_string(),
            ),
            (
                "PLAINJOBS_DATABASE_URL".to_string(),
                "postgres://own".to_string(),
            ),
            ("PLAINJOBS_CONCURRENCY".to_string(), "8".to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ])
        .unwrap();
        assert_eq!(s.database_url.as_deref(), Some("postgres://own"));
        assert_eq!(s.concurrency, 8);
        let mut s = Settings::default();
        s.apply_env([(
            "DATABASE_URL".to_string(),
            "postgres://fallback".to_string(),
        )])
        .unwrap();
        assert_eq!(s.database_url.as_deref(), Some("postgres://fallback"));
    }

    #[test]
    fn origins_say_where_each_value_came_from() {
        let mut s = Settings::default();
        s.apply_toml("retention = \"2d\"\nqueues = [\"a\"]", "jobs.toml")
            .unwrap();
        s.apply_env([
            ("PLAINJOBS_CONCURRENCY".to_string(), "4".to_string()),
            ("DATABASE_URL".to_string(), "postgres://x".to_string()),
        ])
        .unwrap();
        assert_eq!(s.origin("retention"), "jobs.toml");
        assert_eq!(s.origin("queues"), "jobs.toml");
        assert_eq!(
            s.origin("concurrency"),
            "environment variable PLAINJOBS_CONCURRENCY"
        );
        assert_eq!(
            s.origin("database_url"),
            "environment variable DATABASE_URL"
        );
        assert_eq!(s.origin("timezone"), "default");
        s.set_from("database_url", "sqlite://f", "--database-url")
            .unwrap();
        assert_eq!(s.origin("database_url"), "--database-url");
        assert_eq!(s.database_url.as_deref(), Some("sqlite://f"));
    }

    #[test]
    fn empty_values_count_as_unset() {
        let mut s = Settings::default();
        s.apply_toml("database_url = \"sqlite://from-file\"", "f.toml")
            .unwrap();
        s.apply_env([
            ("PLAINJOBS_DATABASE_URL".to_string(), String::new()),
            ("PLAINJOBS_RETENTION".to_string(), " ".to_string()),
        ])
        .unwrap();
        assert_eq!(s.database_url.as_deref(), Some("sqlite://from-file"));
        assert_eq!(s.origin("database_url"), "f.toml");
        assert_eq!(s.retention, Duration::from_secs(7 * 86400));
        // An empty PLAINJOBS_DATABASE_URL leaves DATABASE_URL in force.
        let mut s = Settings::default();
        s.apply_env([
            ("PLAINJOBS_DATABASE_URL".to_string(), String::new()),
            (
                "DATABASE_URL".to_string(),
                "postgres://fallback".to_string(),
            ),
        ])
        .unwrap();
        assert_eq!(s.database_url.as_deref(), Some("postgres://fallback"));
    }

    #[test]
    fn a_number_without_a_unit_is_refused_with_a_suggestion() {
        let mut s = Settings::default();
        let e = s
            .apply_toml("retention = 7", "plainjobs.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("retention") && e.contains("7d") && e.contains("no unit"),
            "{e}"
        );
        s.apply_toml("stats_every = 0\nshutdown_timeout = \"1h30m\"", "f")
            .unwrap();
        assert_eq!(s.stats_every, None);
        assert_eq!(s.shutdown_timeout, Some(Duration::from_secs(5400)));
    }

    #[test]
    fn the_reference_names_every_key_the_parser_knows() {
        let mut s = Settings::default();
        for info in REFERENCE {
            assert_eq!(
                info.env,
                format!("PLAINJOBS_{}", info.key.to_ascii_uppercase())
            );
            // Known: an unknown key would be refused before its value is looked at.
            let e = s.apply_toml(&format!("{} = {{}}", info.key), "f");
            if let Err(SettingsError::UnknownKey { .. }) = e {
                panic!("{} is in REFERENCE but unknown", info.key);
            }
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let mut s = Settings::default();
        let e = s
            .apply_toml("concurency = 3", "plainjobs.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown setting concurency in plainjobs.toml"),
            "{e}"
        );
        let e = s
            .apply_toml("retention = \"forever\"", "plainjobs.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("invalid value for retention") && e.contains("forever"),
            "{e}"
        );
        let e = s
            .apply_env([("PLAINJOBS_CONCURENCY".to_string(), "3".to_string())])
            .unwrap_err()
            .to_string();
        assert!(e.contains("PLAINJOBS_CONCURENCY"), "{e}");
        let e = s
            .apply_env([("PLAINJOBS_TIMEZONE".to_string(), "Mars/Base".to_string())])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("PLAINJOBS_TIMEZONE") && e.contains("Mars/Base"),
            "{e}"
        );
        let e = s
            .apply_toml("concurrency = 0", "f.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 1"), "{e}");
    }
}
