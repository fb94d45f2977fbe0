//! A real Prometheus server (Debian's `prometheus`; `TEST_PROMETHEUS` names another binary)
//! scrapes a running worker's `/metrics`, and its query API returns the job counters and the
//! queue depth. Prometheus runs on a free loopback port with its own config and data directory,
//! and is killed at the end. Without the binary the test fails, saying so (`scripts/test`
//! installs it).
#![cfg(feature = "otel")]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use plainjobs::telemetry::Telemetry;
use plainjobs::Worker;

const T: Duration = Duration::from_secs(60);

/// The Prometheus process, killed when dropped.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address")
}

fn start_prometheus(target: SocketAddr) -> Prometheus {
    let bin = std::env::var("TEST_PROMETHEUS").unwrap_or_else(|_| "/usr/bin/prometheus".into());
    assert!(
        std::path::Path::new(&bin).exists(),
        "no Prometheus at {bin}: install Debian's `prometheus` (scripts/test does) or set TEST_PROMETHEUS"
    );
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("prometheus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("data")).expect("data dir");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: plainjobs\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .expect("config");
    let addr = free_port();
    let child = Command::new(&bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).expect("log"))
        .spawn()
        .expect("start prometheus");
    Prometheus { child, addr }
}

/// `GET path` on `addr` (HTTP/1.0: the reply ends with the connection); the body.
fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    reply
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}

fn encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of an instant query that returns one sample, as Prometheus answers it.
fn query(prometheus: &Prometheus, promql: &str) -> Option<f64> {
    let body = http_get(
        prometheus.addr,
        &format!("/api/v1/query?query={}", encode(promql)),
    )?;
    let json: serde_json::Value = serde_json::from_str(&body).ok()?;
    let value = json["data"]["result"].get(0)?["value"][1].as_str()?;
    value.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_a_worker_and_answers_with_its_counters_and_depth() {
    let db = test_db_for(Backend::Postgres).await;
    let telemetry = Telemetry::none()
        .with_prometheus()
        .expect("prometheus reader");
    let scrape = telemetry
        .serve_prometheus("127.0.0.1:0".parse().unwrap())
        .await
        .expect("serve /metrics");
    let metrics = telemetry
        .metrics()
        .expect("metrics are on")
        .refresh_every(Duration::from_millis(200));
    let jobs = db.jobs.clone().with_metrics(metrics);
    for i in 0..5 {
        jobs.enqueue(Probe::new(format!("w{i}"), Action::Succeed))
            .queue("work")
            .await
            .unwrap();
    }
    for i in 0..3 {
        jobs.enqueue(Probe::new(format!("h{i}"), Action::Succeed))
            .queue("held")
            .await
            .unwrap();
    }
    // Served but paused: its three jobs stay ready, the depth to read.
    jobs.pause_queue("held", "tests").await.unwrap();
    let rec = Recorder::new();
    let worker = Worker::new(jobs.clone())
        .register::<Probe>()
        .state(rec.clone())
        .config(fast_config())
        .queues(["work", "held"])
        .spawn();
    assert!(
        wait_until(T, || async { db.results().await.len() == 5 }).await,
        "the five jobs of `work` ran"
    );
    let own = http_get(scrape.local_addr(), "/metrics").expect("our endpoint answers");
    assert!(
        own.contains("messaging_client_consumed_messages_total"),
        "{own}"
    );

    let prometheus = start_prometheus(scrape.local_addr());
    let consumed = r#"sum(messaging_client_consumed_messages_total{plain_jobs_outcome="successful",messaging_destination_name="work"})"#;
    let sent = r#"sum(messaging_client_sent_messages_total)"#;
    let depth = r#"plain_jobs_queue_depth{messaging_destination_name="held"}"#;
    let answered = wait_until(T, || async {
        query(&prometheus, consumed) == Some(5.0)
            && query(&prometheus, sent) == Some(8.0)
            && query(&prometheus, depth) == Some(3.0)
    })
    .await;
    assert!(
        answered,
        "Prometheus answered consumed={:?} sent={:?} depth={:?}",
        query(&prometheus, consumed),
        query(&prometheus, sent),
        query(&prometheus, depth)
    );
    worker.stop().await.unwrap();
}
