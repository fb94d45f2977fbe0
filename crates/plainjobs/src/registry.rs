//! Job names to job types: how a stored row becomes a job again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use serde_json::Value;

use crate::job::{Job, JobContext, JobError, LockStrategy, Outcome, State, UniqueCheck};
use crate::model::JobResult;
use crate::params::{self, ParamsError};

/// A job with its type erased, as the worker and the retry path handle it.
pub(crate) trait ErasedJob: Send + Sync {
    fn job_class(&self) -> &str;
    fn parameters(&self) -> Result<Value, ParamsError>;
    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<Outcome, JobError>>;
    fn default_queue(&self) -> String;
    fn default_priority(&self) -> i16;
    fn default_retries(&self) -> i16;
    fn default_concurrency_key(&self) -> String;
    fn retry_delay(&self, attempt: u32) -> Duration;
    fn timeout(&self) -> Option<Duration>;
    fn should_enqueue<'a, 'b: 'a>(
        &'a self,
        key: &'a str,
        check: &'a mut UniqueCheck<'b>,
    ) -> BoxFuture<'a, crate::Result<bool>>;
    fn lock_strategy(&self) -> LockStrategy;
    fn on_aborted<'a>(
        &'a self,
        result: &'a JobResult,
        state: &'a State,
    ) -> BoxFuture<'a, Result<(), JobError>>;
}

impl<J: Job> ErasedJob for J {
    fn job_class(&self) -> &str {
        J::NAME
    }
    fn parameters(&self) -> Result<Value, ParamsError> {
        params::encode(J::NAME, self)
    }
    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<Outcome, JobError>> {
        Job::run(self, ctx).boxed()
    }
    fn default_queue(&self) -> String {
        Job::default_queue(self)
    }
    fn default_priority(&self) -> i16 {
        Job::default_priority(self)
    }
    fn default_retries(&self) -> i16 {
        Job::default_retries(self)
    }
    fn default_concurrency_key(&self) -> String {
        Job::default_concurrency_key(self)
    }
    fn retry_delay(&self, attempt: u32) -> Duration {
        Job::retry_delay(self, attempt)
    }
    fn timeout(&self) -> Option<Duration> {
        Job::timeout(self)
    }
    fn should_enqueue<'a, 'b: 'a>(
        &'a self,
        key: &'a str,
        check: &'a mut UniqueCheck<'b>,
    ) -> BoxFuture<'a, crate::Result<bool>> {
        Job::should_enqueue(self, key, check).boxed()
    }
    fn lock_strategy(&self) -> LockStrategy {
        Job::lock_strategy(self)
    }
    fn on_aborted<'a>(
        &'a self,
        result: &'a JobResult,
        state: &'a State,
    ) -> BoxFuture<'a, Result<(), JobError>> {
        Job::on_aborted(self, result, state).boxed()
    }
}

/// A job known only by its name and stored parameters, with plain.jobs' defaults for everything
/// else. Used to enqueue a job type this process has not registered (a worker elsewhere runs it).
pub(crate) struct RawJob {
    pub(crate) job_class: String,
    pub(crate) parameters: Value,
}

impl RawJob {
    /// A job known by name, with the parameters a row carries (an empty envelope for none).
    pub(crate) fn new(job_class: &str, parameters: Option<&Value>) -> RawJob {
        RawJob {
            job_class: job_class.to_string(),
            parameters: parameters
                .cloned()
                .unwrap_or_else(|| serde_json::json!({"args": [], "kwargs": {}})),
        }
    }
}

impl ErasedJob for RawJob {
    fn job_class(&self) -> &str {
        &self.job_class
    }
    fn parameters(&self) -> Result<Value, ParamsError> {
        Ok(self.parameters.clone())
    }
    fn run<'a>(&'a self, _ctx: &'a JobContext) -> BoxFuture<'a, Result<Outcome, JobError>> {
        let name = self.job_class.clone();
        async move {
            Err(JobError::msg(format!(
                "job type {name:?} is not registered on this worker"
            )))
        }
        .boxed()
    }
    fn default_queue(&self) -> String {
        "default".into()
    }
    fn default_priority(&self) -> i16 {
        0
    }
    fn default_retries(&self) -> i16 {
        0
    }
    fn default_concurrency_key(&self) -> String {
        String::new()
    }
    fn timeout(&self) -> Option<Duration> {
        None
    }
    fn retry_delay(&self, _attempt: u32) -> Duration {
        Duration::ZERO
    }
    fn should_enqueue<'a, 'b: 'a>(
        &'a self,
        key: &'a str,
        check: &'a mut UniqueCheck<'b>,
    ) -> BoxFuture<'a, crate::Result<bool>> {
        async move {
            if key.is_empty() {
                return Ok(true);
            }
            Ok(check.requested_jobs(true).await? == 0 && check.processing_jobs(true).await? == 0)
        }
        .boxed()
    }
    fn lock_strategy(&self) -> LockStrategy {
        LockStrategy::Advisory
    }
    fn on_aborted<'a>(
        &'a self,
        _r: &'a JobResult,
        _s: &'a State,
    ) -> BoxFuture<'a, Result<(), JobError>> {
        async { Ok(()) }.boxed()
    }
}

