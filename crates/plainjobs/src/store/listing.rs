//! Lists by keyset: which rows a page of requests, processes or results holds, and where the
//! next and previous pages start. Pages are found by an id, never an offset, so the ten
//! millionth result is as quick to reach as the first.

use uuid::Uuid;

/// Where a page starts, in the list's own order (requests and processes oldest first, results
/// newest first).
///
/// # Example
/// ```
/// use plainjobs::Cursor;
/// // The page after the one that ended with the row whose id is 41.
/// let next = Cursor::Next(41);
/// assert_ne!(next, Cursor::First);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Cursor {
    /// The first page.
    #[default]
    First,
    /// The rows after the row with this id.
    Next(i64),
    /// The rows before the row with this id (the previous page).
    Prev(i64),
}

/// One page of a list, and where its neighbours start.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The rows, in the list's order.
    pub items: Vec<T>,
    /// The cursor of the next page, if there are more rows.
    pub next: Option<Cursor>,
    /// The cursor of the previous page, if this is not the first.
    pub prev: Option<Cursor>,
}

/// How a list is ordered by id, and the SQL a [`Cursor`] adds to its query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// Oldest first (`ORDER BY id`).
    Ascending,
    /// Newest first (`ORDER BY id DESC`).
    Descending,
}

impl Order {
    /// The condition on `id` for rows past `cursor` (compared with the placeholder `$n`), and
    /// the `ORDER BY` that fetches them: the reverse of the list's order for a previous page.
    pub(crate) fn keyset(self, cursor: Cursor, n: usize) -> (Option<String>, &'static str) {
        let (ascending, condition) = match (self, cursor) {
            (Order::Ascending, Cursor::First) => (true, None),
            (Order::Descending, Cursor::First) => (false, None),
            (Order::Ascending, Cursor::Next(_)) => (true, Some(">")),
            (Order::Ascending, Cursor::Prev(_)) => (false, Some("<")),
            (Order::Descending, Cursor::Next(_)) => (false, Some("<")),
            (Order::Descending, Cursor::Prev(_)) => (true, Some(">")),
        };
        let order = if ascending { "id" } else { "id DESC" };
        (condition.map(|op| format!("id {op} ${n}")), order)
    }
}

/// The id a cursor points at, if any.
pub(crate) fn cursor_id(cursor: Cursor) -> Option<i64> {
    match cursor {
        Cursor::First => None,
        Cursor::Next(id) | Cursor::Prev(id) => Some(id),
    }
}

/// Makes a page from up to `limit + 1` rows fetched for `cursor`, in the list's order: the
/// extra row (the last one, or for a previous page the first) only tells that there are more.
pub(crate) fn paginate<T>(
    mut rows: Vec<T>,
    limit: i64,
    cursor: Cursor,
    id: fn(&T) -> i64,
) -> Page<T> {
    let limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    if more {
        if matches!(cursor, Cursor::Prev(_)) {
            rows.drain(..rows.len() - limit);
        } else {
            rows.truncate(limit);
        }
    }
    let first = rows.first().map(id);
    let last = rows.last().map(id);
    let (has_next, has_prev) = match cursor {
        Cursor::First => (more, false),
        Cursor::Next(_) => (more, true),
        Cursor::Prev(_) => (true, more),
    };
    Page {
        next: last.filter(|_| has_next).map(Cursor::Next),
        prev: first.filter(|_| has_prev).map(Cursor::Prev),
        items: rows,
    }
}

/// Puts rows fetched for `cursor` in the list's order (a previous page is fetched backwards).
pub(crate) fn in_list_order<T>(mut rows: Vec<T>, cursor: Cursor) -> Vec<T> {
    if matches!(cursor, Cursor::Prev(_)) {
        rows.reverse();
    }
    rows
}

/// Which pending requests to list (oldest first).
///
/// # Example
/// ```no_run
/// # async fn demo(jobs: plainjobs::Jobs) -> plainjobs::Result<()> {
/// use plainjobs::RequestFilter;
/// let page = jobs.requests_page(&RequestFilter::new().queue("emails").limit(50)).await?;
/// for request in &page.items {
///     println!("{} {}", request.uuid, request.job_class);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RequestFilter {
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this job name.
    pub job_class: Option<String>,
    /// Only this concurrency key.
    pub concurrency_key: Option<String>,
    /// Where the page starts.
    pub cursor: Cursor,
    /// Rows per page (50 by default).
    pub limit: i64,
}

