//! What is between this process and PostgreSQL, as the connection says it: the `pooler`
//! parameter of a `postgres://` URL, or [`ConnectOptions::pooler`](crate::ConnectOptions).

use std::fmt;
use std::str::FromStr;

/// What is between plainjobs and PostgreSQL, which decides how it sends its statements.
///
/// Set it in the database URL (`?pooler=transaction`), so that every process that reads the
/// URL — workers, the `plainjobs` command, the application — sends statements the same way; or
/// in [`ConnectOptions::pooler`](crate::ConnectOptions::pooler), or with
/// [`Jobs::from_pool_with`](crate::Jobs::from_pool_with). A `pooler` in the URL wins.
///
/// # Example
/// ```
/// use plainjobs::Pooler;
///
/// assert_eq!("transaction".parse::<Pooler>(), Ok(Pooler::Transaction));
/// assert_eq!(Pooler::default(), Pooler::Session);
/// assert!("statement".parse::<Pooler>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pooler {
    /// Nothing, or a pooler in session mode (PgBouncer's `pool_mode = session`): each pooled
    /// connection is a server session of its own for as long as it is open. Statements are
    /// prepared once per connection and reused; LISTEN wakes the workers. The default.
    #[default]
    Session,
    /// A pooler in transaction mode (PgBouncer's `pool_mode = transaction`, and the poolers
    /// that work the same way): a connection is given a server session for one transaction at
    /// a time, and the next transaction may get another.
    ///
    /// Every statement is then prepared unnamed and sent inside a transaction — its own, or the
    /// one it belongs to — so that its two exchanges with the server reach the same session and
    /// nothing is left on a session for the next transaction; workers poll instead of LISTEN
    /// (a session-level LISTEN would hear for whichever client has the session next). A
    /// statement on its own costs four round trips instead of one.
    Transaction,
}

impl Pooler {
    /// As written in a URL: `session` or `transaction`.
    pub fn as_str(self) -> &'static str {
        match self {
            Pooler::Session => "session",
            Pooler::Transaction => "transaction",
        }
    }

    /// Takes the `pooler` parameter out of a `postgres://` URL (the driver does not know it):
    /// the URL without it, and its value if it had one.
    pub(crate) fn split_url(url: &str) -> Result<(String, Option<Pooler>), UnknownPooler> {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((url.to_string(), None));
        };
        let mut pooler = None;
        let mut kept = Vec::new();
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("pooler", value)) => pooler = Some(value.parse()?),
                _ => kept.push(pair),
            }
        }
        let url = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        Ok((url, pooler))
    }
}

impl fmt::Display for Pooler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `pooler` value that is neither `session` nor `transaction`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pooler={0:?}: expected pooler=session or pooler=transaction")]
pub struct UnknownPooler(pub String);

impl FromStr for Pooler {
    type Err = UnknownPooler;

    fn from_str(s: &str) -> Result<Pooler, UnknownPooler> {
        match s {
            "session" => Ok(Pooler::Session),
            "transaction" => Ok(Pooler::Transaction),
            other => Err(UnknownPooler(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parameter_is_taken_out_of_the_url() {
        let split = |url: &str| Pooler::split_url(url).expect("a known value");
        assert_eq!(
            split("postgres://u@h/db?pooler=transaction"),
            ("postgres://u@h/db".to_string(), Some(Pooler::Transaction))
        );
        assert_eq!(
            split("postgres://u@h/db?sslmode=disable&pooler=session&application_name=w"),
            (
                "postgres://u@h/db?sslmode=disable&application_name=w".to_string(),
                Some(Pooler::Session)
            )
        );
        assert_eq!(
            split("postgres://u@h/db?application_name=pooler"),
            (
                "postgres://u@h/db?application_name=pooler".to_string(),
                None
            )
        );
        assert_eq!(
            split("postgres://u@h/db"),
            ("postgres://u@h/db".to_string(), None)
        );
    }

    #[test]
    fn an_unknown_value_is_refused() {
        assert_eq!(
            Pooler::split_url("postgres://u@h/db?pooler=statement"),
            Err(UnknownPooler("statement".into()))
        );
    }
}