type Decoder = fn(&str, Option<&Value>) -> Result<Box<dyn ErasedJob>, ParamsError>;

fn decode_as<J: Job>(
    job_class: &str,
    params: Option<&Value>,
) -> Result<Box<dyn ErasedJob>, ParamsError> {
    Ok(Box::new(params::decode::<J>(job_class, params)?))
}

#[derive(Clone)]
struct Entry {
    name: &'static str,
    description: &'static str,
    decode: Decoder,
}

/// Why a stored job could not be rebuilt.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// No job type is registered under the name.
    #[error("unknown job name {0:?}: no job type is registered under that name on this worker")]
    Unknown(String),
    /// The parameters do not fit the type.
    #[error(transparent)]
    Params(#[from] ParamsError),
}

/// The job types a worker (or a CLI) knows, by name and alias.
///
/// # Example
/// ```
/// # use plainjobs::{Job, JobContext, JobError, Outcome, Registry};
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Noop;
/// # impl Job for Noop { const NAME: &'static str = "app.Noop";
/// #   async fn run(&self, _: &JobContext) -> Result<Outcome, JobError> { Ok(Outcome::Success) } }
/// let mut registry = Registry::new();
/// registry.register::<Noop>().alias::<Noop>("app.jobs.OldNoop");
/// assert!(registry.contains("app.jobs.OldNoop"));
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    entries: Arc<BTreeMap<String, Entry>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.entries.keys()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Registers `J` under its [`NAME`](Job::NAME) and [`ALIASES`](Job::ALIASES).
    pub fn register<J: Job>(&mut self) -> &mut Self {
        let entry = Entry {
            name: J::NAME,
            description: J::DESCRIPTION,
            decode: decode_as::<J>,
        };
        let map = Arc::make_mut(&mut self.entries);
        map.insert(J::NAME.to_string(), entry.clone());
        for alias in J::ALIASES {
            map.insert((*alias).to_string(), entry.clone());
        }
        self
    }

    /// Registers one more name under which rows run as `J`.
    pub fn alias<J: Job>(&mut self, alias: &str) -> &mut Self {
        let entry = Entry {
            name: J::NAME,
            description: J::DESCRIPTION,
            decode: decode_as::<J>,
        };
        Arc::make_mut(&mut self.entries).insert(alias.to_string(), entry);
        self
    }

    /// Adds every name of `other` (its entries win over same-named ones here).
    pub fn extend(&mut self, other: &Registry) -> &mut Self {
        let map = Arc::make_mut(&mut self.entries);
        for (k, v) in other.entries.iter() {
            map.insert(k.clone(), v.clone());
        }
        self
    }

    /// Whether `name` is registered (as a name or alias).
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// Registered names and aliases with the canonical name and description, sorted.
    pub fn names(&self) -> Vec<(String, &'static str, &'static str)> {
        self.entries
            .iter()
            .map(|(k, e)| (k.clone(), e.name, e.description))
            .collect()
    }

    /// Checks that a stored job can be rebuilt: the name is known and the parameters fit.
    ///
    /// # Errors
    /// [`LoadError::Unknown`] or [`LoadError::Params`], saying exactly which.
    pub fn check(&self, job_class: &str, params: Option<&Value>) -> Result<(), LoadError> {
        self.load(job_class, params).map(|_| ())
    }

    pub(crate) fn load(
        &self,
        job_class: &str,
        params: Option<&Value>,
    ) -> Result<Box<dyn ErasedJob>, LoadError> {
        let entry = self
            .entries
            .get(job_class)
            .ok_or_else(|| LoadError::Unknown(job_class.to_string()))?;
        Ok((entry.decode)(job_class, params)?)
    }
}
