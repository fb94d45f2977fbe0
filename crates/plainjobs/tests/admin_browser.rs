//! The dashboard in a real browser (Debian's chromium, driven through chromedriver by
//! fantoccini): it opens the overview, filters results, retries an errored job and sees its new
//! request, follows a job's chain, and proves that `<script>` payloads in parameters and in
//! error text never run. It saves a screenshot of every page (desktop, and the overview on a
//! phone) in `target/admin-screenshots/`.
//!
//! chromium and chromium-driver must be installed (`scripts/test` installs them with apt-get):
//! without them this test fails and says so, it never skips.

mod admin_support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use admin_support::{seed, Greet};
use fantoccini::{Client, ClientBuilder, Locator};
use plainjobs::admin::Dashboard;
use plainjobs::testing::{test_jobs, Backend};
use plainjobs::{Jobs, RequestFilter};
use serde_json::json;

/// chromedriver, started on a free port, stopped when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

fn start_driver() -> Driver {
    let binary = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or_else(|| {
            panic!(
                "chromedriver is not installed: the browser test needs Debian's chromium and \
                 chromium-driver (scripts/test installs them with apt-get)"
            )
        });
    let port = free_port();
    let child = Command::new(binary)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    Driver { child, port }
}

async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let capabilities = json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--hide-scrollbars",
                format!("--user-data-dir={}", profile.display()),
                "--window-size=1280,900",
            ]
        }
    });
    let capabilities = capabilities.as_object().cloned().expect("an object");
    let started = Instant::now();
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let attempt = ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await;
        match attempt {
            Ok(client) => return client,
            Err(e) if started.elapsed() > Duration::from_secs(20) => {
                panic!("cannot start chromium through chromedriver: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// The dashboard served on a free loopback port.
async fn serve(jobs: Jobs) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("its address");
    let router = Dashboard::new(jobs)
        .refresh_every(Duration::from_millis(1000))
        .schedules(&[
            (
                "cmd:pg_dump app > /backups/app.sql".into(),
                "0 3 * * *".into(),
            ),
            ("tests.admin.Greet".into(), "*/15 * * * *".into()),
        ])
        .router();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// More jobs on more queues, so that the screenshots show a working system.
async fn busy_queues(jobs: &Jobs) {
    for (queue, n) in [("emails", 40), ("reports", 12), ("default", 25)] {
        for i in 0..n {
            jobs.enqueue(Greet {
                name: format!("{queue}-{i}"),
            })
            .queue(queue)
            .delay(Duration::from_secs(if i % 3 == 0 { 600 } else { 0 }))
            .await
            .expect("enqueue");
        }
    }
}

fn shots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/admin-screenshots");
    std::fs::create_dir_all(&dir).expect("a screenshot directory");
    dir
}

async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("a screenshot");
    std::fs::write(shots_dir().join(format!("{name}.png")), png).expect("saved");
}

/// Fails if any payload ran: each would set `window.__xss`.
async fn no_script_ran(client: &Client, page: &str) {
    let ran = client
        .execute(
            "return window.__xss === undefined ? null : String(window.__xss);",
            vec![],
        )
        .await
        .expect("a script of the test runs");
    assert_eq!(ran, serde_json::Value::Null, "a payload ran on {page}");
}

async fn text_of(client: &Client, css: &str) -> String {
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .expect("text")
}

#[tokio::test]
async fn an_operator_uses_the_dashboard_in_a_browser() {
    let started = Instant::now();
    let driver = start_driver();
    let jobs = test_jobs(Backend::Sqlite).await;
    let seeded = seed(&jobs).await;
    busy_queues(&jobs).await;
    let addr = serve(jobs.clone()).await;
    let base = format!("http://{addr}");
    let profile = tempdir();
    let client = browser(&driver, &profile).await;

    // The overview: cards and queues, refreshed in place.
    client
        .goto(&format!("{base}/"))
        .await
        .expect("the overview");
    let counted = client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::XPath(
            "//span[@data-card='Errored' and text()='2']",
        ))
        .await;
    assert!(counted.is_ok(), "the two errors are counted");
    let ready: i64 = text_of(&client, "[data-card=Ready]")
        .await
        .replace(',', "")
        .parse()
        .expect("a count");
    for i in 0..5 {
        jobs.enqueue(Greet {
            name: format!("late-{i}"),
        })
        .await
        .expect("enqueue");
    }
    let more = format!("//span[@data-card='Ready' and text()='{}']", ready + 5);
    let refreshed = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(&more))
        .await;
    assert!(
        refreshed.is_ok(),
        "the overview shows new jobs without a reload"
    );
    let queues = text_of(&client, "table.queues").await;
    assert!(
        queues.contains("emails") && queues.contains("reports"),
        "{queues}"
    );
    shot(&client, "overview").await;

    // Results, filtered to the errored ones by their tab.
    client
        .goto(&format!("{base}/results"))
        .await
        .expect("results");
    no_script_ran(&client, "results").await;
    client
        .find(Locator::XPath("//nav[@class='tabs']/a[text()='errored']"))
        .await
        .expect("the errored tab")
        .click()
        .await
        .expect("click");
    let rows = client
        .wait()
        .for_element(Locator::Css("table.results tbody"))
        .await
        .expect("rows")
        .text()
        .await
        .expect("text");
    assert!(rows.contains("tests.admin.Explode") && !rows.contains("tests.admin.Greet"));
    assert!(client
        .current_url()
        .await
        .expect("url")
        .as_str()
        .contains("status=ERRORED"));
    no_script_ran(&client, "errored results").await;
    shot(&client, "results").await;

    // Retry the final failure: select it, press Retry, see the notice and the new request.
    let last = seeded.last_failure.uuid.to_string();
    client
        .find(Locator::Css(&format!("input[value='{last}']")))
        .await
        .expect("its checkbox")
        .click()
        .await
        .expect("select");
    client
        .find(Locator::XPath("//button[text()='Retry']"))
        .await
        .expect("the retry button")
        .click()
        .await
        .expect("retry");
    let notice = text_of(&client, "#notice:not([hidden])").await;
    assert_eq!(notice, "1 retried");
    let new = jobs
        .requests_page(&RequestFilter::new().job_class("tests.admin.Explode"))
        .await
        .expect("requests");
    assert_eq!(new.items.len(), 1, "the retry is a new request");
    client
        .goto(&format!("{base}/requests?job=tests.admin.Explode"))
        .await
        .expect("requests");
    let listed = text_of(&client, "table.list tbody").await;
    assert!(
        listed.contains(&new.items[0].uuid.simple().to_string()[24..]),
        "{listed}"
    );
    client
        .goto(&format!("{base}/requests"))
        .await
        .expect("requests");
    shot(&client, "requests").await;

    // Follow the chain: from the first failure's row to its job page, every attempt shown.
    client
        .goto(&format!("{base}/results?status=ERRORED"))
        .await
        .expect("results");
    let first = seeded.first_failure.uuid.to_string();
    client
        .find(Locator::Css(&format!("a[href='/jobs/{first}']")))
        .await
        .expect("the job link")
        .click()
        .await
        .expect("follow");
    let timeline = text_of(&client, "ol.timeline").await;
    for attempt in ["Attempt 1", "Attempt 2", "Attempt 3"] {
        assert!(timeline.contains(attempt), "{attempt} in {timeline}");
    }
    let error = text_of(&client, "pre.error-text").await;
    assert!(
        error.contains("<script>window.__xss='error'</script>"),
        "shown as text: {error}"
    );
    no_script_ran(&client, "the failed job").await;
    shot(&client, "job").await;
    client
        .goto(&format!("{base}/jobs/{}", seeded.success.uuid))
        .await
        .expect("the success");
    let params = text_of(&client, "#parameters").await;
    assert!(
        params.contains("<script>window.__xss='param'</script>"),
        "{params}"
    );
    no_script_ran(&client, "the parameters").await;

    for page in ["processes", "workers", "schedules"] {
        client.goto(&format!("{base}/{page}")).await.expect(page);
        shot(&client, page).await;
    }

    // A phone: one column, stacked rows.
    client
        .set_window_size(390, 844)
        .await
        .expect("a phone's size");
    client
        .goto(&format!("{base}/"))
        .await
        .expect("the overview");
    text_of(&client, "table.queues").await;
    shot(&client, "overview-phone").await;
    client
        .goto(&format!("{base}/results"))
        .await
        .expect("results");
    shot(&client, "results-phone").await;

    client.close().await.expect("the browser closes");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the browser test took {:?}",
        started.elapsed()
    );
}

/// A fresh browser profile directory.
fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("plainjobs-chromium-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("a profile directory");
    dir
}
