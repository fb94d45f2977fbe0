//! Application state for jobs: one value per type, given to the worker.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::JobError;

/// Shared application state given to a worker with
/// [`Worker::state`](crate::Worker::state), one value per type.
#[derive(Clone, Default)]
pub struct State {
    values: Arc<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl State {
    pub(crate) fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        Arc::make_mut(&mut self.values).insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// The value of type `T`, if one was given.
    pub fn try_get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.values
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref::<T>())
    }

    /// The value of type `T`.
    ///
    /// # Errors
    /// A [`JobError`] naming the type when the worker was given none.
    pub fn get<T: Send + Sync + 'static>(&self) -> Result<&T, JobError> {
        self.try_get::<T>().ok_or_else(|| {
            JobError::msg(format!(
                "no application state of type {} was given to the worker (Worker::state)",
                std::any::type_name::<T>()
            ))
        })
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "State({} values)", self.values.len())
    }
}
