//! Browsing the tables a page at a time, by keyset: pending requests, claimed jobs and results
//! with their filters, and the depth of each queue.

use crate::model::{JobProcess, JobRequest, JobResult};
use crate::store::{
    paginate, Cursor, Page, ProcessFilter, QueueDepth, RequestFilter, ResultFilter,
};
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
    /// With [`ResultFilter::scan_at_most`], the page reads only that many ids past its cursor
    /// and its cursors continue the search beyond them.
    ///
    /// # Errors
    /// A database error.
    pub async fn results_page(&self, filter: &ResultFilter) -> Result<Page<JobResult>> {
        let one_more = filter.clone().limit(filter.limit.max(1).saturating_add(1));
        let Some(scan) = filter.scan_limit.filter(|_| filter.uuid.is_none()) else {
            let rows = self.store().results(&one_more).await?;
            return Ok(paginate(rows, filter.limit, filter.cursor, |r| r.id));
        };
        let (Some(oldest), Some(newest)) = (
            self.end_id(Cursor::Prev(0)).await?,
            self.end_id(Cursor::First).await?,
        ) else {
            return Ok(paginate(Vec::new(), filter.limit, filter.cursor, |r| r.id));
        };
        let window = scan_window(filter.cursor, scan.max(1), newest);
        let rows = self.store().results(&one_more.ids(window.clone())).await?;
        let page = paginate(rows, filter.limit, filter.cursor, |r| r.id);
        Ok(search_on(page, filter.cursor, window, oldest, newest))
    }

    /// The id of the newest result (`Cursor::First`) or the oldest (`Cursor::Prev(0)`).
    async fn end_id(&self, end: Cursor) -> Result<Option<i64>> {
        let one = ResultFilter::new().cursor(end).limit(1);
        Ok(self.store().results(&one).await?.first().map(|r| r.id))
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

/// The ids a page at `cursor` may read when it reads at most `scan` of them: below the cursor
/// (or from the newest result down) for a next page, above it for a previous one.
fn scan_window(cursor: Cursor, scan: i64, newest: i64) -> std::ops::Range<i64> {
    match cursor {
        Cursor::First => {
            let end = newest.saturating_add(1);
            end.saturating_sub(scan)..end
        }
        Cursor::Next(c) => c.saturating_sub(scan)..c,
        Cursor::Prev(c) => c.saturating_add(1)..c.saturating_add(1).saturating_add(scan),
    }
}

/// A page read within `window` that found fewer rows than it could: its cursors go on past the
/// window's edges, as long as results lie beyond them (ids `oldest..=newest`).
fn search_on(
    mut page: Page<JobResult>,
    cursor: Cursor,
    window: std::ops::Range<i64>,
    oldest: i64,
    newest: i64,
) -> Page<JobResult> {
    let older = (window.start > oldest).then_some(Cursor::Next(window.start));
    let newer = (window.end <= newest).then_some(Cursor::Prev(window.end - 1));
    let empty = page.items.is_empty();
    match cursor {
        Cursor::First | Cursor::Next(_) => {
            page.next = page.next.or(older);
            if empty {
                page.prev = page.prev.or(newer);
            }
        }
        Cursor::Prev(_) => {
            page.prev = page.prev.or(newer);
            if empty {
                page.next = page.next.or(older);
            }
        }
    }
    page
}
