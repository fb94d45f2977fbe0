//! Browsing the tables a page at a time, by keyset: pending requests, claimed jobs and results
//! with their filters, and the depth of each queue.

use crate::model::{JobProcess, JobRequest, JobResult};
use crate::store::{paginate, Page, ProcessFilter, QueueDepth, RequestFilter, ResultFilter};
use crate::{Jobs, Result};

impl Jobs {
    /// A page of pending requests, oldest first, as `filter` says; its `next` and `prev`
    /// cursors give the pages around it.
    ///
    /// # Errors
    /// A database error.
    pub async fn requests_page(&self, filter: &RequestFilter) -> Result<Page<JobRequest>> {
        let rows = self.store().requests_page(filter).await?;
        Ok(paginate(rows, filter.limit, filter.cursor, |r| r.id))
    }

    /// A page of claimed jobs (waiting and running), oldest first, as `filter` says.
    ///
    /// # Errors
    /// A database error.
    pub async fn processes_page(&self, filter: &ProcessFilter) -> Result<Page<JobProcess>> {
        let rows = self.store().processes_page(filter).await?;
        Ok(paginate(rows, filter.limit, filter.cursor, |p| p.id))
    }

    /// A page of results, newest first, as `filter` says (its `limit` is the page size).
    ///
    /// # Example
    /// ```no_run
    /// # async fn demo(jobs: plainjobs::Jobs) -> plainjobs::Result<()> {
    /// use plainjobs::{JobStatus, ResultFilter};
    /// let filter = ResultFilter::new().status(JobStatus::Errored).limit(50);
    /// let first = jobs.results_page(&filter).await?;
    /// if let Some(next) = first.next {
    ///     let second = jobs.results_page(&filter.clone().cursor(next)).await?;
    ///     println!("{} more", second.items.len());
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// A database error.
    pub async fn results_page(&self, filter: &ResultFilter) -> Result<Page<JobResult>> {
        let one_more = filter.clone().limit(filter.limit.max(1).saturating_add(1));
        let rows = self.store().results(&one_more).await?;
        Ok(paginate(rows, filter.limit, filter.cursor, |r| r.id))
    }

    /// Pending and claimed jobs per queue, with the time the oldest ready request became
    /// ready; reads only the request and process tables.
    ///
    /// # Errors
    /// A database error.
    pub async fn queue_depths(&self) -> Result<Vec<QueueDepth>> {
        self.store().queue_depths().await
    }
}
