//! Lists cached for one refresh interval, by page and filter: browsers that watch the same
//! list share one query per interval (concurrent misses wait for the one query under way).
//! Actions empty the cache, so their effect shows at once.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;

use super::error::DashboardError;
use crate::client::Chain;
use crate::model::{JobProcess, JobRequest, JobResult};
use crate::store::Page;

/// A cached list.
#[derive(Debug, Clone)]
pub(crate) enum Listed {
    Requests(Page<JobRequest>),
    Processes(Page<JobProcess>),
    Results(Page<JobResult>),
    Chain(Option<Chain>),
}

/// The cache of lists.
#[derive(Clone)]
pub(crate) struct ListCache {
    cache: Cache<String, Arc<Listed>>,
}

impl ListCache {
    pub(crate) fn new(ttl: Duration) -> ListCache {
        ListCache {
            cache: Cache::builder()
                .max_capacity(1_000)
                .time_to_live(ttl)
                .build(),
        }
    }

    /// The list under `key`, read by `load` unless a fresh one is cached.
    pub(crate) async fn get(
        &self,
        key: String,
        load: impl std::future::Future<Output = crate::Result<Listed>>,
    ) -> Result<Arc<Listed>, DashboardError> {
        self.cache
            .try_get_with(key, async move { load.await.map(Arc::new) })
            .await
            .map_err(DashboardError::Database)
    }

    /// Forgets every list (after an action).
    pub(crate) fn clear(&self) {
        self.cache.invalidate_all();
    }
}
