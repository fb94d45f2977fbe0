//! The dashboard over HTTP, on both backends: every page and every action, nested under a
//! prefix as an application would mount it, with the CSRF cookie a browser keeps.

mod admin_support;

use std::time::Duration;

use admin_support::{csrf_token, seed, Client, Hold, Seeded, XSS_ERROR, XSS_PARAM};
use axum::http::StatusCode;
use axum::Router;
use plainjobs::admin::{Auth, Dashboard};
use plainjobs::testing::{conformance, test_jobs, Backend};
use plainjobs::{JobStatus, Jobs, ProcessFilter, RequestFilter, ResultFilter, Worker};

/// The dashboard of a seeded database, nested at `/admin`.
async fn dashboard(
    backend: Backend,
    configure: fn(Dashboard) -> Dashboard,
) -> (Jobs, Seeded, Client) {
    let jobs = test_jobs(backend).await;
    let seeded = seed(&jobs).await;
    let dashboard = configure(
        Dashboard::new(jobs.clone())
            .refresh_every(Duration::from_millis(500))
            .schedules(&[
                ("cmd:echo nightly".into(), "0 3 * * *".into()),
                ("tests.admin.Greet".into(), "*/5 * * * *".into()),
            ]),
    );
    let router = Router::new().nest("/admin", dashboard.router());
    (jobs, seeded, Client::new(router))
}

fn defaults(d: Dashboard) -> Dashboard {
    d
}

