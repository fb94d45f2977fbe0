//! Who may use the dashboard: nobody needs to sign in on 127.0.0.1 (only this machine can
//! reach it); any other address needs a token or a user name and password, checked on every
//! request in constant time. Browsers ask for them with their own sign-in prompt (HTTP Basic);
//! scripts may send the token as `Authorization: Bearer …`.

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use subtle::ConstantTimeEq;

/// How the dashboard checks who is asking.
///
/// # Example
/// ```
/// use plainjobs::admin::Auth;
/// let auth = Auth::token("a long random token").unwrap();
/// assert!(Auth::token("").is_err());
/// let basic = Auth::basic("ops", "correct horse battery staple").unwrap();
/// // Secrets never show in logs.
/// assert!(!format!("{basic:?}").contains("horse"));
/// ```
#[derive(Clone)]
pub enum Auth {
    /// A token: `Authorization: Bearer <token>`, or a browser's sign-in with any user name and
    /// the token as password.
    Token(String),
    /// A user name and password (a browser's sign-in).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
}

/// An empty token or password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the dashboard's {0} must not be empty")]
pub struct EmptySecret(&'static str);

impl Auth {
    /// A token.
    ///
    /// # Errors
    /// [`EmptySecret`] for an empty token.
    pub fn token(token: impl Into<String>) -> Result<Auth, EmptySecret> {
        let token = token.into();
        if token.is_empty() {
            return Err(EmptySecret("token"));
        }
        Ok(Auth::Token(token))
    }

    /// A user name and password.
    ///
    /// # Errors
    /// [`EmptySecret`] for an empty user name or password.
    pub fn basic(
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Result<Auth, EmptySecret> {
        let (username, password) = (username.into(), password.into());
        if username.is_empty() {
            return Err(EmptySecret("user name"));
        }
        if password.is_empty() {
            return Err(EmptySecret("password"));
        }
        Ok(Auth::Basic { username, password })
    }

    /// Whether these request headers carry the right credentials.
    pub(crate) fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        if let Some(bearer) = value.strip_prefix("Bearer ") {
            return match self {
                Auth::Token(token) => same(bearer.trim(), token),
                Auth::Basic { .. } => false,
            };
        }
        let Some((user, password)) = value.strip_prefix("Basic ").and_then(basic_credentials)
        else {
            return false;
        };
        match self {
            Auth::Token(token) => same(&password, token),
            // Both compared, whatever the first gives, so timing tells nothing.
            Auth::Basic {
                username,
                password: expected,
            } => same(&user, username) & same(&password, expected),
        }
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Token(_) => f.write_str("Auth::Token(<hidden>)"),
            Auth::Basic { username, .. } => f
                .debug_struct("Auth::Basic")
                .field("username", username)
                .field("password", &"<hidden>")
                .finish(),
        }
    }
}

/// Equal in constant time (for equal lengths).
fn same(given: &str, expected: &str) -> bool {
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}

/// `user:password` from a Basic credential.
fn basic_credentials(encoded: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The middleware: lets a request through only with the right credentials, else asks the
/// browser to sign in.
pub(crate) async fn require(State(auth): State<Auth>, request: Request, next: Next) -> Response {
    if auth.admits(request.headers()) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(
            WWW_AUTHENTICATE,
            r#"Basic realm="plainjobs", charset="UTF-8""#,
        )],
        "Sign in to see the plainjobs dashboard.",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    fn basic(user: &str, password: &str) -> HeaderMap {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        with(&format!("Basic {encoded}"))
    }

    #[test]
    fn a_token_is_taken_as_bearer_or_as_any_users_password() {
        let auth = Auth::token("s3cret").unwrap();
        assert!(auth.admits(&with("Bearer s3cret")));
        assert!(auth.admits(&basic("anyone", "s3cret")));
        assert!(!auth.admits(&with("Bearer s3cre")));
        assert!(!auth.admits(&basic("anyone", "wrong")));
        assert!(!auth.admits(&HeaderMap::new()));
        assert!(!auth.admits(&with("Basic !!!")));
    }

    #[test]
    fn basic_auth_needs_both_the_user_and_the_password() {
        let auth = Auth::basic("ops", "pw:with:colons").unwrap();
        assert!(auth.admits(&basic("ops", "pw:with:colons")));
        assert!(!auth.admits(&basic("dev", "pw:with:colons")));
        assert!(!auth.admits(&basic("ops", "pw")));
        assert!(!auth.admits(&with("Bearer pw:with:colons")));
        assert!(Auth::basic("", "x").is_err() && Auth::basic("x", "").is_err());
    }
}
