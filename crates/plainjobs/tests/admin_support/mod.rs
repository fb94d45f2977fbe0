//! What the dashboard's tests share: job types whose parameters and errors carry a script
//! payload, a database seeded with a success, a retried failure and a scheduled job by a real
//! worker, and an HTTP client that keeps the CSRF cookie like a browser.
#![allow(dead_code)]

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use plainjobs::{Job, JobContext, JobError, JobResult, Jobs, Outcome, ResultFilter, Worker};
use serde::{Deserialize, Serialize};
use tower::ServiceExt;

/// A payload that sets `window.__xss` if it ever runs.
pub const XSS_PARAM: &str =
    "<script>window.__xss='param'</script><img src=x onerror=\"window.__xss='img'\">";
/// The same, in error text.
pub const XSS_ERROR: &str = "<script>window.__xss='error'</script>";

/// Succeeds.
#[derive(Debug, Serialize, Deserialize)]
pub struct Greet {
    pub name: String,
}

impl Job for Greet {
    const NAME: &'static str = "tests.admin.Greet";
    async fn run(&self, _: &JobContext) -> Result<Outcome, JobError> {
        Ok(Outcome::Success)
    }
}

/// Runs for an hour, unless stopped.
#[derive(Debug, Serialize, Deserialize)]
pub struct Hold {}

impl Job for Hold {
    const NAME: &'static str = "tests.admin.Hold";
    async fn run(&self, _: &JobContext) -> Result<Outcome, JobError> {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(Outcome::Success)
    }
}

/// Fails with its note as the error text; one retry, at once.
#[derive(Debug, Serialize, Deserialize)]
pub struct Explode {
    pub note: String,
}

impl Job for Explode {
    const NAME: &'static str = "tests.admin.Explode";
    async fn run(&self, _: &JobContext) -> Result<Outcome, JobError> {
        Err(JobError::msg(self.note.clone()))
    }
    fn default_retries(&self) -> i16 {
        1
    }
}

/// What [`seed`] made.
pub struct Seeded {
    pub success: JobResult,
    /// The failure's first attempt (retried) and its retry (final).
    pub first_failure: JobResult,
    pub last_failure: JobResult,
    /// A request scheduled an hour ahead.
    pub scheduled: uuid::Uuid,
}

/// A success, a failure retried once (two ERRORED results), and a scheduled request, run by a
/// real worker.
pub async fn seed(jobs: &Jobs) -> Seeded {
    jobs.enqueue(Greet {
        name: XSS_PARAM.into(),
    })
    .await
    .expect("enqueue")
    .expect("enqueued");
    jobs.enqueue(Explode {
        note: XSS_ERROR.into(),
    })
    .await
    .expect("enqueue")
    .expect("enqueued");
    let scheduled = jobs
        .enqueue(Greet {
            name: "later".into(),
        })
        .delay(Duration::from_secs(3600))
        .await
        .expect("enqueue")
        .expect("enqueued")
        .uuid;
    let worker = Worker::new(jobs.clone())
        .register::<Greet>()
        .register::<Explode>()
        .spawn();
    let mut results = Vec::new();
    for _ in 0..400 {
        results = jobs.results(&ResultFilter::new()).await.expect("results");
        if results.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    worker.stop().await.expect("worker stops");
    results.sort_by_key(|r| r.id);
    assert_eq!(results.len(), 3, "a success and two failures: {results:?}");
    let success = results
        .iter()
        .find(|r| r.job_class == Greet::NAME)
        .expect("the success")
        .clone();
    let failures: Vec<JobResult> = results
        .into_iter()
        .filter(|r| r.job_class == Explode::NAME)
        .collect();
    Seeded {
        success,
        first_failure: failures[0].clone(),
        last_failure: failures[1].clone(),
        scheduled,
    }
}

/// A response, read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// The `Location` of a redirect.
    pub fn location(&self) -> String {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }
}

/// A browser-like client of a router: keeps the cookies it is given.
pub struct Client {
    pub router: Router,
    cookie: Option<String>,
    pub authorization: Option<String>,
}

impl Client {
    pub fn new(router: Router) -> Client {
        Client {
            router,
            cookie: None,
            authorization: None,
        }
    }

    async fn send(&mut self, request: Request<Body>) -> Reply {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router answers");
        let status = response.status();
        let headers = response.headers().clone();
        if let Some(set) = headers
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
        {
            self.cookie = set.split(';').next().map(str::to_string);
        }
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    fn request(&self, method: &str, path: &str) -> axum::http::request::Builder {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(cookie) = &self.cookie {
            builder = builder.header(header::COOKIE, cookie);
        }
        if let Some(auth) = &self.authorization {
            builder = builder.header(header::AUTHORIZATION, auth);
        }
        builder
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        let request = self
            .request("GET", path)
            .body(Body::empty())
            .expect("a request");
        self.send(request).await
    }

    /// Posts a form, with extra headers.
    pub async fn post_with(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Reply {
        let body = serde_urlencoded::to_string(fields).expect("a form");
        let mut builder = self
            .request("POST", path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder.body(Body::from(body)).expect("a request");
        self.send(request).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        self.post_with(path, fields, &[("sec-fetch-site", "same-origin")])
            .await
    }
}

/// The CSRF token of the first form in a page (as the template escaped it: `+`, `/` and `=`
/// come out as numeric entities).
pub fn csrf_token(html: &str) -> String {
    let marker = "name=\"authenticity_token\" value=\"";
    let at = html.find(marker).expect("a form with a CSRF token") + marker.len();
    let end = html[at..].find('"').expect("the token's end");
    html[at..at + end]
        .replace("&#43;", "+")
        .replace("&#47;", "/")
        .replace("&#61;", "=")
}