/// Every page answers 200 with what it is for, its links under the prefix.
async fn every_page_renders(backend: Backend) {
    let (_, seeded, mut client) = dashboard(backend, defaults).await;
    let overview = client.get("/admin").await;
    assert_eq!(overview.status, StatusCode::OK);
    assert!(overview.body.contains("href=\"/admin/assets/app.css\""));
    assert!(overview.body.contains("data-live=\"/admin/live/overview\""));
    for label in [
        "Ready",
        "Scheduled",
        "Waiting",
        "Running",
        "Errored",
        "Retried",
        "Stale workers",
    ] {
        assert!(
            overview.body.contains(&format!("data-card=\"{label}\"")),
            "{label}"
        );
    }
    assert!(
        overview.body.contains(">default</a>"),
        "the queue is listed"
    );
    // Results are counted once settled (2 s): the live part shows them within seconds.
    let mut live = client.get("/admin/live/overview?range=24h").await;
    for _ in 0..40 {
        if live.body.contains("data-card=\"Errored\">2<") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        live = client.get("/admin/live/overview?range=24h").await;
    }
    assert_eq!(live.status, StatusCode::OK);
    assert!(!live.body.contains("<html"), "a fragment");
    assert!(
        live.body.contains("data-card=\"Errored\">2<"),
        "two errored results counted"
    );
    assert!(
        live.body.contains("data-card=\"Retried\">2<"),
        "the retried one and its retry"
    );

    let requests = client.get("/admin/requests").await;
    assert!(requests.body.contains(&seeded.scheduled.to_string()));
    let processes = client.get("/admin/processes?state=running").await;
    assert!(processes.body.contains("Nothing is claimed"));
    let results = client.get("/admin/results").await;
    assert!(results.body.contains(&seeded.success.uuid.to_string()));
    let workers = client.get("/admin/workers").await;
    assert!(workers.body.contains("active"));
    let schedules = client.get("/admin/schedules").await;
    assert!(schedules.body.contains("echo nightly"));
    assert!(schedules.body.contains("Next fire times"));
    for asset in ["app.css", "app.js", "icon.svg"] {
        let reply = client.get(&format!("/admin/assets/{asset}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{asset}");
    }
    let page = client.get("/admin/jobs/not-a-uuid").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_eq!(
        client.get("/admin/nowhere").await.status,
        StatusCode::NOT_FOUND
    );
    let csp = overview.headers.get("content-security-policy").unwrap();
    assert!(csp.to_str().unwrap().contains("script-src 'self'"));
}

/// Results by status (retried included), by any uuid of a job, and by job name; pages by
/// keyset.
async fn results_filter_and_search(backend: Backend) {
    let (_, seeded, mut client) = dashboard(backend, defaults).await;
    let errored = client.get("/admin/results?status=ERRORED").await;
    assert!(errored
        .body
        .contains(&seeded.first_failure.uuid.to_string()));
    assert!(!errored.body.contains(&seeded.success.uuid.to_string()));
    let retried = client.get("/admin/results?status=RETRIED").await;
    assert!(retried
        .body
        .contains(&seeded.first_failure.uuid.to_string()));
    assert!(
        retried.body.contains(&seeded.last_failure.uuid.to_string()),
        "a retry"
    );
    assert!(!retried.body.contains(&seeded.success.uuid.to_string()));
    let by_request = format!("/admin/results?q={}", seeded.success.job_request_uuid);
    let found = client.get(&by_request).await;
    assert!(found.body.contains(&seeded.success.uuid.to_string()));
    assert!(!found.body.contains(&seeded.first_failure.uuid.to_string()));
    let by_name = client.get("/admin/results?q=tests.admin.Explode").await;
    assert!(by_name.body.contains(&seeded.last_failure.uuid.to_string()));
    assert!(!by_name.body.contains(&seeded.success.uuid.to_string()));
    assert_eq!(
        client.get("/admin/results?status=NOPE").await.status,
        StatusCode::BAD_REQUEST
    );

    // Keyset pages: the newest result first; its next page holds the older ones.
    let first = client.get("/admin/results?q=tests.admin.Explode").await;
    assert!(first
        .body
        .contains("data-live=\"/admin/results?q=tests.admin.Explode\""));
    let older = format!(
        "/admin/results?q=tests.admin.Explode&next={}",
        seeded.last_failure.id
    );
    let next = client.get(&older).await;
    assert!(next.body.contains(&seeded.first_failure.uuid.to_string()));
    assert!(!next.body.contains(&seeded.last_failure.uuid.to_string()));

    let find = client
        .get(&format!("/admin/find?q={}", seeded.scheduled))
        .await;
    assert_eq!(find.location(), format!("/admin/jobs/{}", seeded.scheduled));
}

/// Retrying an errored result from the results page makes a new request of its job.
async fn retry_makes_a_new_request(backend: Backend) {
    let (jobs, seeded, mut client) = dashboard(backend, defaults).await;
    let page = client.get("/admin/results?status=ERRORED").await;
    let token = csrf_token(&page.body);
    let uuid = seeded.last_failure.uuid.to_string();
    let reply = client
        .post(
            "/admin/actions/retry",
            &[
                ("authenticity_token", &token),
                ("uuid", &uuid),
                ("back", "results?status=ERRORED"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert!(reply
        .location()
        .starts_with("/admin/results?status=ERRORED&done=1+retried"));
    let pending = jobs
        .requests_page(&RequestFilter::new().job_class("tests.admin.Explode"))
        .await
        .unwrap();
    assert_eq!(pending.items.len(), 1, "a new request of the job");
    let requests = client.get("/admin/requests?job=tests.admin.Explode").await;
    assert!(requests.body.contains(&pending.items[0].uuid.to_string()));
    let chain = client.get(&format!("/admin/jobs/{uuid}")).await;
    assert!(
        chain.body.contains("Attempt 3"),
        "the new request ends the chain"
    );
}

/// Delete a request, run a scheduled one now, delete a result.
async fn delete_and_run_now(backend: Backend) {
    let (jobs, seeded, mut client) = dashboard(backend, defaults).await;
    let page = client.get("/admin/requests").await;
    let token = csrf_token(&page.body);
    let scheduled = seeded.scheduled.to_string();
    let run = client
        .post(
            "/admin/actions/run-now",
            &[
                ("authenticity_token", &token),
                ("uuid", &scheduled),
                ("back", "requests"),
            ],
        )
        .await;
    assert_eq!(run.status, StatusCode::SEE_OTHER);
    let request = jobs.requests(10).await.unwrap();
    assert_eq!(request[0].start_at, None, "ready now");
    let cancel = client
        .post(
            "/admin/actions/cancel",
            &[
                ("authenticity_token", &token),
                ("uuid", &scheduled),
                ("back", "requests"),
            ],
        )
        .await;
    assert_eq!(cancel.status, StatusCode::SEE_OTHER);
    assert!(jobs.requests(10).await.unwrap().is_empty());
    let cancelled = jobs
        .results(&ResultFilter::new().status(JobStatus::Cancelled))
        .await
        .unwrap();
    assert_eq!(cancelled.len(), 1, "a cancelled job keeps a result");
    assert_eq!(cancelled[0].error, "Cancelled by the dashboard");
    let success = seeded.success.uuid.to_string();
    let gone = client
        .post(
            "/admin/actions/delete-results",
            &[
                ("authenticity_token", &token),
                ("uuid", &success),
                ("back", "//evil.example"),
            ],
        )
        .await;
    assert_eq!(
        gone.location().split('?').next(),
        Some("/admin"),
        "never off-site"
    );
    let left = jobs.results(&ResultFilter::new()).await.unwrap();
    assert_eq!(left.len(), 3, "two seeded results and the cancelled one");
}

/// A queue paused and resumed from its requests page; the overview marks it paused.
async fn pause_and_resume_a_queue(backend: Backend) {
    let (jobs, _, mut client) = dashboard(backend, defaults).await;
    let page = client.get("/admin/requests?queue=default").await;
    assert!(page.body.contains("id=\"pause-queue\""), "{}", page.body);
    let token = csrf_token(&page.body);
    let queue_form = |token: &str| {
        [
            ("authenticity_token", token.to_string()),
            ("queue", "default".to_string()),
            ("back", "requests?queue=default".to_string()),
        ]
    };
    let fields = queue_form(&token);
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let paused = client.post("/admin/actions/pause", &fields).await;
    assert_eq!(paused.status, StatusCode::SEE_OTHER);
    assert!(
        paused.location().contains("queue+default+paused"),
        "{}",
        paused.location()
    );
    let now_paused = jobs.paused_queues().await.unwrap();
    assert_eq!(now_paused.len(), 1);
    assert_eq!(now_paused[0].queue, "default");
    assert_eq!(now_paused[0].paused_by, "the dashboard");
    let page = client.get("/admin/requests?queue=default").await;
    assert!(page.body.contains("id=\"queue-paused\""), "{}", page.body);
    assert!(page.body.contains("id=\"resume-queue\""));
    let mut overview = String::new();
    for _ in 0..40 {
        overview = client.get("/admin").await.body;
        if overview.contains("pill paused") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(overview.contains("pill paused"), "the overview marks it");
    let resumed = client.post("/admin/actions/resume", &fields).await;
    assert_eq!(resumed.status, StatusCode::SEE_OTHER);
    assert!(jobs.paused_queues().await.unwrap().is_empty());
    let no_queue = client
        .post(
            "/admin/actions/pause",
            &[("authenticity_token", &token), ("queue", " ")],
        )
        .await;
    assert_eq!(no_queue.status, StatusCode::BAD_REQUEST);
    assert!(jobs.paused_queues().await.unwrap().is_empty());
}

/// A running job cancelled from the processes page is stopped by its worker at once.
async fn cancel_a_running_job(backend: Backend) {
    let (jobs, _, mut client) = dashboard(backend, defaults).await;
    let worker = Worker::new(jobs.clone()).register::<Hold>().spawn();
    let request = jobs.enqueue(Hold {}).await.unwrap().unwrap().uuid;
    let mut running = None;
    for _ in 0..200 {
        let page = jobs
            .processes_page(&ProcessFilter::default())
            .await
            .unwrap();
        running = page.items.into_iter().find(|p| p.started_at.is_some());
        if running.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let process = running.expect("the job runs").uuid.to_string();
    let job_page = client.get(&format!("/admin/jobs/{process}")).await;
    assert!(job_page.body.contains("id=\"cancel-running\""));
    let page = client.get("/admin/processes").await;
    assert!(
        page.body
            .contains(&format!("name=\"uuid\" value=\"{process}\"")),
        "{}",
        page.body
    );
    let token = csrf_token(&page.body);
    let cancel = client
        .post(
            "/admin/actions/cancel",
            &[
                ("authenticity_token", &token),
                ("uuid", &process),
                ("back", "processes"),
            ],
        )
        .await;
    assert_eq!(cancel.status, StatusCode::SEE_OTHER);
    assert!(
        cancel.location().contains("1+cancelled"),
        "{}",
        cancel.location()
    );
    let cancelled = jobs
        .results(&ResultFilter::new().status(JobStatus::Cancelled))
        .await
        .unwrap();
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0].job_request_uuid, request);
    // The hour-long run was stopped: the worker stops without waiting for it.
    tokio::time::timeout(Duration::from_secs(20), worker.stop())
        .await
        .expect("the cancelled run no longer holds the worker")
        .unwrap();
    let results = jobs.results(&ResultFilter::new()).await.unwrap();
    assert_eq!(
        results
            .iter()
            .filter(|r| r.job_request_uuid == request)
            .count(),
        1,
        "no second result for the stopped run"
    );
}

/// An action without the token, with a wrong one, or from another site changes nothing.
async fn actions_need_a_csrf_token(backend: Backend) {
    let (jobs, seeded, mut client) = dashboard(backend, defaults).await;
    let page = client.get("/admin/results").await;
    let token = csrf_token(&page.body);
    let uuid = seeded.success.uuid.to_string();
    let without = client
        .post("/admin/actions/delete-results", &[("uuid", &uuid)])
        .await;
    assert_eq!(without.status, StatusCode::FORBIDDEN);
    let wrong = client
        .post(
            "/admin/actions/delete-results",
            &[("authenticity_token", "AAAA"), ("uuid", &uuid)],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let cross = client
        .post_with(
            "/admin/actions/delete-results",
            &[("authenticity_token", &token), ("uuid", &uuid)],
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    let mut stranger = Client::new(client.router.clone());
    let no_cookie = stranger
        .post(
            "/admin/actions/delete-results",
            &[("authenticity_token", &token), ("uuid", &uuid)],
        )
        .await;
    assert_eq!(
        no_cookie.status,
        StatusCode::FORBIDDEN,
        "the token is bound to the cookie"
    );
    assert_eq!(jobs.results(&ResultFilter::new()).await.unwrap().len(), 3);
}

/// Read-only: no action buttons, and actions are refused.
async fn read_only_changes_nothing(backend: Backend) {
    let (jobs, seeded, mut client) = dashboard(backend, |d| d.read_only(true)).await;
    let page = client.get("/admin/results").await;
    assert!(!page.body.contains("/admin/actions/"));
    assert!(page.body.contains("read-only"));
    let job = client
        .get(&format!("/admin/jobs/{}", seeded.last_failure.uuid))
        .await;
    assert!(!job.body.contains("Retry now"));
    let token = csrf_token(&page.body);
    let uuid = seeded.success.uuid.to_string();
    let refused = client
        .post(
            "/admin/actions/delete-results",
            &[("authenticity_token", &token), ("uuid", &uuid)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(jobs.results(&ResultFilter::new()).await.unwrap().len(), 3);
}

/// One job's page shows its whole chain from any of its uuids, with parameters and error text
/// escaped.
async fn a_job_is_its_whole_chain_and_escaped(backend: Backend) {
    let (_, seeded, mut client) = dashboard(backend, defaults).await;
    let (first, last) = (&seeded.first_failure, &seeded.last_failure);
    for uuid in [
        first.uuid,
        first.job_request_uuid,
        first.job_process_uuid,
        last.uuid,
        last.job_request_uuid,
    ] {
        let page = client.get(&format!("/admin/jobs/{uuid}")).await;
        assert_eq!(page.status, StatusCode::OK, "{uuid}");
        assert!(
            page.body.contains("Attempt 1") && page.body.contains("Attempt 2"),
            "{uuid}"
        );
        assert!(page.body.contains(&first.uuid.to_string()));
        assert!(page.body.contains(&last.uuid.to_string()));
        assert!(!page.body.contains(XSS_ERROR), "error text escaped");
        assert!(
            page.body.contains("&#60;script&#62;window.__xss="),
            "shown as text"
        );
    }
    let success = client
        .get(&format!("/admin/jobs/{}", seeded.success.uuid))
        .await;
    assert!(!success.body.contains(XSS_PARAM), "parameters escaped");
    assert!(!success.body.contains("<img src=x"));
    let listed = client.get("/admin/results").await;
    assert!(!listed.body.contains(XSS_ERROR), "escaped in lists too");
    let pending = client
        .get(&format!("/admin/jobs/{}", seeded.scheduled))
        .await;
    assert!(pending.body.contains("Run now"));
}

/// With a sign-in configured, nothing is shown without it.
async fn sign_in_is_required_when_configured(backend: Backend) {
    let (_, _, mut client) = dashboard(backend, |d| d.auth(Auth::token("t0ken").unwrap())).await;
    let denied = client.get("/admin").await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    assert!(denied.headers.contains_key("www-authenticate"));
    assert_eq!(
        client.get("/admin/assets/app.js").await.status,
        StatusCode::UNAUTHORIZED
    );
    client.authorization = Some("Bearer t0ken".into());
    assert_eq!(client.get("/admin").await.status, StatusCode::OK);
    client.authorization = Some("Bearer wrong".into());
    assert_eq!(client.get("/admin").await.status, StatusCode::UNAUTHORIZED);
}

conformance!(
    every_page_renders,
    results_filter_and_search,
    retry_makes_a_new_request,
    delete_and_run_now,
    pause_and_resume_a_queue,
    cancel_a_running_job,
    actions_need_a_csrf_token,
    read_only_changes_nothing,
    a_job_is_its_whole_chain_and_escaped,
    sign_in_is_required_when_configured,
);