impl Default for RequestFilter {
    fn default() -> Self {
        RequestFilter {
            queue: None,
            job_class: None,
            concurrency_key: None,
            cursor: Cursor::First,
            limit: 50,
        }
    }
}

impl RequestFilter {
    /// Every pending request, the first page.
    pub fn new() -> RequestFilter {
        RequestFilter::default()
    }
    /// Only this queue.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }
    /// Only this job name.
    pub fn job_class(mut self, job_class: impl Into<String>) -> Self {
        self.job_class = Some(job_class.into());
        self
    }
    /// Only this concurrency key.
    pub fn concurrency_key(mut self, key: impl Into<String>) -> Self {
        self.concurrency_key = Some(key.into());
        self
    }
    /// The page at `cursor`.
    pub fn cursor(mut self, cursor: Cursor) -> Self {
        self.cursor = cursor;
        self
    }
    /// Rows per page.
    pub fn limit(mut self, limit: i64) -> Self {
        self.limit = limit;
        self
    }
}

/// Claimed jobs: not yet started, or running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessState {
    /// Claimed ahead, not started (`started_at` is NULL).
    Waiting,
    /// Running.
    Running,
}

/// Which claimed jobs to list (oldest first).
///
/// # Example
/// ```no_run
/// # async fn demo(jobs: plainjobs::Jobs) -> plainjobs::Result<()> {
/// use plainjobs::{ProcessFilter, ProcessState};
/// let running = jobs.processes_page(&ProcessFilter::new().state(ProcessState::Running)).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ProcessFilter {
    /// Only waiting or only running jobs.
    pub state: Option<ProcessState>,
    /// Only this queue.
    pub queue: Option<String>,
    /// Only jobs of this worker.
    pub worker_id: Option<Uuid>,
    /// Where the page starts.
    pub cursor: Cursor,
    /// Rows per page (50 by default).
    pub limit: i64,
}

impl Default for ProcessFilter {
    fn default() -> Self {
        ProcessFilter {
            state: None,
            queue: None,
            worker_id: None,
            cursor: Cursor::First,
            limit: 50,
        }
    }
}

impl ProcessFilter {
    /// Every claimed job, the first page.
    pub fn new() -> ProcessFilter {
        ProcessFilter::default()
    }
    /// Only waiting or only running jobs.
    pub fn state(mut self, state: ProcessState) -> Self {
        self.state = Some(state);
        self
    }
    /// Only this queue.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }
    /// Only jobs of this worker.
    pub fn worker(mut self, worker_id: Uuid) -> Self {
        self.worker_id = Some(worker_id);
        self
    }
    /// The page at `cursor`.
    pub fn cursor(mut self, cursor: Cursor) -> Self {
        self.cursor = cursor;
        self
    }
    /// Rows per page.
    pub fn limit(mut self, limit: i64) -> Self {
        self.limit = limit;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(rows: Vec<i64>, cursor: Cursor) -> Page<i64> {
        paginate(rows, 2, cursor, |r| *r)
    }

    #[test]
    fn a_first_page_with_more_rows_points_to_the_next_only() {
        let p = page(vec![1, 2, 3], Cursor::First);
        assert_eq!(p.items, [1, 2]);
        assert_eq!((p.next, p.prev), (Some(Cursor::Next(2)), None));
        let last = page(vec![1, 2], Cursor::First);
        assert_eq!((last.next, last.prev), (None, None));
    }

    #[test]
    fn a_previous_page_is_fetched_backwards_and_shown_forwards() {
        let fetched = in_list_order(vec![5, 4, 3], Cursor::Prev(6));
        let p = page(fetched, Cursor::Prev(6));
        assert_eq!(p.items, [4, 5]);
        assert_eq!(
            (p.next, p.prev),
            (Some(Cursor::Next(5)), Some(Cursor::Prev(4)))
        );
        let first = page(vec![1, 2], Cursor::Prev(3));
        assert_eq!((first.next, first.prev), (Some(Cursor::Next(2)), None));
    }

    #[test]
    fn the_keyset_follows_the_lists_order() {
        assert_eq!(
            Order::Descending.keyset(Cursor::Next(9), 3),
            (Some("id < $3".to_string()), "id DESC")
        );
        assert_eq!(
            Order::Descending.keyset(Cursor::Prev(9), 1),
            (Some("id > $1".to_string()), "id")
        );
        assert_eq!(Order::Ascending.keyset(Cursor::First, 1), (None, "id"));
    }
}
